"""Harness overhead: hnswlib QPS through the runner's timed loop vs a bare loop of knn_query.

Both loops run on the same index and queries, interleaved several times so machine noise
hits both alike; the figure is the ratio of the best pass of each (target >= 0.98): on a shared
machine the best pass is the one least disturbed by other processes.

    .venv/bin/python benchmarks/harness_overhead.py [--dataset fashion-mnist-784-euclidean] [--queries 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from vdbbench.config import DatasetConfig
from vdbbench.runner import measure_search, resolve_dataset
from vdbbench.stores import BuildSpec, get_store_class


def bare_qps(index, queries: list[np.ndarray], k: int) -> float:
    start = time.perf_counter()
    for q in queries:
        index.knn_query(q, k=k)
    return len(queries) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist-784-euclidean")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()

    ds = resolve_dataset(DatasetConfig(name=args.dataset, test_size=args.queries))
    store = get_store_class("hnswlib")(tempfile.mkdtemp())
    store.create(BuildSpec("hnsw", ds.metric, ds.dim, {"M": 16, "ef_construction": 200}, count=len(ds.train)))
    store.insert(np.arange(len(ds.train)), ds.train)
    store.finish()
    queries = [np.ascontiguousarray(q) for q in ds.test]
    print(f"dataset {ds.name}: {len(ds.train)} train, {len(queries)} queries, k={args.k}")
    print(f"{'ef':>5} {'bare QPS':>10} {'harness QPS':>12} {'ratio':>7}")
    for ef in (10, 40, 160):
        store.set_search_params({"ef": ef})
        bare, harness = [], []
        for _ in range(args.rounds):
            bare.append(bare_qps(store._index, queries, args.k))
            harness.append(measure_search(store, ds, queries, args.k, runs=1, warmup=0).qps)
        b, h = max(bare), max(harness)
        print(f"{ef:>5} {b:>10,.0f} {h:>12,.0f} {h / b:>7.3f}")


if __name__ == "__main__":
    main()
