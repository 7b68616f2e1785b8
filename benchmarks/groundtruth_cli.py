"""`python -m vdbbench groundtruth FILE -k K` as a user runs it, against a faiss IndexFlatL2 script on the same file
(target <= 1.25x). Both are whole processes that read the file and write neighbours into it; each one's start-up
(Python and its imports, timed as a process that only imports them) is subtracted. Runs alternate, and the
median of each is compared.

    .venv/bin/python benchmarks/groundtruth_cli.py [--n 200000] [--dim 256] [--queries 10000] [--k 100] [--repeat 3]
    .venv/bin/python benchmarks/groundtruth_cli.py --smoke   # seconds, on a small file (what CI runs)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from _figures import add_common_args, write_figures

# The plain faiss way to fill a file with exact neighbours: what the harness's command is compared with.
FAISS_SCRIPT = """
import sys, faiss, h5py, numpy as np
path, k = sys.argv[1], int(sys.argv[2])
with h5py.File(path, "r") as f:
    train, test = np.ascontiguousarray(f["train"][:]), np.ascontiguousarray(f["test"][:])
index = faiss.IndexFlatL2(train.shape[1])
index.add(train)
distances, neighbors = index.search(test, k)
with h5py.File(path, "r+") as f:
    for key in ("neighbors", "distances"):
        if key in f:
            del f[key]
    f["neighbors"], f["distances"] = neighbors.astype(np.int32), np.sqrt(distances).astype(np.float32)
"""
FAISS_STARTUP = "import sys, faiss, h5py, numpy"
VDBBENCH_STARTUP = "import vdbbench.cli"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000, help="train rows of the generated file")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=None, help="folder for the generated file (default: a temporary one)")
    return add_common_args(ap)


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    args = build_parser().parse_args()
    if args.smoke:
        args.n, args.dim, args.queries, args.k, args.repeat = 5000, 32, 200, 10, 1
    folder = Path(args.out or tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"gt-{args.n}x{args.dim}-q{args.queries}.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        f["train"] = rng.standard_normal((args.n, args.dim), dtype=np.float32)
        f["test"] = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    script = folder / "faiss_groundtruth.py"
    script.write_text(FAISS_SCRIPT)
    py = sys.executable
    runs: dict[str, list[float]] = {"vdbbench": [], "faiss": [], "vdbbench_startup": [], "faiss_startup": []}
    for _ in range(args.repeat):
        runs["faiss_startup"].append(timed([py, "-c", FAISS_STARTUP]))
        runs["vdbbench_startup"].append(timed([py, "-c", VDBBENCH_STARTUP]))
        runs["faiss"].append(timed([py, str(script), str(path), str(args.k)]))
        runs["vdbbench"].append(timed([py, "-m", "vdbbench", "groundtruth", str(path), "-k", str(args.k), "--force"]))
    med = {name: statistics.median(values) for name, values in runs.items()}
    faiss_s = max(med["faiss"] - med["faiss_startup"], 1e-6)
    vdbbench_s = max(med["vdbbench"] - med["vdbbench_startup"], 1e-6)
    print(f"{args.n} x {args.dim}, {args.queries} queries, k={args.k}, median of {args.repeat}: "
          f"faiss script {med['faiss']:.2f} s (start-up {med['faiss_startup']:.2f} s), vdbbench groundtruth "
          f"{med['vdbbench']:.2f} s (start-up {med['vdbbench_startup']:.2f} s); ratio without start-up "
          f"{vdbbench_s / faiss_s:.2f}x (target <= 1.25)")  # fmt: skip
    write_figures(args.figures, {"faiss_s": faiss_s, "vdbbench_s": vdbbench_s, "ratio": vdbbench_s / faiss_s,
                                 **{f"{k}_runs_s": v for k, v in runs.items()}})  # fmt: skip


if __name__ == "__main__":
    main()
