"""Exact ground truth time vs faiss IndexFlatL2 / IndexFlatIP alone on the same data (target <= 1.2x faiss).

Both run in this one process, interleaved, best of --repeat. vdbbench's time includes its
float64 re-rank of the candidates and any widening for near-ties, which faiss does not do.

    .venv/bin/python benchmarks/groundtruth_speed.py [--dataset fashion-mnist-784-euclidean] [--k 100]
    .venv/bin/python benchmarks/groundtruth_speed.py --smoke   # seconds, on synthetic data (what CI runs)
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
from _figures import add_common_args, write_figures

from vdbbench.config import DatasetConfig
from vdbbench.data.groundtruth import device_name, exact_knn
from vdbbench.sweep.plan import resolve_dataset

SMOKE_DATA = {"name": "groundtruth-speed-smoke", "synthetic": {"n": 5000, "dim": 32, "queries": 200}}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist-784-euclidean")
    ap.add_argument("--queries", type=int, default=None, help="use the first N test queries")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    return add_common_args(ap)


def main() -> None:
    args = build_parser().parse_args()
    entry = DatasetConfig(**SMOKE_DATA) if args.smoke else DatasetConfig(name=args.dataset, test_size=args.queries)
    ds = resolve_dataset(entry)
    train, test = np.ascontiguousarray(ds.train), np.ascontiguousarray(ds.test)
    print(
        f"{ds.name}: {train.shape[0]} x {train.shape[1]} train, {test.shape[0]} queries, k={args.k}, "
        f"metric {ds.metric}, vdbbench candidates on {device_name()}, faiss threads {faiss.omp_get_max_threads()}"
    )

    def run_faiss():
        if ds.metric == "euclidean":
            index = faiss.IndexFlatL2(train.shape[1])
            index.add(train)
            return index.search(test, args.k)
        t, q = train.copy(), test.copy()
        if ds.metric == "angular":
            faiss.normalize_L2(t)
            faiss.normalize_L2(q)
        index = faiss.IndexFlatIP(train.shape[1])
        index.add(t)
        return index.search(q, args.k)

    times = {"faiss": [], "vdbbench": []}
    for _ in range(args.repeat):  # interleaved so noise hits both
        t0 = time.perf_counter()
        _, faiss_ids = run_faiss()
        times["faiss"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ids, _ = exact_knn(train, test, ds.metric, args.k)
        times["vdbbench"].append(time.perf_counter() - t0)
    agree = float((faiss_ids[:, :10] == ids[:, :10]).mean())
    f, v = min(times["faiss"]), min(times["vdbbench"])
    print(
        f"faiss {f:.2f} s, vdbbench {v:.2f} s, ratio {v / f:.2f}x (best of {args.repeat}); "
        f"top-10 id agreement {agree:.4f}"
    )
    write_figures(args.figures, {"faiss_s": f, "vdbbench_s": v, "ratio": v / f, "top10_agreement": agree})


if __name__ == "__main__":
    main()
