"""Qdrant embedded (qdrant-edge-py: Qdrant's own engine in process), plus the index mapping shared with server mode.

Harness families map onto Qdrant like this (the same for ``qdrant`` and ``qdrant-server``):

* ``flat``: indexing switched off (``indexing_threshold: 0``), so every segment keeps Qdrant's plain
  index, and every query is sent with ``exact: true``.
* ``hnsw``: Qdrant's HNSW (``m``, ``ef_construction`` = ``ef_construct``, ``full_scan_threshold``; ``ef`` =
  ``hnsw_ef`` per query),
  optionally over scalar (int8) or binary quantized vectors (build param ``quantization``), with
  ``rescore`` / ``oversampling`` per query.
* ``pq``: the same HNSW over product-quantized vectors (``compression`` x4…x64).

Qdrant only builds HNSW for segments larger than ``indexing_threshold`` KB (default 10 MB) and,
even when built, scans a segment holding fewer vectors than ``full_scan_threshold`` KB worth.
The harness forces indexing (threshold 1 KB) and waits for the optimizer, but keeps
``full_scan_threshold`` as a build parameter with Qdrant's default: where a segment falls below
it, ``effective_config()`` reports ``flat`` so the runner flags that no graph was searched.

Native hybrid search (``set_texts``, ``set_hybrid``): the passages go into a ``text`` payload field with Qdrant's
full-text index, BM25 scoring on (English: word tokenizer, lowercase, English stopwords, Snowball stemmer;
Japanese: MeCab-pretokenized passages on the whitespace tokenizer, since the edge build's multilingual tokenizer
leaves Japanese unsplit). Each query is one ``query`` call: two prefetches (the vector search at the search
setting, and a ``TextQuery``, BM25 over that index), fused by Qdrant's ``Fusion.Rrf(k=60)``.

Concurrent clients: an ``EdgeShard`` locks its write-ahead log, so a second process cannot load a
shard another holds ("failed to open WAL ...: WouldBlock", qdrant-edge-py 0.9). The embedded store
therefore offers no handle and the runner records single-client figures only; ``qdrant-server``
serves many clients.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.filters import OPS, Condition, Filter, by_field, range_bounds, typed
from vdbbench.stores.base import BuildSpec, Case, Conformance, FamilySpec, IdentityRule, Knob, Param, Store, StoreError
from vdbbench.stores.fulltext import RRF_K, PreparedTexts

TEXT = "text"  # the payload field holding the passage, with its full-text index (native hybrid only)
DISTANCES = {"euclidean": "Euclid", "angular": "Cosine", "ip": "Dot"}
FORCED_INDEXING_THRESHOLD_KB = 1  # smallest threshold that still means "index"; 0 means "never index"
COMPRESSIONS = ("x4", "x8", "x16", "x32", "x64")

_GRAPH_BUILD = (
    Param("m", int, 16, "edges per node in the HNSW graph", minimum=1),
    Param("ef_construction", int, 100, "candidate list size while building", minimum=4, aliases=("ef_construct",)),
    Param(
        "full_scan_threshold", int, 10000,
        "KB of vectors below which a segment is scanned instead of searched through its graph", minimum=1,
    ),
)  # fmt: skip
_GRAPH_SEARCH = (
    Param(
        "ef",
        int,
        100,
        "candidate list size while searching (Qdrant's default is ef_construct)",
        minimum=1,
        aliases=("hnsw_ef",),
    ),
    Param("rescore", bool, True, "re-score quantized candidates with the original vectors"),
    Param("oversampling", float, 1.0, "fetch oversampling × k quantized candidates before rescoring", minimum=1.0),
)

FAMILIES = {
    "flat": FamilySpec("flat", "plain index, exact: true", exact=True),
    "hnsw": FamilySpec(
        "hnsw",
        "HNSW",
        build=(
            *_GRAPH_BUILD,
            Param("quantization", str, "none", "vector quantization under the graph", ("none", "scalar", "binary")),
        ),
        search=_GRAPH_SEARCH,
        note="quantization scalar = int8, binary = 1 bit; rescore/oversampling apply only to quantized builds",
    ),
    "pq": FamilySpec(
        "pq",
        "HNSW + product quantization",
        build=(*_GRAPH_BUILD, Param("compression", str, "x16", "product quantization compression ratio", COMPRESSIONS)),
        search=_GRAPH_SEARCH,
    ),
}

QDRANT_SMALL = {"full_scan_threshold": 10}  # KB: below the 250 KB contract data, so the graph serves, not a scan
QDRANT_SENT = ("ef", "rescore", "oversampling")  # search parameters travel with each query; none is reported
QDRANT_FLAT = Case("flat")
QDRANT_HNSW = Case("hnsw", QDRANT_SMALL, {"ef": 200}, floor=0.98, sent=QDRANT_SENT)


# -- the one mapping from harness to Qdrant's request bodies -------------------------------------
def quantization_body(spec: BuildSpec) -> dict[str, Any] | None:
    """``quantization_config`` as in https://qdrant.tech/documentation/guides/quantization/ (None: none)."""
    if spec.family == "pq":
        return {"product": {"compression": spec.params["compression"]}}
    kind = spec.params.get("quantization", "none") if spec.family == "hnsw" else "none"
    if kind == "scalar":
        return {"scalar": {"type": "int8"}}
    if kind == "binary":
        return {"binary": {}}
    return None


