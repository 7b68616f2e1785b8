"""Exact brute-force search in process: the reference every approximate store is judged against."""

from __future__ import annotations

from typing import Any

import numpy as np

from vdbbench.distances import normalize
from vdbbench.stores.base import BuildSpec, FamilySpec, Store


def _one_blas_thread() -> None:
    """Search like one client on one core, as hnswlib does; the store runs in its own process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class ExactStore(Store):
    name = "exact"
    description = "In-process brute force with numpy/BLAS (flat, exact), one BLAS thread per client."
    kind = "in-process"
    families = {"flat": FamilySpec("flat", "numpy brute force", exact=True)}
    supports_batch_search = True

    def create(self, spec: BuildSpec) -> None:
        self.spec = spec
        self._chunks: list[np.ndarray] = []
        self._id_chunks: list[np.ndarray] = []
        self._data = np.empty((0, spec.dim), dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)

    def insert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.spec.metric == "angular":
            vectors = normalize(vectors).astype(np.float32)
        self._chunks.append(vectors)
        self._id_chunks.append(np.asarray(ids, dtype=np.int64))

    def finish(self) -> None:
        _one_blas_thread()
        if self._chunks:
            self._data = np.ascontiguousarray(np.concatenate([self._data, *self._chunks]))
            self._ids = np.concatenate([self._ids, *self._id_chunks])
            self._chunks, self._id_chunks = [], []
        self._sq_norms = (self._data.astype(np.float32) ** 2).sum(axis=1)

    def _scores(self, queries: np.ndarray) -> np.ndarray:
        """Smaller is nearer; per-query constants are left out as they do not change the order."""
        if self.spec.metric == "angular":
            queries = normalize(queries)
        dots = queries.astype(np.float32) @ self._data.T
        return self._sq_norms - 2.0 * dots if self.spec.metric == "euclidean" else -dots

    def _top(self, scores: np.ndarray, k: int) -> np.ndarray:
        k = min(k, scores.shape[-1])
        if k == 0:
            return np.empty(0, dtype=np.int64)
        part = np.argpartition(scores, k - 1)[:k]
        return self._ids[part[np.argsort(scores[part], kind="stable")]]

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        return self._top(self._scores(query[None, :])[0], k)

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        return [self._top(row, k) for row in self._scores(np.asarray(queries))]

    def client_handle(self) -> dict[str, Any]:
        path = self.workdir / "exact-index.npz"
        np.savez(path, data=self._data, ids=self._ids)
        return {"path": str(path), "spec": self.spec, "note": "each client process holds its own copy"}

    def attach(self, handle: dict[str, Any]) -> None:
        self.spec = handle["spec"]
        _one_blas_thread()
        with np.load(handle["path"]) as f:
            self._data, self._ids = f["data"], f["ids"]
        self._sq_norms = (self._data.astype(np.float32) ** 2).sum(axis=1)

    def effective_config(self) -> dict[str, Any]:
        return {
            "family": "flat",
            "metric": self.spec.metric,
            "params": {},
            "engine": {"kind": "numpy brute force", "count": int(self._ids.size), "dim": self.spec.dim},
        }

    def resources(self) -> dict[str, Any]:
        return {"index_bytes": int(self._data.nbytes + self._ids.nbytes)}

    def engine_version(self) -> str:
        return f"numpy {np.__version__}"

    def drop(self) -> None:
        self._data = np.empty((0, 0), dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)
        (self.workdir / "exact-index.npz").unlink(missing_ok=True)
