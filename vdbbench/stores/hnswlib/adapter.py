"""hnswlib in process: the HNSW baseline with no client/server cost at all."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import numpy as np

from vdbbench.core.filters import OPS, Filter, mask
from vdbbench.stores.base import BuildSpec, Case, Conformance, FamilySpec, IdentityRule, Knob, Param, Store

SPACES = {"euclidean": "l2", "angular": "cosine", "ip": "ip"}


class HnswlibStore(Store):
    name = "hnswlib"
    description = "hnswlib (nmslib) HNSW graph, in process; queries single-threaded like one client."
    mode = "in-process"
    baseline = True
    identity_rules = (
        IdentityRule(r"^hnswlib (?P<v>\S+)", "hnswlib", "hnswlib", "in-process", "hnswlib {v} (in-process library)"),
    )
    identity_fallback = ("hnswlib", "hnswlib", "in-process")
    packages = ("hnswlib",)
    families = {
        "hnsw": FamilySpec(
            "hnsw",
            "hnswlib HNSW",
            build=(
                Param("m", int, 16, "graph degree", minimum=2, aliases=("M",)),
                Param("ef_construction", int, 200, "candidate list size while building", minimum=1),
            ),
            search=(Param("ef", int, 10, "candidate list size while searching (raised to k if lower)", minimum=1),),
        )
    }
    conformance = Conformance(
        cases=(Case("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 200}, floor=0.98),),
        knobs=(Knob("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 10}, {"ef": 400}, floor=0.98),),
        attribute_indexes={"str": "none", "int": "none", "float": "none"},  # the columns live beside the graph
        resources=("index_bytes_estimate",),
    )
    supports_batch_search = True
    filter_ops = frozenset(OPS)
    filter_note = "filter function checked on every graph candidate (hnswlib's filtered search)"
    supports_delete = True  # mark_deleted: the node stays in the graph but is never returned
    # hnswlib's README: add_items is not thread-safe with knn_query, resize_index with neither: churn interleaves
    concurrent_writes = False
    options_help = {
        "seed": "random seed of the graph build (default 100)",
        "build_threads": "threads used to build (default: all CPUs)",
    }

    def create(self, spec: BuildSpec) -> None:
        import hnswlib

        self.spec = spec
        self._index = hnswlib.Index(space=SPACES[spec.metric], dim=spec.dim)
        self._index.init_index(
            max_elements=max(spec.count, 1),
            M=spec.params["m"],
            ef_construction=spec.params["ef_construction"],
            random_seed=int(self.options.get("seed", 100)),
        )
        self._threads = int(self.options.get("build_threads", os.cpu_count() or 1))
        self._index.set_num_threads(self._threads)
        # hnswlib keeps no metadata: the attribute columns live here, indexed by id (a dataset row number)
        self._attrs: dict[str, np.ndarray] = {}
        self._allowed: np.ndarray | None = None  # per id: passes the filter
        self._deleted: set[int] = set()
        self._count = 0

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        needed = self._index.element_count + len(ids)
        if needed > self._index.max_elements:
            self._index.resize_index(needed)
        for name, values in (attributes or {}).items():
            col = self._attrs.get(name)
            size = int(ids.max()) + 1
            if col is None or len(col) < size:
                grown = np.zeros(max(size, self.spec.count), dtype=values.dtype if col is None else col.dtype)
                if col is not None:
                    grown[: len(col)] = col
                col = self._attrs[name] = grown
            col[ids] = values
        self._index.add_items(vectors, ids)
        self._count = self._index.element_count - len(self._deleted)
        if self.filter is not None:
            self._allowed = mask(self.filter, self._attrs)

    def delete(self, ids: np.ndarray) -> None:
        for i in np.asarray(ids, dtype=np.int64).tolist():
            self._index.mark_deleted(i)
        self._deleted.update(np.asarray(ids, dtype=np.int64).tolist())
        self._count = self._index.element_count - len(self._deleted)

    def build_index(self) -> None:
        # hnswlib builds the graph during add_items; it is searchable once they return.
        self._index.set_num_threads(1)
        self._count = self._index.element_count - len(self._deleted)

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._allowed = None if flt is None else mask(flt, self._attrs)
        if self._allowed is not None:  # rows that pass and are in the index: no answer can hold more
            live = np.setdiff1d(np.asarray(self._index.get_ids_list(), dtype=np.int64), list(self._deleted))
            self._passing = int(self._allowed[live[live < len(self._allowed)]].sum())

    def _query(self, queries: np.ndarray, k: int, scored: bool = False, **kw: Any) -> Any:
        """knn_query's labels (with ``scored``: labels and distances), with the filter function when filtered; k is
        first capped at the rows that pass. When the graph walk still finds fewer, hnswlib raises, and k is lowered
        until it answers: that short answer is returned (and counted), never padded (those retries are part of the
        filtered search's measured time)."""
        k = min(k, self._count)
        if self._allowed is None:
            found = self._index.knn_query(queries, k=k, **kw)
            return found if scored else found[0]
        allowed, k = self._allowed, min(k, self._passing)
        keep = lambda label: bool(label < len(allowed) and allowed[label])  # noqa: E731 - hnswlib takes a callable
        while k > 0:
            try:
                found = self._index.knn_query(queries, k=k, filter=keep, **kw)
                return found if scored else found[0]
            except RuntimeError:  # "Cannot return the results in a contiguous 2D array": fewer than k passed
                k -= 1
        empty = np.empty((len(np.atleast_2d(queries)), 0), dtype=np.uint64)
        return (empty, empty.astype(np.float32)) if scored else empty

    def set_search_params(self, params: dict[str, Any]) -> None:
        super().set_search_params(params)
        self._index.set_ef(int(params.get("ef", 10)))

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        return self._query(query, k)[0].view(np.int64)  # hnswlib returns uint64; same bits, no copy on the hot path

    def search_scored(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, the distances hnswlib returns: squared L2, or 1 - inner product), best first; for saved answers,
        never in a timed loop."""
        labels, distances = self._query(query, k, scored=True)
        return labels[0].view(np.int64), distances[0]

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        if self._allowed is not None:  # one short answer would shorten the whole batch: filter one by one
            return [self.search(q, k) for q in queries]
        return list(self._query(queries, k, num_threads=1).view(np.int64))

    def client_handle(self) -> dict[str, Any]:
        # An in-process index cannot be shared: each client process loads its own copy from disk.
        path = self.workdir / "hnswlib-index.bin"
        self._index.save_index(str(path))
        return {
            "path": str(path),
            "space": self._index.space,
            "dim": self._index.dim,
            "ef": self._index.ef,
            "note": "each client process holds its own copy of the index",
        }

    def attach(self, handle: dict[str, Any]) -> None:
        import hnswlib

        self._index = hnswlib.Index(space=handle["space"], dim=handle["dim"])
        self._index.load_index(handle["path"])
        self._index.set_num_threads(1)
        self._index.set_ef(handle["ef"])
        self._count = self._index.element_count
        self._allowed, self._deleted = None, set()

    def effective_config(self) -> dict[str, Any]:
        idx = self._index
        return {
            "family": "hnsw",
            "metric": {v: k for k, v in SPACES.items()}[idx.space],
            "params": {"m": idx.M, "ef_construction": idx.ef_construction, "ef": idx.ef},
            "engine": {
                "space": idx.space,
                "dim": idx.dim,
                "element_count": idx.element_count,
                "max_elements": idx.max_elements,
                "deleted": len(self._deleted),
            },
            **({"attribute_indexes": dict.fromkeys(self.spec.attributes, "none")} if self.spec.attributes else {}),
            **({"filter": self.filter.text()} if self.filter else {}),
        }

    def resources(self) -> dict[str, Any]:
        idx = self._index
        # data level: vector + links; hnswlib does not report its allocation directly.
        per_item = idx.dim * 4 + idx.M * 2 * 4 + 8
        return {"index_bytes_estimate": int(idx.element_count * per_item)}

    def engine_version(self) -> str:
        return f"hnswlib {version('hnswlib')}"

    def build_threads(self) -> int | None:
        return getattr(self, "_threads", None)

    def drop(self) -> None:
        self._index = None
        (self.workdir / "hnswlib-index.bin").unlink(missing_ok=True)
