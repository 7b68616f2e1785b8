"""Exact k-nearest neighbours by chunked brute force: torch on CUDA when present, else numpy/BLAS.

Candidates are selected in float32 (fast), then the selected distances are recomputed in
float64 and re-sorted, so stored ground truth is exact to float64 rounding.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from vdbbench.distances import exact_distances, normalize


def _cuda_torch():
    """The torch module if a CUDA device is usable, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def device_name() -> str:
    torch = _cuda_torch()
    return f"cuda:{torch.cuda.get_device_name(0)}" if torch else "cpu"


def _prepare(train: np.ndarray, test: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    train = np.ascontiguousarray(train, dtype=np.float32)
    test = np.ascontiguousarray(test, dtype=np.float32)
    if metric == "angular":
        train, test = normalize(train).astype(np.float32), normalize(test).astype(np.float32)
    return train, test


def _smallest(d: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns and values of the ``count`` smallest entries of each row of ``d``, in no order.

    The count-th smallest of a strided sample of columns is never below the row's true count-th
    smallest, so one vectorised comparison against it discards most entries before the partition.
    """
    n = d.shape[1]
    if n <= 32 * count:
        part = np.argpartition(d, count - 1, axis=1)[:, :count]
        return part, np.take_along_axis(d, part, axis=1)
    bound = np.partition(d[:, :: n // (16 * count)], count - 1, axis=1)[:, count - 1]
    rows, cols = np.nonzero(d <= bound[:, None])
    per_row = np.bincount(rows, minlength=d.shape[0])
    slot = np.arange(rows.size) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    kept_cols = np.zeros((d.shape[0], per_row.max()), dtype=np.int64)
    kept = np.full((d.shape[0], per_row.max()), np.inf, dtype=d.dtype)
    kept_cols[rows, slot] = cols
    kept[rows, slot] = d[rows, cols]
    part = np.argpartition(kept, count - 1, axis=1)[:, :count]
    return np.take_along_axis(kept_cols, part, axis=1), np.take_along_axis(kept, part, axis=1)


def _candidates_block(train, train_sq, q, metric, count, train_chunk) -> np.ndarray:
    """Top-``count`` ids for one block of queries, streaming train in chunks and merging partial tops."""
    run_d = np.full((q.shape[0], 0), np.inf, dtype=np.float32)
    run_i = np.empty((q.shape[0], 0), dtype=np.int64)
    for t0 in range(0, train.shape[0], train_chunk):
        d = q @ train[t0 : t0 + train_chunk].T  # BLAS sgemm
        d *= -2.0 if metric == "euclidean" else -1.0
        if metric == "euclidean":
            d += train_sq[None, t0 : t0 + train_chunk]  # |q|^2 is constant per row: left out
        part, values = _smallest(d, min(count, d.shape[1]))
        run_d = np.concatenate([run_d, values], axis=1)
        run_i = np.concatenate([run_i, part + t0], axis=1)
        if run_d.shape[1] > count:
            keep = np.argpartition(run_d, count - 1, axis=1)[:, :count]
            run_d = np.take_along_axis(run_d, keep, axis=1)
            run_i = np.take_along_axis(run_i, keep, axis=1)
    return run_i


def _rerank(train: np.ndarray, test: np.ndarray, cand: np.ndarray, metric: str, k: int):
    """Exact float64 distances of each query's candidates; the k nearest, ties broken by id."""
    ids = np.empty((test.shape[0], k), dtype=np.int64)
    dists = np.empty((test.shape[0], k), dtype=np.float64)
    for i in range(test.shape[0]):
        d = exact_distances(test[i], train[cand[i]], metric)
        order = np.lexsort((cand[i], d))[:k]  # by distance, ties by id, deterministic
        ids[i] = cand[i][order]
        dists[i] = d[order]
    return ids, dists


def _in_blocks(work, n: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Run ``work(start, stop)`` over query blocks in one thread per core (one BLAS thread each;
    numpy releases the GIL in every heavy step) and stack the (ids, distances) it returns."""
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        parts = list(pool.map(lambda q0: work(q0, min(q0 + block, n)), range(0, n, block)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _candidates_torch(torch, train, test, metric, count, query_chunk):
    device = torch.device("cuda")
    t = torch.from_numpy(train).to(device)
    t_sq = (t * t).sum(dim=1) if metric == "euclidean" else None
    out = np.empty((test.shape[0], count), dtype=np.int64)
    for q0 in range(0, test.shape[0], query_chunk):
        q = torch.from_numpy(test[q0 : q0 + query_chunk]).to(device)
        scores = q @ t.T
        d = t_sq[None, :] - 2.0 * scores if metric == "euclidean" else -scores
        out[q0 : q0 + q.shape[0]] = torch.topk(d, count, dim=1, largest=False).indices.cpu().numpy()
    return out


def exact_knn(
    train: np.ndarray,
    test: np.ndarray,
    metric: str,
    k: int = 100,
    *,
    device: str = "auto",
    margin: int = 16,
    query_chunk: int = 256,
    train_chunk: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (ids, distances), each (n_test, k), nearest first, distances in ann-benchmarks form.

    ``margin`` extra candidates are kept from the float32 pass so float32 rounding cannot
    push a true neighbour out before the float64 re-rank.
    """
    k = min(k, train.shape[0])
    count = min(train.shape[0], k + margin)
    train32, test32 = _prepare(train, test, metric)
    torch = _cuda_torch() if device in ("auto", "cuda") else None
    if device == "cuda" and torch is None:
        raise RuntimeError("device='cuda' asked for ground truth, but torch sees no CUDA device")
    if torch is not None:
        cand = _candidates_torch(torch, train32, test32, metric, count, query_chunk)
        return _in_blocks(lambda a, b: _rerank(train, test[a:b], cand[a:b], metric, k), len(test), query_chunk)
    train_sq = (train32**2).sum(axis=1) if metric == "euclidean" else None

    def block(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        cand = _candidates_block(train32, train_sq, test32[a:b], metric, count, train_chunk)
        return _rerank(train, test[a:b], cand, metric, k)

    return _in_blocks(block, len(test), query_chunk)