def collection_body(spec: BuildSpec) -> dict[str, Any]:
    """The body of ``PUT /collections/{name}`` (https://qdrant.tech/documentation/concepts/collections/,
    https://qdrant.tech/documentation/concepts/indexing/#vector-index) for one harness build."""
    body: dict[str, Any] = {"vectors": {"size": spec.dim, "distance": DISTANCES[spec.metric]}}
    if spec.family == "flat":
        body["optimizers_config"] = {"indexing_threshold": 0}  # 0 = never build a vector index
        return body
    p = spec.params
    body["hnsw_config"] = {
        "m": p["m"], "ef_construct": p["ef_construction"], "full_scan_threshold": p["full_scan_threshold"],
    }  # fmt: skip
    body["optimizers_config"] = {"indexing_threshold": FORCED_INDEXING_THRESHOLD_KB}
    quant = quantization_body(spec)
    if quant is not None:
        body["quantization_config"] = quant
    return body


def search_params_body(spec: BuildSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The ``params`` object of a query (https://qdrant.tech/documentation/concepts/search/#search-api)."""
    if spec.family == "flat":
        return {"exact": True}
    body: dict[str, Any] = {"hnsw_ef": int(params.get("ef", 100)), "exact": False}
    if quantization_body(spec) is not None:
        body["quantization"] = {
            "ignore": False,
            "rescore": bool(params.get("rescore", True)),
            "oversampling": float(params.get("oversampling", 1.0)),
        }
    return body


# payload index schema per attribute kind (https://qdrant.tech/documentation/concepts/indexing/#payload-index)
PAYLOAD_SCHEMAS = {"str": "keyword", "int": "integer", "float": "float"}
FILTER_NOTE = (
    "filterable HNSW: the payload index's matches scored exactly when fewer than full_scan_threshold, else a graph "
    "walk checking the filter"
)


def payload_index_body(spec: BuildSpec) -> dict[str, str]:
    """``field_schema`` of ``PUT /collections/{name}/index`` per attribute column, created before any insert so
    the HNSW build adds its payload-aware links."""
    return {name: PAYLOAD_SCHEMAS[kind] for name, kind in spec.attributes.items()}


def _equal(c: Condition) -> dict[str, Any]:
    """An eq / in condition: ``match`` for strings and integers (a keyword or integer index lookup). A float has no
    match in Qdrant (MatchValue takes str, int, bool), so it is the closed range [v, v], and ``in`` any of those."""
    values = c.value if c.op == "in" else (c.value,)
    if all(isinstance(v, str) for v in values) or all(isinstance(v, int) for v in values):
        return {"key": c.field, "match": {"any": list(values)} if c.op == "in" else {"value": c.value}}
    ranges = [{"key": c.field, "range": {"gte": v, "lte": v}} for v in values]
    return {"should": ranges} if c.op == "in" else ranges[0]


def engine_filter(flt: Filter) -> dict[str, Any]:
    """The filter as Qdrant's REST body (https://qdrant.tech/documentation/concepts/filtering/): a ``must`` of field
    conditions, one ``range`` per field holding all its bounds. Shared by both Qdrant stores: the server validates it
    into qdrant-client's ``models.Filter``, the embedded store converts it with ``edge_filter``. JSON carries string
    values as they are, so quotes need no escaping."""
    must: list[dict[str, Any]] = []
    for field, conditions in by_field(flt).items():
        for c in conditions:
            if c.op in ("eq", "in"):
                must.append(_equal(c))
        bounds = range_bounds(conditions)
        if bounds:
            must.append({"key": field, "range": bounds})
    return {"must": must}


def served_family(graph_built: bool, below_full_scan: bool, quantization: dict[str, Any] | None) -> str:
    """The harness family Qdrant actually serves, from what it reports about its segments."""
    if not graph_built or below_full_scan:
        return "flat"
    return "pq" if quantization and "product" in quantization else "hnsw"


def quantization_params(family: str, quantization: dict[str, Any] | None) -> dict[str, Any]:
    """Harness quantization params as read back from an engine's ``quantization_config``."""
    quantization = quantization or {}
    if family == "pq" or "product" in quantization:
        return {"compression": (quantization.get("product") or {}).get("compression")}
    kind = next((k for k in ("scalar", "binary", "product") if k in quantization), "none")
    return {"quantization": kind}


def graph_params(hnsw: dict[str, Any]) -> dict[str, Any]:
    """Portable build params from an engine-reported ``hnsw_config``."""
    return {"m": hnsw.get("m"), "ef_construction": hnsw.get("ef_construct"),
            "full_scan_threshold": hnsw.get("full_scan_threshold")}  # fmt: skip


def _metric_of(distance: str) -> str | None:
    return {v.lower(): k for k, v in DISTANCES.items()}.get(str(distance).lower())


def dir_bytes(path: Path) -> int:
    """Bytes actually allocated on disk (Qdrant preallocates sparse mmap files, so st_size overstates)."""
    return sum(f.stat().st_blocks * 512 for f in Path(path).rglob("*") if f.is_file())


# engine-only build values of settings: portable (family → values): search the graph, never scan a small segment
ENGINE_EXTRAS = {"hnsw": {"full_scan_threshold": 1}}


# -- embedded -----------------------------------------------------------------------------------
class QdrantStore(PreparedTexts, Store):
    """Qdrant's engine embedded through qdrant-edge-py: one shard in the workdir, no server."""

    name = "qdrant"
    description = (
        "Qdrant engine embedded in process (qdrant-edge-py EdgeShard, one process at a time); optimizer run to "
        "completion."
    )
    mode = "embedded"
    identity_rules = (
        IdentityRule(r"^qdrant-edge-py (?P<v>\S+)", "Qdrant", "Qdrant edge", "embedded", "Qdrant edge {v} (embedded)"),
    )
    identity_fallback = ("Qdrant", "Qdrant edge", "embedded")
    packages = ("qdrant-edge-py",)
    engine_extras = ENGINE_EXTRAS
    families = FAMILIES
    # floors measured here; for the quantized builds, on this 32-dim data: scalar int8 loses little. Binary keeps
    # 1 bit per dimension, 32 bits a vector here, so the graph walk ranks coarsely; 10x oversampled rescoring of a
    # wide candidate list recovers most (Qdrant advises binary for >= 1024 dimensions). PQ x4 (a byte per
    # dimension) with 4x oversampled rescoring
    conformance = Conformance(
        cases=(
            QDRANT_FLAT,
            QDRANT_HNSW,
            Case(
                "hnsw",
                QDRANT_SMALL | {"quantization": "scalar"},
                {"ef": 200, "oversampling": 2.0},
                floor=0.98,
                floors={"angular": 0.956},
                sent=QDRANT_SENT,
                label="hnsw-scalar",
            ),
            Case(
                "hnsw",
                QDRANT_SMALL | {"quantization": "binary"},
                {"ef": 400, "oversampling": 10.0},
                floor=0.96,
                floors={"ip": 0.926},
                sent=QDRANT_SENT,
                label="hnsw-binary",
            ),
            Case(
                "pq",
                QDRANT_SMALL | {"compression": "x4"},
                {"ef": 200, "oversampling": 4.0},
                floor=0.978,
                sent=QDRANT_SENT,
            ),
        ),
        knobs=(
            Knob(
                "hnsw", {"m": 16, "ef_construction": 200, "full_scan_threshold": 1}, {"ef": 10}, {"ef": 400}, floor=0.98
            ),
        ),
        filters=(QDRANT_FLAT, QDRANT_HNSW),
        deletes=(QDRANT_FLAT, QDRANT_HNSW),
        attribute_indexes={"str": "keyword", "int": "integer", "float": "float"},  # the shard's payload_schema
        resources=("data_bytes",),
    )
    supports_batch_search = True
    single_process_reason = "qdrant-edge locks its shard's WAL to one process; use qdrant-server for concurrent clients"
    filter_ops = frozenset(OPS)
    filter_note = FILTER_NOTE
    supports_delete = True
    concurrent_writes = False  # qdrant-edge-py documents no thread safety for one EdgeShard: writes interleave
    reserved_attributes = frozenset({TEXT})
    native_hybrid = (
        "Qdrant full-text payload index with BM25 scoring (TextQuery; English: word tokenizer, stopwords, Snowball "
        "stemmer; Japanese: MeCab-pretokenized by vdbbench) + vector search, fused by Qdrant's Fusion.Rrf (k=60)"
    )

    _shard: Any = None
    _filter: Any = None  # the qdrant_edge.Filter sent with every query, or None

    @property
    def _path(self) -> Path:
        return self.workdir / "qdrant-shard"

    def create(self, spec: BuildSpec) -> None:
        import qdrant_edge as qe

        self.refuse_attributes(spec)  # an attribute named like the passage field (text)
        self.drop()
        self.spec = spec
        self._shard = qe.EdgeShard.create(str(self._path), edge_config(collection_body(spec)))
        if self._texts is not None:
            self._shard.update(qe.UpdateOperation.create_field_index(TEXT, self._text_index()))
        for name, schema in payload_index_body(spec).items():
            self._shard.update(qe.UpdateOperation.create_field_index(name, getattr(qe.PayloadSchemaType,
                                                                                   schema.capitalize())))  # fmt: skip

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        import qdrant_edge as qe

        payloads = payload_rows(attributes, len(ids))
        if self._texts is not None:
            payloads = [(p or {}) | {TEXT: self._texts[i]} for p, i in zip(payloads, ids.tolist(), strict=True)]
        points = [qe.Point(int(i), v, p) for i, v, p in zip(ids.tolist(), np.asarray(vectors, np.float32), payloads,
                                                              strict=True)]  # fmt: skip
        self._shard.update(qe.UpdateOperation.upsert_points(points))

    def delete(self, ids: np.ndarray) -> None:
        import qdrant_edge as qe

        # applied in process before update() returns: the next query no longer sees the points
        self._shard.update(qe.UpdateOperation.delete_points([int(i) for i in np.asarray(ids).tolist()]))

    def build_index(self) -> None:
        # optimize() blocks until the optimizer has nothing left to plan: every segment above the
        # indexing threshold then holds its HNSW graph (and quantized vectors).
        self._shard.optimize()
        # A segment under 1 KB of vectors stays plain; effective_config() then reports flat.
        self._shard.flush()

    def set_search_params(self, params: dict[str, Any]) -> None:
        import qdrant_edge as qe

        super().set_search_params(params)
        body = search_params_body(self.spec, self.search_params)
        quant = body.get("quantization")
        self._params = qe.SearchParams(
            hnsw_ef=body.get("hnsw_ef"),
            exact=body["exact"],
            quantization=qe.QuantizationSearchParams(**quant) if quant else None,
        )

    def _request(self, query: np.ndarray, k: int) -> Any:
        import qdrant_edge as qe

        if not hasattr(self, "_params"):
            self.set_search_params(self.search_params)
        return qe.QueryRequest(limit=k, query=qe.Query.Nearest(np.asarray(query, np.float32)), params=self._params,
                               filter=self._filter)  # fmt: skip

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._filter_body = None if flt is None else engine_filter(typed(flt, self.spec.attributes))
        self._filter = None if flt is None else edge_filter(self._filter_body)

    # -- native hybrid (Qdrant's BM25 text index + vector search, its own RRF) -------------------
    def _text_index(self) -> Any:
        import qdrant_edge as qe

        if self._text_prep.language == "ja":  # already MeCab tokens: split on spaces, nothing else
            return qe.TextIndexParams(tokenizer=qe.TokenizerType.Whitespace, lowercase=True,
                                      stemmer=qe.DisabledStemmer(), scoring=True)  # fmt: skip
        return qe.TextIndexParams(tokenizer=qe.TokenizerType.Word, lowercase=True, stopwords=qe.Language.English,
                                  stemmer=qe.SnowballParams(qe.SnowballLanguage.English), scoring=True)  # fmt: skip

    def _hybrid_request(self, query: tuple[np.ndarray, str], k: int) -> Any:
        """Both legs as prefetches of k each (the vector one at the search setting), fused by Qdrant's RRF."""
        import qdrant_edge as qe

        if not hasattr(self, "_params"):
            self.set_search_params(self.search_params)
        vector, text = query
        dense = qe.Query.Nearest(np.asarray(vector, np.float32))
        words = qe.TextQuery(TEXT, self._text_prep.prepare(text))
        legs = [qe.Prefetch(limit=k, query=dense, params=self._params, filter=self._filter),
                qe.Prefetch(limit=k, query=words, filter=self._filter)]  # fmt: skip
        return qe.QueryRequest(limit=k, prefetches=legs, query=qe.Fusion.Rrf(k=RRF_K))

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        request = self._hybrid_request(query, k) if self._hybrid else self._request(query, k)
        hits = self._shard.query(request)
        return np.fromiter((h.id for h in hits), dtype=np.int64, count=len(hits))

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        import qdrant_edge as qe

        answers = self._shard.query_batch(qe.QueryBatchRequest([self._request(q, k) for q in queries]))
        return [np.fromiter((h.id for h in hits), dtype=np.int64, count=len(hits)) for hits in answers]

    def client_handle(self) -> None:
        return None  # the shard's WAL admits one process: see the module docstring

    def _segments(self) -> list[dict[str, Any]]:
        """The engine's own per-segment metadata files (segment.json and, where built, hnsw_config.json)."""
        out = []
        for seg in sorted((self._path / "segments").glob("*/segment.json")):
            vector = json.loads(seg.read_text())["config"]["vector_data"][""]
            graph_file = seg.parent / "vector_index" / "hnsw_config.json"
            graph = json.loads(graph_file.read_text()) if graph_file.exists() else None
            out.append({"segment": seg.parent.name, "vector_data": vector, "hnsw_graph": graph})
        return out

    def effective_config(self) -> dict[str, Any]:
        info = self._shard.info()
        segments = self._segments()
        graphs = [s for s in segments if s["vector_data"]["index"]["type"] == "hnsw" and s["hnsw_graph"]]
        # A segment whose vector count is below its full_scan_threshold (converted by Qdrant into
        # a vector count in hnsw_config.json) is scanned, not searched through the graph.
        below = any(g["hnsw_graph"]["indexed_vector_count"] < g["hnsw_graph"]["full_scan_threshold"] for g in graphs)
        built = bool(graphs) and info.points_count > 0 and info.indexed_vectors_count >= info.points_count
        main = graphs[0]["vector_data"] if graphs else (segments[0]["vector_data"] if segments else {})
        quant = main.get("quantization_config")
        family = served_family(built, below, quant)
        params: dict[str, Any] = {}
        if graphs:
            options = main["index"]["options"]
            params = graph_params(options)
            params |= quantization_params(self.spec.family, quant)
        return {
            "family": family,
            "metric": _metric_of(main.get("distance", "")),
            "params": params,
            "engine": {
                "points_count": info.points_count,
                "indexed_vectors_count": info.indexed_vectors_count,
                "segments_count": info.segments_count,
                "segments": segments,
                "search_params": search_params_body(self.spec, self.search_params),
                **({"fts": self._fts(info.payload_schema)} if self._texts is not None else {}),
            },
            **(
                {"attribute_indexes": attribute_indexes(info.payload_schema, self.spec)} if self.spec.attributes else {}
            ),
            **({"filter": self._filter_body} if self.filter else {}),
        }

    def _fts(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """The text field's index as the shard reports it (payload_schema), for native hybrid search."""
        index = schema.get(TEXT)
        params = getattr(index, "params", None)
        stemmer = getattr(params, "stemmer", None)
        return {"field": TEXT, "points": getattr(index, "points", None), "text": self._text_prep.how,
                "type": str(getattr(index, "data_type", None)).split(".")[-1],
                "tokenizer": str(getattr(params, "tokenizer", None)).split(".")[-1],
                "stopwords": str(getattr(params, "stopwords", None)), "stemmer": type(stemmer).__name__,
                "scoring": str(getattr(getattr(params, "scoring", None), "type", None)).split(".")[-1],
                "fusion": f"Fusion.Rrf(k={RRF_K})"}  # fmt: skip

    def resources(self) -> dict[str, Any]:
        return {"data_bytes": dir_bytes(self._path)} if self._path.exists() else {}

    def engine_version(self) -> str:
        return f"qdrant-edge-py {version('qdrant-edge-py')}"

    def build_threads(self) -> int | None:
        return os.cpu_count() or 1  # max_indexing_threads, set explicitly in edge_config

    def drop(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        shutil.rmtree(self._path, ignore_errors=True)

    def close(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None


def payload_rows(attributes: Mapping[str, np.ndarray] | None, n: int) -> list[dict[str, Any] | None]:
    """One payload per row from the batch's attribute columns (numpy scalars as Python values); None without."""
    if not attributes:
        return [None] * n
    columns = {name: np.asarray(col).tolist() for name, col in attributes.items()}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def attribute_indexes(schema: Mapping[str, Any], spec: BuildSpec) -> dict[str, str]:
    """Payload index type per attribute column as the engine reports it (``payload_schema``); "none" where absent."""
    reported = {name: str(getattr(info, "data_type", None) or info.get("data_type")).split(".")[-1].lower()
                for name, info in schema.items()}  # fmt: skip
    return {name: reported.get(name, "none") for name in spec.attributes}


def edge_filter(body: dict[str, Any]) -> Any:
    """A qdrant-edge ``Filter`` from the REST-shaped filter body of ``engine_filter`` (same mapping as the server)."""
    import qdrant_edge as qe

    def condition(c: dict[str, Any]) -> Any:
        if "should" in c:
            return qe.Filter(should=[condition(x) for x in c["should"]])
        if "range" in c:
            return qe.FieldCondition(c["key"], range=qe.RangeFloat(**c["range"]))
        match = c["match"]
        return qe.FieldCondition(c["key"], match=qe.MatchValue(match["value"]) if "value" in match
                                 else qe.MatchAny(match["any"]))  # fmt: skip

    return qe.Filter(must=[condition(c) for c in body["must"]])


def edge_config(body: dict[str, Any]) -> Any:
    """A qdrant-edge ``EdgeConfig`` from the REST-shaped collection body (same mapping as the server)."""
    import qdrant_edge as qe

    vectors = body["vectors"]
    hnsw = body.get("hnsw_config")
    quant = body.get("quantization_config")
    edge_quant = None
    if quant and "scalar" in quant:
        edge_quant = qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8)
    elif quant and "product" in quant:
        ratio = getattr(qe.CompressionRatio, quant["product"]["compression"].upper())
        edge_quant = qe.ProductQuantizationConfig(compression=ratio)
    elif quant and "binary" in quant:
        edge_quant = qe.BinaryQuantizationConfig()
    elif quant:
        raise StoreError(f"qdrant: unsupported quantization {quant}")
    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(
            size=vectors["size"], distance=getattr(qe.Distance, vectors["distance"]), quantization_config=edge_quant
        ),
        hnsw_config=qe.HnswIndexConfig(**hnsw, max_indexing_threads=os.cpu_count() or 1) if hnsw else None,
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=body["optimizers_config"]["indexing_threshold"]),
    )
