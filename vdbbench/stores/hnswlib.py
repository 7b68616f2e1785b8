"""hnswlib in process: the HNSW baseline with no client/server cost at all."""

from __future__ import annotations

import os
from importlib.metadata import version
from typing import Any

import numpy as np

from vdbbench.stores.base import BuildSpec, FamilySpec, Param, Store

SPACES = {"euclidean": "l2", "angular": "cosine", "ip": "ip"}


class HnswlibStore(Store):
    name = "hnswlib"
    description = "hnswlib (nmslib) HNSW graph, in process; queries single-threaded like one client."
    kind = "in-process"
    families = {
        "hnsw": FamilySpec(
            "hnsw",
            "hnswlib HNSW",
            build=(
                Param("M", int, 16, "graph degree", minimum=2),
                Param("ef_construction", int, 200, "candidate list size while building", minimum=1),
            ),
            search=(Param("ef", int, 10, "candidate list size while searching (raised to k if lower)", minimum=1),),
        )
    }
    supports_batch_search = True
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
            M=spec.params["M"],
            ef_construction=spec.params["ef_construction"],
            random_seed=int(self.options.get("seed", 100)),
        )
        self._index.set_num_threads(int(self.options.get("build_threads", os.cpu_count() or 1)))

    def insert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        needed = self._index.element_count + len(ids)
        if needed > self._index.max_elements:
            self._index.resize_index(needed)
        self._index.add_items(vectors, ids)

    def finish(self) -> None:
        # hnswlib builds the graph during add_items; it is searchable once they return.
        self._index.set_num_threads(1)
        self._count = self._index.element_count

    def set_search_params(self, params: dict[str, Any]) -> None:
        super().set_search_params(params)
        self._index.set_ef(int(params.get("ef", 10)))

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        labels, _ = self._index.knn_query(query, k=min(k, self._count))
        return labels[0].view(np.int64)  # hnswlib returns uint64; same bits, no copy on the hot path

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        labels, _ = self._index.knn_query(queries, k=min(k, self._count), num_threads=1)
        return list(labels.view(np.int64))

    def client_handle(self) -> dict[str, Any]:
        # An in-process index cannot be shared: each client process loads its own copy from disk.
        path = self.workdir / "hnswlib-index.bin"
        self._index.save_index(str(path))
        return {"path": str(path), "space": self._index.space, "dim": self._index.dim, "ef": self._index.ef,
                "note": "each client process holds its own copy of the index"}

    def attach(self, handle: dict[str, Any]) -> None:
        import hnswlib

        self._index = hnswlib.Index(space=handle["space"], dim=handle["dim"])
        self._index.load_index(handle["path"])
        self._index.set_num_threads(1)
        self._index.set_ef(handle["ef"])
        self._count = self._index.element_count

    def effective_config(self) -> dict[str, Any]:
        idx = self._index
        return {
            "family": "hnsw",
            "metric": {v: k for k, v in SPACES.items()}[idx.space],
            "params": {"M": idx.M, "ef_construction": idx.ef_construction, "ef": idx.ef},
            "engine": {
                "space": idx.space,
                "dim": idx.dim,
                "element_count": idx.element_count,
                "max_elements": idx.max_elements,
            },
        }

    def resources(self) -> dict[str, Any]:
        idx = self._index
        # data level: vector + links; hnswlib does not report its allocation directly.
        per_item = idx.dim * 4 + idx.M * 2 * 4 + 8
        return {"index_bytes_estimate": int(idx.element_count * per_item)}

    def engine_version(self) -> str:
        return f"hnswlib {version('hnswlib')}"

    def drop(self) -> None:
        self._index = None
        (self.workdir / "hnswlib-index.bin").unlink(missing_ok=True)
