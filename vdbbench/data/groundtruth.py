"""Exact k-nearest neighbours: faiss finds candidates in float32, a float64 re-rank makes them exact.

Two passes over the train rows, each in chunks, so the train set never has to be in memory
(it may be an HDF5 dataset read chunk by chunk):

1. Candidates: for each train chunk, the ``count`` nearest in float32 by faiss (CPU), or by
   faiss-gpu / torch on CUDA where a GPU exists, merged into a running top-``count`` per query.
2. Re-rank: each candidate's distance is recomputed in float64 and each query's list sorted
   by (distance, id), so stored ground truth is exact to float64 rounding and ties are
   broken the same way every time.

Ties and the margin: ``count`` starts at ``k + margin`` (margin = 16). A query
whose float32 distance at position ``count`` is not clearly beyond its k-th (by twice a
float32 error bound, ``4·sqrt(dim)·eps32`` times the distances' scale) may have true
neighbours or equal-distance ties outside the list, so it is searched again with twice the
candidates, until the gap is clear or every train row is a candidate. Exact ties of any
size are therefore kept and ordered by id.

Peak memory (bytes), for ``n`` train rows of dimension ``d``, ``q`` queries, chunk ``c`` rows:
``12·c·d`` (one float32 chunk as read, its normalised copy and the norm's temporary) +
``12·qc·d`` (a block of ``qc`` queries in float32 and float64) + ``40·qc·count`` (its
running candidate lists and their float64 distances) + faiss's own block (``4·4096·1024``).
With the default ``c`` (256 MiB of float32 rows) and ``qc`` = 10k that is about 0.9 GiB for
1M × 1024, whatever ``n`` is: the train rows are streamed, never held. Measured at 1M × 768
with 1000 queries (benchmarks/scale_1m.py): 0.94 GiB anonymous peak RSS, against 0.78 GiB from
the formula plus the interpreter and libraries' own ~0.15 GiB.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.distances import exact_distances, normalize
from vdbbench.core.phases import phase

CHUNK_BYTES = 1 << 28  # float32 train rows per chunk: 256 MiB
QUERY_BLOCK = 16384  # queries searched against one pass over the train rows
BACKENDS = ("faiss-cpu", "faiss-gpu", "torch-cuda")


def _faiss_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") and hasattr(faiss, "knn_gpu") else 0


def _nvidia_device_files() -> bool:
    """Whether the kernel exposes an NVIDIA GPU (``/dev/nvidia0``, ...): the cheapest signal, checked first."""
    return any(p.name[len("nvidia") :].isdigit() for p in Path("/dev").glob("nvidia*"))


def _torch_cuda() -> bool:
    """torch sees a CUDA device; torch (seconds to import) is imported only where an NVIDIA device exists."""
    if not _nvidia_device_files():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def choose_backend(device: str = "auto", faiss_gpus: int | None = None, torch_cuda: bool | None = None) -> str:
    """The candidate search to use: faiss-gpu, else torch on CUDA, when a GPU is asked for or present.

    ``device``: auto (a GPU when there is one), cpu, or cuda (a GPU or an error). The two
    availability arguments are detected when not given (they exist so the choice is testable).
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device {device!r}: use auto, cpu or cuda")
    if device == "cpu":
        return "faiss-cpu"
    faiss_gpus = _faiss_gpus() if faiss_gpus is None else faiss_gpus
    torch_cuda = _torch_cuda() if torch_cuda is None else torch_cuda
    if faiss_gpus > 0:
        return "faiss-gpu"
    if torch_cuda:
        return "torch-cuda"
    if device == "cuda":
        raise RuntimeError("device='cuda' asked for ground truth, but neither faiss-gpu nor torch sees a CUDA device")
    return "faiss-cpu"


def device_name(device: str = "auto") -> str:
    """What computes the candidates: ``cpu``, or ``cuda:<GPU name>``."""
    backend = choose_backend(device)
    if backend == "faiss-cpu":
        return "cpu"
    if backend == "torch-cuda":
        import torch

        return f"cuda:{torch.cuda.get_device_name(0)}"
    return "cuda:faiss-gpu"


