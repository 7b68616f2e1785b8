"""Exact brute-force search in process: the reference every approximate store is judged against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vdbbench.core.distances import normalize
from vdbbench.core.filters import OPS, Filter, mask
from vdbbench.stores.base import BuildSpec, Case, Conformance, FamilySpec, IdentityRule, Store


def _one_blas_thread() -> None:
    """Search like one client on one core, as hnswlib does; the store runs in its own process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class ExactStore(Store):
    name = "exact"
    description = "In-process brute force with numpy/BLAS (flat, exact), one BLAS thread per client."
    mode = "in-process"
    baseline = True
    identity_rules = (
        IdentityRule(r"^numpy (?P<v>\S+)", "exact search", "exact search (numpy)", "in-process",
                     "Exact search, numpy {v} (in-process)"),
    )  # fmt: skip
    identity_fallback = ("exact search", "exact search (numpy)", "in-process")
    families = {"flat": FamilySpec("flat", "numpy brute force", exact=True)}
    conformance = Conformance(
        cases=(Case("flat"),),
        attribute_indexes={"str": "none", "int": "none", "float": "none"},
        resources=("index_bytes",),
    )
    supports_batch_search = True
    filter_ops = frozenset(OPS)
    filter_note = "pre-filter: only the rows that pass are scored (exact)"
    supports_delete = True
    concurrent_writes = True  # every write swaps in new arrays; a search uses the ones it started with

    def create(self, spec: BuildSpec) -> None:
        self.spec = spec
        self._chunks: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        self._finished = False
        self._data = np.empty((0, spec.dim), dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)
        self._attrs: dict[str, np.ndarray] = {name: np.empty(0) for name in spec.attributes}
        self._sq_norms = np.empty(0, dtype=np.float32)
        self._view: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (data, ids, sq_norms) searched

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.spec.metric == "angular":
            vectors = normalize(vectors).astype(np.float32)
        self._chunks.append((vectors, np.asarray(ids, dtype=np.int64), dict(attributes or {})))
        if self._finished:  # inserts after the build are searchable as soon as they return
            self._merge()

    def delete(self, ids: np.ndarray) -> None:
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        self._data, self._ids = self._data[keep], self._ids[keep]
        self._attrs = {name: col[keep] for name, col in self._attrs.items()}
        self._sq_norms = self._sq_norms[keep]
        self._view = self._filtered()

    def _merge(self) -> None:
        chunks, self._chunks = self._chunks, []
        data = np.ascontiguousarray(np.concatenate([self._data, *(c[0] for c in chunks)]))
        self._ids = np.concatenate([self._ids, *(c[1] for c in chunks)])
        self._attrs = {name: np.concatenate([col, *(c[2][name] for c in chunks)]) if len(col) else
                       np.concatenate([c[2][name] for c in chunks]) for name, col in self._attrs.items()}  # fmt: skip
        self._sq_norms = (data.astype(np.float32) ** 2).sum(axis=1)
        self._data = data
        self._view = self._filtered()

    def build_index(self) -> None:
        _one_blas_thread()
        self._finished = True
        if self._chunks:
            self._merge()
        self._view = self._filtered()

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._view = self._filtered()

    def _filtered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows searched: all of them, or those passing the filter (one state, swapped in whole)."""
        if self.filter is None:
            return self._data, self._ids, self._sq_norms
        keep = mask(self.filter, self._attrs)
        return self._data[keep], self._ids[keep], self._sq_norms[keep]

    def _scores(self, queries: np.ndarray, view: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """Smaller is nearer; per-query constants are left out as they do not change the order."""
        if self.spec.metric == "angular":
            queries = normalize(queries)
        dots = queries.astype(np.float32) @ view[0].T
        return view[2] - 2.0 * dots if self.spec.metric == "euclidean" else -dots

    def _top(self, scores: np.ndarray, k: int, ids: np.ndarray) -> np.ndarray:
        k = min(k, scores.shape[-1])
        if k == 0:
            return np.empty(0, dtype=np.int64)
        part = np.argpartition(scores, k - 1)[:k]
        return ids[part[np.argsort(scores[part], kind="stable")]]

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        view = self._view
        return self._top(self._scores(query[None, :], view)[0], k, view[1])

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        view = self._view
        return [self._top(row, k, view[1]) for row in self._scores(np.asarray(queries), view)]

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
        self._view = (self._data, self._ids, self._sq_norms)

    def effective_config(self) -> dict[str, Any]:
        return {
            "family": "flat",
            "metric": self.spec.metric,
            "params": {},
            "engine": {"kind": "numpy brute force", "count": int(self._ids.size), "dim": self.spec.dim},
            **({"attribute_indexes": dict.fromkeys(self.spec.attributes, "none")} if self.spec.attributes else {}),
            **({"filter": self.filter.text(), "filtered_rows": int(self._view[1].size)} if self.filter else {}),
        }

    def resources(self) -> dict[str, Any]:
        return {"index_bytes": int(self._data.nbytes + self._ids.nbytes)}

    def engine_version(self) -> str:
        return f"numpy {np.__version__}"

    def drop(self) -> None:
        self._data = np.empty((0, 0), dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)
        self._view = None
        (self.workdir / "exact-index.npz").unlink(missing_ok=True)
