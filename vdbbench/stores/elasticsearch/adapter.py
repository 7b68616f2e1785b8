"""Elasticsearch through the official client: a ``dense_vector`` field searched with ``knn``.

Connects to ``options.url``, else ``$VDBBENCH_ELASTICSEARCH_URL``, else the docker compose service
(http://127.0.0.1:9200). With ``$ELASTIC_PASSWORD`` set it authenticates as ``$ELASTIC_USERNAME``
(default ``elastic``); the compose file runs a local node with security off.

Families: ``hnsw`` = ``index_options.type`` hnsw / int8_hnsw / int4_hnsw / bbq_hnsw (``m``,
``ef_construction``; ``num_candidates`` per query); ``flat`` = type ``flat`` (exact brute force over
the float vectors; the ``knn`` query on a flat field scores every vector), or the quantized
int8_flat / int4_flat / bbq_flat, which are brute force over quantized vectors and so not exact.
The harness always sends an explicit type: Elasticsearch's own default depends on its version
and the dimension (int8_hnsw, or bbq_hnsw from 384 dimensions in 9.x).

The index has one shard, no replica and no refresh while loading; ``build_index()`` refreshes and
force-merges to one segment (one HNSW graph, as a static benchmark corpus would be served),
and that is the build's index time. It then restores Elasticsearch's default refresh interval (1 s),
so documents indexed after the build become searchable as they would in service (churn's freshness).
Concurrent clients attach by URL and index name (``client_handle``).

Attribute columns are mapped as keyword (strings: exact terms), long or double (numbers: points, for
ranges). A filter is a bool query of term / terms / range clauses (``engine_filter``) inside the
``knn`` section, where Elasticsearch applies it during the vector search (pre-filter).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import numpy as np

from vdbbench.core.filters import OPS, Filter, by_field, range_bounds, typed
from vdbbench.stores.base import (
    BuildSpec,
    Case,
    ComposeAddress,
    Conformance,
    FamilySpec,
    IdentityRule,
    Param,
    StoreError,
    coverage,
)
from vdbbench.stores.servers import RemoteStore, without_credentials

DEFAULT_URL = "http://127.0.0.1:9200"  # docker/docker-compose.yml service "elasticsearch"
FIELD = "vector"
SIMILARITIES = {"euclidean": "l2_norm", "angular": "cosine", "ip": "max_inner_product"}
HNSW_TYPES = ("hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw")
FIELD_TYPES = {"int": "long", "float": "double", "str": "keyword"}

FAMILIES = {
    "flat": FamilySpec(
        "flat",
        "dense_vector index_options flat",
        build=(Param("type", str, "flat", "flat: exact brute force over the float vectors", ("flat",)),),
        exact=True,
        note="exact only: int8/int4/bbq_flat scan quantized vectors (approximate) and are not offered as flat",
    ),
    "hnsw": FamilySpec(
        "hnsw",
        "dense_vector index_options *hnsw",
        build=(
            Param("type", str, "hnsw", "HNSW over float, int8, int4 or BBQ (1-bit) vectors", HNSW_TYPES),
            Param("m", int, 16, "neighbours per node in the HNSW graph", minimum=2),
            Param("ef_construction", int, 100, "candidate list size while building", minimum=1),
        ),
        search=(
            Param(
                "ef",
                int,
                0,
                "num_candidates: candidates per shard; 0 = Elasticsearch's default (1.5·k); raised to k",
                minimum=0,
                aliases=("num_candidates",),
            ),
        ),  # fmt: skip
    ),
}


def index_body(spec: BuildSpec) -> dict[str, Any]:
    """Settings and mappings for PUT /{index}
    (https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/dense-vector#dense-vector-params)."""
    options: dict[str, Any] = {"type": spec.params.get("type", "flat")}
    if spec.family == "hnsw":
        options |= {"m": spec.params["m"], "ef_construction": spec.params["ef_construction"]}
    if problems := ElasticsearchStore.reserved_clashes(spec.attributes):
        raise StoreError("elasticsearch: " + "; ".join(problems))
    attributes = {name: {"type": FIELD_TYPES[kind]} for name, kind in spec.attributes.items()}
    return {
        "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"}},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                FIELD: {
                    "type": "dense_vector", "dims": spec.dim, "index": True,
                    "similarity": SIMILARITIES[spec.metric], "index_options": options,
                },
                **attributes,
            },
        },
    }  # fmt: skip


