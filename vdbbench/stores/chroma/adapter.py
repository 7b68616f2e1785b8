"""Chroma: embedded ``PersistentClient`` under the workdir, or a Chroma server with option ``url``.

Chroma 1.x (Rust core) adds every write straight into its hnswlib graph: the old
brute-force buffer (``batch_size``) is gone in local segments and ``sync_threshold`` only
sets how often the graph is written to disk. So once the collection counts every row,
queries are served by HNSW.

Chroma keeps a loaded HNSW graph in memory with the ``ef_search`` it had when loaded:
``collection.modify(ef_search=...)`` updates the stored configuration but not the loaded
graph (checked with chromadb 1.5.9 embedded and a 1.0.0 server: recall did not move). The
embedded adapter therefore reopens its client after a change, so the new value serves; a
server cannot be made to reload from here, so there the adapter reports the ef_search the
graph was loaded with, and the runner flags the difference.

Concurrent clients: a Chroma server serves many ``HttpClient``s, so in server mode each client
process attaches to the collection by URL. The embedded ``PersistentClient`` is not process-safe
(Chroma's docs: one client per path; chroma-core/chroma#961, #3792: a second process may not see
the vectors another wrote, and opening may compact the log into the HNSW files), so embedded mode
offers no handle and the runner records only single-client figures.

Attributes are each row's metadata; Chroma indexes every metadata key by default (inverted
indexes per value type, read back from the collection's schema). A filter is a ``where``
clause: the metadata indexes yield the passing ids and the hnswlib graph search keeps to them.
Deletes are ``delete(ids=...)``, applied before the call returns.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from vdbbench.core import filters
from vdbbench.core.filters import Filter
from vdbbench.core.provenance import redact
from vdbbench.stores.base import (
    BuildSpec,
    Case,
    ComposeAddress,
    Conformance,
    FamilySpec,
    IdentityRule,
    Knob,
    Param,
    Store,
    StoreError,
)
from vdbbench.stores.servers import without_credentials

COLLECTION = "vdbbench"
SPACES = {"euclidean": "l2", "angular": "cosine", "ip": "ip"}
SEARCH_CHUNK = 1000
# the schema's inverted index for each attribute kind (chromadb.api.types ValueTypes: attribute, index)
SCHEMA_INDEX = {"str": ("string", "string_inverted_index"), "int": ("int_value", "int_inverted_index"),
                "float": ("float_value", "float_inverted_index")}  # fmt: skip


def engine_filter(flt: Filter) -> dict[str, Any]:
    """``flt`` as a Chroma ``where``: ``{field: {"$op": value}}``, several under ``$and`` (Chroma takes
    one condition per clause); an ``in`` list mixing ints and floats becomes all floats, as ``$in``
    needs values of one type."""
    clauses = []
    for c in flt.conditions:
        value = c.value
        if c.op == "in":
            value = list(value)
            if {type(v) for v in value} == {int, float}:
                value = [float(v) for v in value]
        clauses.append({c.field: {f"${c.op}": value}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaStore(Store):
    name = "chroma"
    description = (
        "Chroma (hnswlib inside): embedded PersistentClient (one process at a time); a Chroma server with option url."
    )
    mode = "embedded"
    identity_rules = (
        IdentityRule(r"^chroma server v?(?P<v>\S+)", "Chroma", "Chroma", "server", "Chroma {v} {where}"),
        IdentityRule(r"^chromadb (?P<v>\S+)", "Chroma", "Chroma embedded client", "embedded",
                     "Chroma {v} (embedded client)"),
    )  # fmt: skip
    identity_fallback = ("Chroma", "Chroma embedded client", "embedded")
    packages = ("chromadb",)
    compose_services = ("chroma",)
    compose_address = ComposeAddress(None, "url", "http://127.0.0.1:8000")
    families = {
        "hnsw": FamilySpec(
            "hnsw",
            "HNSW (hnswlib)",
            build=(
                Param("m", int, 16, "graph degree (old name hnsw:M)", minimum=2, aliases=("max_neighbors",)),
                Param("ef_construction", int, 100, "candidate list size while building", minimum=1),
            ),
            search=(Param("ef", int, 100, "candidate list size while searching", minimum=1, aliases=("ef_search",)),),
        )
    }
    conformance = Conformance(
        cases=(Case("hnsw", {"m": 16, "ef_construction": 100}, {"ef": 200}, floor=0.98),),
        knobs=(Knob("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 10}, {"ef": 400}, floor=0.98),),
        attribute_indexes={
            "str": "string_inverted_index",
            "int": "int_inverted_index",
            "float": "float_inverted_index",
        },
        resources=("index_bytes",),
        secrets={"url": "https://alice:s3cret@chroma.internal:8443"},
    )
    supports_batch_search = True
    filter_ops = frozenset(filters.OPS)
    filter_note = (
        "pre-filter: the metadata inverted indexes yield the passing ids, the hnswlib graph walk keeps to them"
    )
    supports_delete = True  # collection.delete(ids=...): applied before it returns
    concurrent_writes = False  # not documented as safe for one client searched while another thread writes
    options_help = {
        "url": "Chroma server URL (e.g. http://127.0.0.1:8000); without it the embedded PersistentClient runs",
        "index_timeout_s": "seconds to wait for the engine to finish indexing (default 86400)",
    }
    single_process_reason = "the embedded PersistentClient is not process-safe; use a Chroma server for concurrency"

    def __init__(self, workdir: Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(workdir, options)
        self.url: str | None = self.options.get("url")
        self._data_dir = self.workdir / "chroma"
        self._client = None
        self._collection = None
        self._loaded_ef: int | None = None  # the ef_search the in-memory graph was loaded with
        self._attached = False  # searching a collection another instance built: change nothing on it
        self._where: dict[str, Any] | None = None  # engine_filter(self.filter), None when unfiltered

    # -- lifecycle -----------------------------------------------------------------
    def open(self) -> None:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self.url:
            u = urlparse(self.url)
            try:
                self._client = chromadb.HttpClient(
                    host=u.hostname or "127.0.0.1", port=u.port or 8000, ssl=u.scheme == "https", settings=settings
                )
                self._client.heartbeat()
            except Exception as e:  # noqa: BLE001 - no answer is an error naming the URL, never the embedded engine
                raise StoreError(
                    f"chroma: no Chroma server answers at {redact(self.url)} ({type(e).__name__}); start it with "
                    f"`python -m vdbbench services up chroma` or correct options.url"
                ) from None
        else:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(path=str(self._data_dir), settings=settings)

    def _reopen_embedded(self) -> None:
        """Drop the process-wide embedded system, so the next load reads the stored configuration afresh."""
        from chromadb.api.client import SharedSystemClient

        self._client = self._collection = None
        SharedSystemClient.clear_system_cache()

    def close(self) -> None:
        if self._client is None:
            return
        if self.url:
            self._client = self._collection = None
            return
        self._reopen_embedded()
        shutil.rmtree(self._data_dir, ignore_errors=True)

    # -- build ---------------------------------------------------------------------
    def create(self, spec: BuildSpec) -> None:
        self.spec = spec
        if COLLECTION in [c.name for c in self._client.list_collections()]:
            self._client.delete_collection(COLLECTION)
        ef_search = self.families["hnsw"].search[0].default
        hnsw = {
            "space": SPACES[spec.metric],
            "max_neighbors": spec.params["m"],
            "ef_construction": spec.params["ef_construction"],
            "ef_search": ef_search,
        }
        self._collection = self._client.create_collection(
            COLLECTION, configuration={"hnsw": hnsw}, embedding_function=None
        )
        self._loaded_ef = ef_search
        self._count = 0
        self.filter, self._where = None, None

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: dict[str, np.ndarray] | None = None) -> None:
        step = self._client.get_max_batch_size()
        vectors = np.asarray(vectors, dtype=np.float32)
        columns = {name: np.asarray(values).tolist() for name, values in (attributes or {}).items()}  # Python types
        metadatas = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)] or None
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            self._collection.add(
                ids=[str(int(i)) for i in chunk],
                embeddings=vectors[start : start + step],
                metadatas=metadatas[start : start + step] if metadatas else None,
            )
        self._count += len(ids)

    def delete(self, ids: np.ndarray) -> None:
        step = self._client.get_max_batch_size()
        for start in range(0, len(ids), step):
            self._collection.delete(ids=[str(int(i)) for i in ids[start : start + step]])
        self._count = self._collection.count()

    def build_index(self) -> None:
        """Return once Chroma counts every row: local segments add each write to the graph as it is applied."""
        deadline = time.monotonic() + float(self.options.get("index_timeout_s", 24 * 3600))
        while (count := self._collection.count()) < self._count:
            if time.monotonic() > deadline:
                raise StoreError(f"chroma holds {count} of {self._count} rows after the time limit")
            time.sleep(0.2)

    # -- search --------------------------------------------------------------------
    def set_search_params(self, params: dict[str, Any]) -> None:
        super().set_search_params(params)
        if self._attached:  # the builder owns the configuration; a server serves its load-time ef_search anyway
            return
        ef = int(params.get("ef", self._loaded_ef))
        stored = self._stored_hnsw()["ef_search"]
        if ef != stored:
            self._collection.modify(configuration={"hnsw": {"ef_search": ef}})
        if ef != self._loaded_ef and not self.url:
            self._reopen_embedded()
            self.open()
            self._loaded_ef = ef
        self._collection = self._client.get_collection(COLLECTION, embedding_function=None)

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._where = engine_filter(flt) if flt is not None else None

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        result = self._collection.query(
            query_embeddings=[np.asarray(query, dtype=np.float32)], n_results=k, where=self._where, include=[]
        )
        return np.array(result["ids"][0], dtype=np.int64)

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        queries = np.asarray(queries, dtype=np.float32)
        for start in range(0, len(queries), SEARCH_CHUNK):
            result = self._collection.query(
                query_embeddings=list(queries[start : start + SEARCH_CHUNK]), n_results=k, where=self._where, include=[]
            )
            out.extend(np.array(ids, dtype=np.int64) for ids in result["ids"])
        return out

    def client_handle(self) -> dict[str, Any] | None:
        if not self.url:
            return None  # PersistentClient is not process-safe: see the module docstring
        # no user:password@ in the URL: each process takes credentials from its own environment
        return {"url": without_credentials(self.url), "collection": COLLECTION, "spec": self.spec,
                "note": "each client process has its own HttpClient to the server"}  # fmt: skip

    def attach(self, handle: dict[str, Any]) -> None:
        if not handle.get("url"):
            super().attach(handle)  # embedded: refused
        self._attached = True
        self.url, self.spec = handle["url"], handle["spec"]
        self.open()
        self._collection = self._client.get_collection(handle["collection"], embedding_function=None)

    # -- introspection ---------------------------------------------------------------
    def _stored_hnsw(self) -> dict[str, Any]:
        return dict(self._client.get_collection(COLLECTION, embedding_function=None).configuration["hnsw"])

    def effective_config(self) -> dict[str, Any]:
        hnsw = self._stored_hnsw()
        params = {"m": hnsw.get("max_neighbors"), "ef_construction": hnsw.get("ef_construction")}
        # Embedded: reopened after each change, so the stored value is the one the loaded graph serves.
        # Server: the graph keeps its load-time ef_search, which no API reports, so ef is left out (sent).
        if not self.url:
            params["ef"] = hnsw.get("ef_search")
        extra: dict[str, Any] = {}
        if self.spec is not None and self.spec.attributes:
            extra["attribute_indexes"] = self._attribute_indexes()
        if self._where is not None:
            extra["filter"] = self._where
        return {
            **extra,
            "family": "hnsw",
            "metric": {v: k for k, v in SPACES.items()}.get(hnsw.get("space"), hnsw.get("space")),
            "params": params,
            "engine": {
                "configuration": hnsw,
                "count": self._collection.count(),
                "serving": "hnswlib graph holding every applied write (no brute-force buffer in chroma 1.x)",
            },
        }

    def _attribute_indexes(self) -> dict[str, str]:
        """Each attribute → the inverted index the collection's schema enables for its kind (a key's own
        setting, else the schema default), or "none" where it is disabled."""
        schema = self._client.get_collection(COLLECTION, embedding_function=None).schema
        if schema is None:  # a server without schemas (before chroma 1.1): every metadata key is indexed
            return dict.fromkeys(self.spec.attributes, "metadata index (server reports no schema)")
        out = {}
        for name, kind in self.spec.attributes.items():
            value_type, index_name = SCHEMA_INDEX[kind]
            own, default = (getattr(getattr(t, value_type, None), index_name, None)
                            for t in (schema.keys.get(name), schema.defaults))  # fmt: skip
            index = own if own is not None else default
            out[name] = index_name if index is not None and index.enabled else "none"
        return out

    def resources(self) -> dict[str, Any]:
        if self.url:
            return {}
        files = [p for p in self._data_dir.rglob("*") if p.is_file()]
        return {
            "data_bytes": sum(p.stat().st_size for p in files),
            # hnswlib files live in one folder per segment; the rest is chroma.sqlite3 (records, log, metadata)
            "index_bytes": sum(p.stat().st_size for p in files if p.parent != self._data_dir),
        }

    def build_threads(self) -> int | None:
        threads = self._stored_hnsw().get("num_threads") if self._client is not None else None
        return int(threads) if threads else None

    def compose_service(self) -> str | None:
        return self.name if self.url else None  # server mode: its containers' figures go with results

    def engine_version(self) -> str:
        import chromadb

        if self.url:
            return f"chroma server {self._client.get_version()} (chromadb {chromadb.__version__})"
        return f"chromadb {chromadb.__version__}"

    def drop(self) -> None:
        if self._client is not None and COLLECTION in [c.name for c in self._client.list_collections()]:
            self._client.delete_collection(COLLECTION)
        self._collection = None