# -- candidate search: one function per backend, same contract ---------------------------
# (queries float32, chunk float32, count, metric) -> (float32 distances, int64 ids), each row
# nearest first, in "smaller is nearer" form: squared L2 for euclidean, -inner product otherwise.


def _faiss_metric(metric: str) -> int:
    import faiss

    return faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT


def _knn_faiss_cpu(q: np.ndarray, x: np.ndarray, count: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    d, i = faiss.knn(q, x, count, metric=_faiss_metric(metric))
    return (d if metric == "euclidean" else -d), i


def _knn_faiss_gpu(q: np.ndarray, x: np.ndarray, count: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    d, i = faiss.knn_gpu(faiss.StandardGpuResources(), q, x, count, metric=_faiss_metric(metric))
    return (d if metric == "euclidean" else -d), i


def _knn_torch_cuda(q: np.ndarray, x: np.ndarray, count: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    import torch

    tq, tx = torch.from_numpy(q).cuda(), torch.from_numpy(x).cuda()
    d = torch.cdist(tq, tx).square() if metric == "euclidean" else -(tq @ tx.T)
    values, ids = torch.topk(d, count, dim=1, largest=False)
    return values.cpu().numpy(), ids.cpu().numpy()


_KNN: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "faiss-cpu": _knn_faiss_cpu,
    "faiss-gpu": _knn_faiss_gpu,
    "torch-cuda": _knn_torch_cuda,
}


def _chunks(train: Any, rows: int, metric: str) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, float32 rows) of ``train`` (an array or an HDF5 dataset), ``rows`` at a time."""
    for t0 in range(0, train.shape[0], rows):
        chunk = np.ascontiguousarray(train[t0 : t0 + rows], dtype=np.float32)
        yield t0, (np.ascontiguousarray(normalize(chunk), dtype=np.float32) if metric == "angular" else chunk)


def _error_bound(q: np.ndarray, max_sq_norm: float, metric: str) -> np.ndarray:
    """Per query, a bound on the float32 error of one candidate distance (typical, not worst case)."""
    scale = 4.0 * np.sqrt(q.shape[1]) * np.finfo(np.float32).eps
    q_sq = np.einsum("ij,ij->i", q, q, dtype=np.float64)
    if metric == "euclidean":
        return scale * (q_sq + max_sq_norm)
    return scale * np.sqrt(q_sq * max_sq_norm)


def _candidates(train, q32, metric, count, knn, rows, progress) -> tuple[np.ndarray, np.ndarray, float]:
    """Running top-``count`` over the train chunks: (distances, ids) sorted nearest first, max |x|^2."""
    run_d = np.empty((q32.shape[0], 0), dtype=np.float32)
    run_i = np.empty((q32.shape[0], 0), dtype=np.int64)
    max_sq = 0.0
    for t0, chunk in _chunks(train, rows, metric):
        max_sq = max(max_sq, float(np.einsum("ij,ij->i", chunk, chunk).max()))
        d, i = knn(q32, chunk, min(count, chunk.shape[0]), metric)
        run_d, run_i = np.concatenate([run_d, d], axis=1), np.concatenate([run_i, i + t0], axis=1)
        if run_d.shape[1] > count:
            keep = np.argpartition(run_d, count - 1, axis=1)[:, :count]
            run_d, run_i = np.take_along_axis(run_d, keep, axis=1), np.take_along_axis(run_i, keep, axis=1)
        if progress:
            progress(chunk.shape[0] * q32.shape[0])
    order = np.argsort(run_d, axis=1, kind="stable")
    return np.take_along_axis(run_d, order, axis=1), np.take_along_axis(run_i, order, axis=1), max_sq


def _enough(train, q32, metric, k, count, knn, rows, progress) -> np.ndarray:
    """Candidate ids per query, widened where the float32 gap after the k-th is not clearly safe."""
    n = train.shape[0]
    d, ids, max_sq = _candidates(train, q32, metric, count, knn, rows, progress)
    if count >= n:
        return ids
    unsafe = d[:, -1] - d[:, k - 1] <= 2 * _error_bound(q32, max_sq, metric)
    if not unsafe.any():
        return ids
    wider = _enough(train, q32[unsafe], metric, k, min(n, 2 * count), knn, rows, None)
    out = np.full((q32.shape[0], wider.shape[1]), -1, dtype=np.int64)
    out[:, :count] = ids
    out[unsafe] = wider
    return out


def _rerank(train, test, cand, metric, k, rows) -> tuple[np.ndarray, np.ndarray]:
    """Float64 distances of every candidate (read chunk by chunk), the k nearest by (distance, id).

    One query at a time, so its candidate rows (``count`` × d floats) stay in cache: several
    times faster than batching pairs across queries. Queries are split over one thread per
    core; numpy releases the GIL in the arithmetic, and each thread writes its own rows.
    """
    d64 = np.full(cand.shape, np.inf)
    for t0 in range(0, train.shape[0], rows):
        chunk = np.asarray(train[t0 : t0 + rows])
        inside = (cand >= t0) & (cand < t0 + chunk.shape[0])
        todo = np.flatnonzero(inside.any(axis=1))

        def score(queries: np.ndarray, chunk=chunk, inside=inside, t0=t0) -> None:
            for i in queries:
                cols = np.flatnonzero(inside[i])
                d64[i, cols] = exact_distances(test[i], chunk[cand[i, cols] - t0], metric)

        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(score, np.array_split(todo, os.cpu_count() or 1)))
    ties_last = np.where(cand < 0, np.iinfo(np.int64).max, cand)  # padding (-1) sorts after everything
    order = np.lexsort((ties_last, d64), axis=1)[:, :k]
    return np.take_along_axis(cand, order, axis=1), np.take_along_axis(d64, order, axis=1)


def default_chunk_rows(dim: int) -> int:
    """Train rows per chunk: 256 MiB of float32."""
    return max(1024, CHUNK_BYTES // (4 * max(dim, 1)))


ANNOUNCED_WORK = 10**9  # rows × queries × dimensions from which ground truth says it starts (about a second)


def exact_knn(
    train: Any,
    test: np.ndarray,
    metric: str,
    k: int = 100,
    *,
    device: str = "auto",
    margin: int = 16,
    query_chunk: int = QUERY_BLOCK,
    train_chunk: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (ids, distances), each (n_test, k), nearest first, distances in ann-benchmarks form.

    ``train`` is an array or anything sliced by rows with a ``shape`` (an h5py dataset): it is
    read in chunks of ``train_chunk`` rows, twice per block of ``query_chunk`` queries.
    ``progress``, when given, is called with the number of (query, train row) pairs done.
    """
    n = train.shape[0]
    test = np.asarray(test)
    note = f"ground truth: exact {min(k, n)} neighbours of {test.shape[0]:,} queries over {n:,} vectors ({metric})"
    long = n * test.shape[0] * train.shape[1] >= ANNOUNCED_WORK  # small ones (churn checkpoints) pass silently
    with phase("ground truth", announce=note if long else None):  # the sweep's time summary; a line on screen
        return _exact_knn(train, test, metric, k, device, margin, query_chunk, train_chunk, progress)


def _exact_knn(
    train: Any,
    test: np.ndarray,
    metric: str,
    k: int,
    device: str,
    margin: int,
    query_chunk: int,
    train_chunk: int | None,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``exact_knn``'s work (timed and announced there)."""
    n = train.shape[0]
    k = min(k, n)
    count = min(n, k + margin)
    rows = train_chunk or default_chunk_rows(train.shape[1])
    knn = _KNN[choose_backend(device)]
    if n <= rows and not isinstance(train, np.ndarray):
        train = train[:]  # it fits in one chunk: read the file once, not once per pass
    ids = np.empty((test.shape[0], k), dtype=np.int64)
    dists = np.empty((test.shape[0], k), dtype=np.float64)
    for a in range(0, test.shape[0], query_chunk):
        q = test[a : a + query_chunk]
        q32 = np.ascontiguousarray(normalize(q) if metric == "angular" else q, dtype=np.float32)
        cand = _enough(train, q32, metric, k, count, knn, rows, progress)
        ids[a : a + len(q)], dists[a : a + len(q)] = _rerank(train, q, cand, metric, k, rows)
    return ids, dists


def work_units(train_rows: int, queries: int) -> int:
    """Total of what ``exact_knn`` reports to ``progress`` (candidate pass; widened queries not counted)."""
    return train_rows * queries
