"""Build time and peak memory at a million vectors: 1M × 768 synthetic angular data, generated in chunks.

Steps, each timed, with the harness process's own peak RSS sampled separately from the engines':
1. generate the train rows chunk by chunk into an ann-benchmarks HDF5 file (never whole in memory);
2. exact ground truth of the queries with ``vdbbench.data.datasets.add_ground_truth`` (faiss + float64);
3. one sweep per store through the normal runner (the store's process reads its insert batches
   from the file), recording insert/index time and the engine's peak RSS during the build.

    nice -n 10 .venv/bin/python benchmarks/scale_1m.py --out /tmp/scale-1m
    .venv/bin/python benchmarks/scale_1m.py --smoke   # seconds: 2000 × 32, small lists (what CI runs)

Index settings are chosen to finish on 2 cores: hnswlib M=16, ef_construction=64 (the graph
build dominates; 64 halves it against the default 200); LanceDB IVF_PQ with 256 partitions and
96 sub-vectors (k-means on a sample, then 8-bit codes: 1/32 of the float32 size); pgvector
ivfflat with 1000 lists (sqrt(n), pgvector's advice for 1M rows; k-means on a sample).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
from _figures import add_common_args, write_figures

from vdbbench.config import parse_config
from vdbbench.core.results import load_results
from vdbbench.data.datasets import add_ground_truth
from vdbbench.sweep.runner import Sweep

# each store's sweep entry at full size (portable parameter names, checked by the config)
STORES = {
    "hnswlib": {"store": "hnswlib", "index": "hnsw", "build": {"m": 16, "ef_construction": 64},
                "search": {"ef": [32, 128]}},
    "lancedb": {"store": "lancedb", "index": "pq", "build": {"nlist": 256, "pq_m": 96, "nbits": 8},
                "search": {"nprobe": [20]}},
    "pgvector": {"store": "pgvector", "index": "ivf", "build": {"nlist": 1000}, "search": {"nprobe": [10]}},
}  # fmt: skip
# --smoke: the same path on 2000 × 32, with lists and sub-vectors that fit that size
SMOKE = {"n": 2000, "dim": 32, "queries": 50}
SMOKE_BUILD = {"lancedb": {"nlist": 4, "pq_m": 8}, "pgvector": {"nlist": 16}}
GIB = 1 << 30


class OwnPeak:
    """Peak RSS of this process alone (not its children), and of its anonymous part: file pages
    mapped from the dataset count in RSS but are page cache the kernel can drop."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak = interval, {"rss": 0, "anon": 0}
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
            kib = {key: int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "RssAnon")}
            self.peak = {"rss": max(self.peak["rss"], kib["VmRSS"]), "anon": max(self.peak["anon"], kib["RssAnon"])}

    @contextmanager
    def phase(self) -> Iterator[dict[str, int]]:
        self.peak = {"rss": 0, "anon": 0}
        yield self.peak
        time.sleep(2 * self.interval)

    def stop(self) -> None:
        self._stop.set()


def generate(path: Path, n: int, dim: int, queries: int, seed: int = 0, chunk: int = 50_000) -> None:
    """Unit vectors from a seeded mixture of 1000 Gaussian clusters, written ``chunk`` rows at a time."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(1000, dim)).astype(np.float32)

    def draw(count: int) -> np.ndarray:
        x = centers[rng.integers(0, len(centers), count)] + 0.6 * rng.standard_normal((count, dim), np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w") as f:
        f.attrs["distance"] = "angular"
        f.attrs["source"] = f"benchmarks/scale_1m.py seed={seed}"
        train = f.create_dataset("train", shape=(n, dim), dtype=np.float32)  # contiguous: the harness maps it
        for start in range(0, n, chunk):
            train[start : min(start + chunk, n)] = draw(min(chunk, n - start))
        f["test"] = draw(queries)
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/scale-1m", help="folder for the data file, results and scale.json")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--stores", default=",".join(STORES), help=f"comma-separated, of {', '.join(STORES)}")
    return add_common_args(ap)


def main() -> None:
    args = build_parser().parse_args()
    stores = {name: dict(entry) for name, entry in STORES.items()}
    if args.smoke:
        args.n, args.dim, args.queries = SMOKE["n"], SMOKE["dim"], SMOKE["queries"]
        if args.out == build_parser().get_default("out"):
            args.out = "/tmp/scale-1m-smoke"
        for name, build in SMOKE_BUILD.items():
            stores[name]["build"] = {**stores[name]["build"], **build}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"synthetic-{args.n}-{args.dim}-angular.hdf5"
    harness = OwnPeak()
    summary: dict = {"n": args.n, "dim": args.dim, "queries": args.queries, "host_cpus": os.cpu_count(), "steps": {}}

    def step(name: str, fn) -> None:
        t0 = time.perf_counter()
        with harness.phase():
            fn()
        summary["steps"][name] = {"seconds": round(time.perf_counter() - t0, 1),
                                  "harness_rss_peak_gib": round(harness.peak["rss"] / GIB, 3),
                                  "harness_anon_peak_gib": round(harness.peak["anon"] / GIB, 3)}  # fmt: skip
        print(name, summary["steps"][name], flush=True)
        (out / "scale.json").write_text(json.dumps(summary, indent=2))

    if not data.exists():
        step("generate", lambda: generate(data, args.n, args.dim, args.queries))
    with h5py.File(data) as f:
        has_truth = "neighbors" in f
    if not has_truth:
        step("groundtruth", lambda: add_ground_truth(data, k=100))
    for name in args.stores.split(","):
        cfg = parse_config({
            "k": 10, "runs": 1, "warmup": 20, "insert_batch": 10_000, "batch_size": 0, "limits": {"build_s": 7200},
            "datasets": [{"name": data.stem, "path": str(data)}], "stores": [stores[name]],
        })  # fmt: skip
        step(f"sweep {name}", lambda cfg=cfg, name=name: Sweep(cfg, out / f"results-{name}").run())
        for r in load_results(out / f"results-{name}"):
            res = r.get("resources") or {}
            summary["steps"][f"sweep {name}"].setdefault("points", []).append({
                "status": r["status"], "error": r.get("error"), "build": r["build"], "search": r["search"],
                "insert_s": r.get("insert_s"), "index_s": r.get("index_s"), "recall": r.get("recall"),
                "qps": r.get("qps"),
                "engine_rss_peak_build_gib": round((res.get("rss_peak_build_bytes") or 0) / GIB, 3),
                "engine_rss_scope": res.get("rss_scope"), "disk_gib": round((res.get("workdir_bytes") or 0) / GIB, 3),
            })  # fmt: skip
        (out / "scale.json").write_text(json.dumps(summary, indent=2))
    harness.stop()
    print(json.dumps(summary, indent=2))
    failed = [p for step in summary["steps"].values() for p in step.get("points", []) if p["status"] != "ok"]
    if failed:
        raise SystemExit(f"{len(failed)} point(s) failed: {failed[0]['error']}")
    write_figures(args.figures, summary)


if __name__ == "__main__":
    main()