def engine_filter(flt: Filter) -> dict[str, Any]:
    """The filter as a bool query of term, terms and range clauses (one range per field), for ``knn.filter``
    (https://www.elastic.co/docs/solutions/search/vector/knn/filtered-knn-search)."""
    clauses: list[dict[str, Any]] = []
    for field, conditions in by_field(flt).items():
        clauses += [{"term": {field: c.value}} for c in conditions if c.op == "eq"]
        clauses += [{"terms": {field: list(c.value)}} for c in conditions if c.op == "in"]
        bounds = range_bounds(conditions)
        if bounds:
            clauses.append({"range": {field: bounds}})
    return {"bool": {"filter": clauses}}


def knn_body(query: np.ndarray, k: int, spec: BuildSpec, params: dict[str, Any],
             flt: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The search body: a top-level ``knn`` section
    (https://www.elastic.co/docs/solutions/search/vector/knn#approximate-knn), with ``flt`` (an
    ``engine_filter`` query) as its filter: inside the knn section, so it pre-filters."""
    knn: dict[str, Any] = {"field": FIELD, "query_vector": np.asarray(query, np.float32).tolist(), "k": k}
    candidates = int(params.get("ef", 0) or 0)
    if candidates:
        knn["num_candidates"] = max(candidates, k)
    if flt is not None:
        knn["filter"] = flt
    return {"knn": knn, "size": k, "_source": False}


def effective_from_mapping(mapping: dict[str, Any], segments: int | None, docs: int | None = None) -> dict[str, Any]:
    """Harness view of GET /{index}/_mapping's vector field and the segment count of GET /{index}/_stats.

    Only type ``flat`` is the exact ``flat`` family; a quantized brute force (int8_flat, int4_flat,
    bbq_flat) is named as what it is, so it can never pass for an exact search. Lucene builds the
    HNSW graph of each segment as it writes it, so with an hnsw type every segment is indexed.
    """
    field = mapping["mappings"]["properties"][FIELD]
    options = field.get("index_options") or {}
    kind = options.get("type")
    family = "hnsw" if kind in HNSW_TYPES else ("flat" if kind == "flat" else str(kind))
    params = {"type": kind}
    if family == "hnsw":
        params |= {"m": options.get("m"), "ef_construction": options.get("ef_construction")}
    metric = {v: k for k, v in SIMILARITIES.items()}.get(field.get("similarity"))
    graph = family == "hnsw"
    cover = None
    if segments is not None:
        cover = coverage(segments, segments if graph else 0, docs or 0, (docs or 0) if graph else 0, "_stats segments")
    engine = {"mapping": mapping, "segments": segments}
    return {"family": family, "metric": metric, "params": params, "engine": engine, "coverage": cover}


def attribute_indexes(mapping: dict[str, Any], attributes: Mapping[str, str]) -> dict[str, str]:
    """Each attribute's field type as GET /{index}/_mapping reports it (keyword: terms; long, double: points),
    or "none" where the field is not indexed (``index: false``: Elasticsearch cannot filter on it fast)."""
    out = {}
    for name in attributes:
        *parents, leaf = name.split(".")  # Elasticsearch expands a dotted name into objects: a.b is b inside a
        props = mapping["mappings"].get("properties") or {}
        for parent in parents:
            props = (props.get(parent) or {}).get("properties") or {}
        field = props.get(leaf)
        out[name] = field.get("type", "object") if field and field.get("index", True) else "none"
    return out


def version_problem(client: str, server: str) -> str | None:
    """elasticsearch-py N sends ``compatible-with=N`` headers that a server of another major version refuses."""
    major = server.split(".")[0]
    if client.split(".")[0] != major and major.isdigit():
        return (
            f"elasticsearch-py {client} cannot talk to Elasticsearch {server}: install the client of the "
            f"server's major version (pip install 'elasticsearch>={major},<{int(major) + 1}')"
        )
    return None


class ElasticsearchStore(RemoteStore):
    name = "elasticsearch"
    description = "Elasticsearch dense_vector + knn search; one shard, force-merged to one segment."
    mode = "server"
    identity_rules = (
        IdentityRule(r"^elasticsearch (?P<v>\S+)", "Elasticsearch", "Elasticsearch", "server",
                     "Elasticsearch {v} {where}"),
    )  # fmt: skip
    identity_fallback = ("Elasticsearch", "Elasticsearch", "server")
    packages = ("elasticsearch",)
    compose_services = ("elasticsearch",)
    compose_address = ComposeAddress("VDBBENCH_ELASTICSEARCH_URL", "url", DEFAULT_URL)
    families = FAMILIES
    # floors of a server not measured here; bbq_* needs >= 64 dimensions and the contract data has 32
    conformance = Conformance(
        cases=(
            Case("flat"),
            Case("hnsw", {}, {"ef": 200}, floor=0.95, sent=("ef",)),
            Case("hnsw", {"type": "int8_hnsw"}, {"ef": 200}, floor=0.9, sent=("ef",), label="hnsw-int8"),
        ),
        filters=(Case("flat"), Case("hnsw", {}, {"ef": 200}, floor=0.95, sent=("ef",))),
        deletes=(Case("flat", floor=0.9), Case("hnsw", {}, {"ef": 200}, floor=0.9, sent=("ef",))),
        writes=Case("hnsw", {}, {"ef": 200}, floor=0.9, sent=("ef",)),
        attribute_indexes={"str": "keyword", "int": "long", "float": "double"},
        options={"index": "vdbbench-test"},
        server_env="VDBBENCH_ELASTICSEARCH_URL",
        secrets={"url": "https://alice:s3cret@es.internal:9200"},
        secret_env={"ELASTIC_PASSWORD": "pw-s3cret"},
    )
    supports_batch_search = True
    max_dim = 4096  # dense_vector's largest indexed dimension
    filter_ops = frozenset(OPS)
    # Lucene scores the passing documents exactly when they are no more than num_candidates or the graph walk
    # visits more nodes than pass (https://www.elastic.co/docs/solutions/search/vector/knn/filtered-knn-search)
    filter_note = "pre-filter inside knn: the HNSW walk accepts only passing documents, exact when few pass"
    supports_delete = True
    reserved_attributes = frozenset({FIELD})
    concurrent_writes = True  # elasticsearch-py documents its client as thread safe; writes go over HTTP
    options_help = {
        "url": "Elasticsearch URL; else VDBBENCH_ELASTICSEARCH_URL; default http://127.0.0.1:9200",
        "index": "index name (default vdbbench)",
        "timeout_s": "client request timeout in seconds (default 600)",
    }

    _filter: dict[str, Any] | None = None  # the bool query sent in knn.filter, built once in set_filter

    @property
    def index(self) -> str:
        return str(self.options.get("index", "vdbbench"))

    def open(self) -> None:
        from elasticsearch import Elasticsearch

        url = self.url
        password = os.environ.get("ELASTIC_PASSWORD")
        auth = (os.environ.get("ELASTIC_USERNAME", "elastic"), password) if password else None
        self._client = Elasticsearch(url, basic_auth=auth, request_timeout=float(self.options.get("timeout_s", 600)))
        try:
            server = self._client.info()["version"]["number"]
        except Exception as e:
            self.close()
            raise self.unreachable(url, e) from None
        problem = version_problem(version("elasticsearch"), server)
        if problem:
            self.close()
            raise StoreError(f"elasticsearch at {url}: {problem}")

    def create(self, spec: BuildSpec) -> None:
        self.spec = spec
        self.drop()
        body = index_body(spec)
        self._client.indices.create(index=self.index, settings=body["settings"], mappings=body["mappings"])

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        columns = {name: values.tolist() for name, values in (attributes or {}).items()}  # numpy → JSON values
        actions = (
            {"_index": self.index, "_id": str(i),
             "_source": {FIELD: v, **{name: values[row] for name, values in columns.items()}}}
            for row, (i, v) in enumerate(zip(ids.tolist(), np.asarray(vectors, np.float32).tolist(), strict=True))
        )  # fmt: skip
        self._bulk(actions, "index")

    def delete(self, ids: np.ndarray) -> None:
        """Delete by id, then refresh: once this returns no search sees the documents."""
        actions = ({"_op_type": "delete", "_index": self.index, "_id": str(i)} for i in np.asarray(ids).tolist())
        self._bulk(actions, "delete", refresh=True)

    def _bulk(self, actions: Any, what: str, **kw: Any) -> None:
        from elasticsearch import helpers

        ok, errors = helpers.bulk(self._client, actions, chunk_size=500, raise_on_error=False, stats_only=False, **kw)
        if errors:
            raise StoreError(f"elasticsearch: {len(errors)} documents failed to {what}, first: {errors[0]}")

    def build_index(self) -> None:
        es = self._client
        es.indices.refresh(index=self.index)
        es.indices.forcemerge(index=self.index, max_num_segments=1, wait_for_completion=True)
        es.indices.refresh(index=self.index)
        segments = self._segment_count()
        if segments is not None and segments > 1:
            raise StoreError(f"elasticsearch: force-merge left {segments} segments, expected 1")
        es.indices.put_settings(index=self.index, settings={"index": {"refresh_interval": None}})  # default: 1 s

    def _segment_count(self) -> int | None:
        stats = self._client.indices.stats(index=self.index, metric="segments")
        return stats["indices"][self.index]["primaries"]["segments"]["count"]

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._filter = None if flt is None else engine_filter(typed(flt, self.spec.attributes))  # JSON numbers as typed

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        res = self._client.search(index=self.index, **knn_body(query, k, self.spec, self.search_params, self._filter))
        hits = res["hits"]["hits"]
        return np.fromiter((int(h["_id"]) for h in hits), dtype=np.int64, count=len(hits))

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        searches: list[dict[str, Any]] = []
        for q in queries:
            searches += [{"index": self.index}, knn_body(q, k, self.spec, self.search_params, self._filter)]
        res = self._client.msearch(searches=searches)
        out = []
        for r in res["responses"]:
            if "error" in r:
                raise StoreError(f"elasticsearch: msearch failed: {r['error']}")
            out.append(np.fromiter((int(h["_id"]) for h in r["hits"]["hits"]), dtype=np.int64))
        return out

    def client_handle(self) -> dict[str, Any]:
        # no user:password@ in the URL: each process takes credentials from its own environment
        return {"url": without_credentials(self.url), "index": self.index, "field": FIELD, "spec": self.spec}

    def attach(self, handle: dict[str, Any]) -> None:
        """Connect to the node holding the index another instance built, to search it only."""
        self.options |= {"url": handle["url"], "index": handle["index"]}
        self.spec = handle["spec"]
        self.open()
        if not self._client.indices.exists(index=self.index):
            raise StoreError(f"elasticsearch: no index {self.index!r} at {handle['url']}")

    def effective_config(self) -> dict[str, Any]:
        mapping = self._client.indices.get_mapping(index=self.index)[self.index]
        docs = self._client.indices.stats(index=self.index, metric="docs")["indices"][self.index]["primaries"]["docs"]
        out = effective_from_mapping(dict(mapping), self._segment_count(), int(docs["count"]))
        if self.spec.attributes:
            out["attribute_indexes"] = attribute_indexes(dict(mapping), self.spec.attributes)
        if self._filter is not None:
            out["filter"] = self._filter
        return out

    def resources(self) -> dict[str, Any]:
        stats = self._client.indices.stats(index=self.index, metric="store")
        return {"data_bytes": stats["indices"][self.index]["primaries"]["store"]["size_in_bytes"]}

    def engine_version(self) -> str:
        try:
            server = self._client.info()["version"]["number"]
        except Exception:  # noqa: BLE001 - provenance only
            server = "?"
        return f"elasticsearch {server} (elasticsearch-py {version('elasticsearch')})"

    def drop(self) -> None:
        if self._client is not None:
            self._client.indices.delete(index=self.index, ignore_unavailable=True)
