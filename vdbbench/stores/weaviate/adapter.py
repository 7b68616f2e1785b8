"""Weaviate server through weaviate-client v4 (REST for the schema, gRPC for import and search).

Connects to ``options.url``, else ``$VDBBENCH_WEAVIATE_URL``, else the docker compose service
(http://127.0.0.1:8080, gRPC 50051; gRPC port from ``options.grpc_port`` / ``$VDBBENCH_WEAVIATE_GRPC_PORT``).
API key, where the server wants one, from ``$WEAVIATE_API_KEY``.

Families: ``flat`` = Weaviate's flat index (brute force); ``hnsw`` = its HNSW, or its
``dynamic`` index (flat until ``threshold`` objects, then HNSW) via ``vectorIndexType``, with
optional BQ / SQ compression; ``pq`` = HNSW with product quantization. ``ef`` is a collection
setting in Weaviate, so ``set_search_params`` updates it on the collection and reads it back.

SQ and PQ are trained only once a shard holds ``trainingLimit`` objects; below that Weaviate
serves uncompressed vectors, and ``effective_config()`` says so (from the shard's
``compressed`` flag), as it says ``flat`` for a dynamic index still under its threshold.

Concurrent clients attach by host, ports and collection name (``client_handle``). As ``ef`` is a
collection setting, each client's ``set_search_params`` writes it too: the same value for all.

Attribute columns become properties (int, number, or text with ``field`` tokenization, so equality
compares the whole value) with Weaviate's filterable index, plus its range index on numbers.
Filters are v4 client ``Filter`` objects (``engine_filter``) sent with each ``near_vector``;
Weaviate pre-filters (an allow-list from those indexes restricts the HNSW search).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any
from urllib.parse import urlparse

import numpy as np

from vdbbench.core.filters import OPS, Filter, typed
from vdbbench.stores.base import (
    BuildSpec,
    Case,
    ComposeAddress,
    Conformance,
    FamilySpec,
    IdentityRule,
    Param,
    StoreError,
)
from vdbbench.stores.servers import RemoteStore

DEFAULT_URL = "http://127.0.0.1:8080"  # docker/docker-compose.yml service "weaviate"
DEFAULT_GRPC_PORT = 50051
DISTANCES = {"euclidean": "l2-squared", "angular": "cosine", "ip": "dot"}
PROPERTY_TYPES = {"int": "int", "float": "number", "str": "text"}
INDEX_FLAGS = ("indexFilterable", "indexRangeFilters", "indexSearchable")
RANGE_METHODS = {"gt": "greater_than", "gte": "greater_or_equal", "lt": "less_than", "lte": "less_or_equal"}
PROPERTY_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")  # https://github.com/weaviate/weaviate/releases/tag/v1.7.2
RESERVED = ("id", "_id", "_additional", "meta")
DELETE_BATCH = 10000  # objects per delete_many: Weaviate's QUERY_MAXIMUM_RESULTS default

_HNSW_BUILD = (
    Param("m", int, 32, "edges per node in the HNSW graph", minimum=1, aliases=("maxConnections",)),
    Param("ef_construction", int, 128, "candidate list size while building", minimum=1, aliases=("efConstruction",)),
)
_SEARCH = (Param("ef", int, -1, "candidate list size while searching; -1 = Weaviate's dynamic ef", minimum=-1),)

FAMILIES = {
    "flat": FamilySpec("flat", "flat (brute force)", exact=True),
    "hnsw": FamilySpec(
        "hnsw",
        "HNSW / dynamic",
        build=(
            *_HNSW_BUILD,
            Param(
                "vectorIndexType", str, "hnsw", "hnsw, or dynamic (flat until threshold objects)", ("hnsw", "dynamic")
            ),
            Param("threshold", int, 10000, "objects at which a dynamic index switches to HNSW", minimum=1),
            Param("compression", str, "none", "vector compression under the graph", ("none", "bq", "sq")),
            Param("trainingLimit", int, 100000, "objects needed before SQ is trained", minimum=1),
        ),  # fmt: skip
        search=_SEARCH,
    ),
    "pq": FamilySpec(
        "pq",
        "HNSW + product quantization",
        build=(
            *_HNSW_BUILD,
            Param("segments", int, 0, "PQ segments (0 = Weaviate picks from the dimension)", minimum=0),
            Param("centroids", int, 256, "centroids per segment", minimum=1),
            Param("trainingLimit", int, 100000, "objects needed before PQ is trained", minimum=1),
        ),
        search=_SEARCH,
    ),
}


def class_body(name: str, spec: BuildSpec) -> dict[str, Any]:
    """The collection definition as POST /v1/schema takes it
    (https://docs.weaviate.io/weaviate/config-refs/indexing/vector-index, .../config-refs/collections)."""
    p = spec.params
    distance = DISTANCES[spec.metric]
    properties = [property_body(column, kind) for column, kind in spec.attributes.items()]
    if len({prop["name"] for prop in properties}) < len(properties):
        raise StoreError(f"weaviate: attributes {sorted(spec.attributes)} differ only in their first letter's case, "
                         "which Weaviate lowercases; rename one")  # fmt: skip
    body: dict[str, Any] = {"class": name, "vectorizer": "none", "properties": properties}
    if spec.family == "flat":
        body |= {"vectorIndexType": "flat", "vectorIndexConfig": {"distance": distance}}
        return body
    hnsw: dict[str, Any] = {
        "distance": distance, "maxConnections": p["m"], "efConstruction": p["ef_construction"], "ef": -1,
    }  # fmt: skip
    if spec.family == "pq":
        hnsw["pq"] = {
            "enabled": True, "segments": p["segments"], "centroids": p["centroids"],
            "trainingLimit": p["trainingLimit"],
        }  # fmt: skip
    elif p.get("compression") == "bq":
        hnsw["bq"] = {"enabled": True}
    elif p.get("compression") == "sq":
        hnsw["sq"] = {"enabled": True, "trainingLimit": p["trainingLimit"]}
    if spec.family == "hnsw" and p.get("vectorIndexType") == "dynamic":
        body |= {
            "vectorIndexType": "dynamic",
            "vectorIndexConfig": {"distance": distance, "threshold": p["threshold"], "hnsw": hnsw,
                                  "flat": {"distance": distance}},
        }  # fmt: skip
    else:
        body |= {"vectorIndexType": "hnsw", "vectorIndexConfig": hnsw}
    return body


def property_name(column: str) -> str:
    """The property an attribute column becomes: Weaviate lowercases a property name's first letter when it
    creates the class (schema.LowercaseAllPropertyNames), so the adapter does it everywhere it names one."""
    return column[:1].lower() + column[1:]


def property_body(name: str, kind: str) -> dict[str, Any]:
    """One attribute column as a property (https://docs.weaviate.io/weaviate/config-refs/collections, properties):
    in the filterable (roaring bitmap) index; numbers also in the range index, text tokenized as one whole
    value (``field``: Equal matches the value, not a word of it) and kept out of the BM25 index."""
    if not PROPERTY_NAME.fullmatch(name) or property_name(name) in RESERVED:
        raise StoreError(
            f"weaviate: attribute {name!r} cannot be a property name (letters, digits and _, not starting with a "
            f"digit, none of {list(RESERVED)}); rename the column"
        )
    prop: dict[str, Any] = {"name": property_name(name), "dataType": [PROPERTY_TYPES[kind]], "indexFilterable": True}
    if kind == "str":
        return prop | {"tokenization": "field", "indexSearchable": False}
    return prop | {"indexRangeFilters": True}


def attribute_indexes(schema: dict[str, Any], attributes: Mapping[str, str]) -> dict[str, str]:
    """Each attribute's inverted indexes as GET /v1/schema/{class} reports its property: the flags that are on."""
    props = {p.get("name"): p for p in schema.get("properties") or []}
    return {name: "+".join(f for f in INDEX_FLAGS if props.get(property_name(name), {}).get(f)) or "none"
            for name in attributes}  # fmt: skip


def engine_filter(flt: Filter) -> Any:
    """The filter as a v4 client ``Filter`` (https://docs.weaviate.io/weaviate/search/filters): equal,
    contains_any, greater_than / greater_or_equal / less_than / less_or_equal, all of them combined with And.
    The Python type of each value picks valueInt / valueNumber / valueText, and Weaviate refuses valueInt on a
    number property and the reverse: give it a ``filters.typed`` filter."""
    from weaviate.classes.query import Filter as W

    parts = []
    for c in flt.conditions:
        prop = W.by_property(property_name(c.field))
        if c.op == "eq":
            parts.append(prop.equal(c.value))
        elif c.op == "in":
            parts.append(prop.contains_any(list(c.value)))
        else:
            parts.append(getattr(prop, RANGE_METHODS[c.op])(c.value))
    return parts[0] if len(parts) == 1 else W.all_of(parts)


def filter_json(weaviate_filter: Any) -> dict[str, Any]:
    """The client's filter in Weaviate's REST ``where`` form ({"operator", "path", "valueText"...}), for records."""
    from weaviate.collections.filters import _FilterToREST  # the client's own converter (private name)

    return _FilterToREST.convert(weaviate_filter)


def effective_from_schema(schema: dict[str, Any], spec: BuildSpec, shards: list[dict[str, Any]]) -> dict[str, Any]:
    """Harness view of GET /v1/schema/{class} plus the shards' status from GET /v1/nodes?output=verbose."""
    index_type = schema.get("vectorIndexType")
    config = schema.get("vectorIndexConfig") or {}
    if index_type is None and schema.get("vectorConfig"):  # servers that report even one vector as named
        named = next(iter(schema["vectorConfig"].values()))
        index_type, config = named.get("vectorIndexType"), named.get("vectorIndexConfig") or {}
    objects = sum(s.get("objectCount", 0) for s in shards)
    compressed = bool(shards) and all(s.get("compressed") for s in shards)
    hnsw = config.get("hnsw", config) if index_type == "dynamic" else config
    distance = config.get("distance") or hnsw.get("distance")
    metric = {v: k for k, v in DISTANCES.items()}.get(distance)
    # every compression Weaviate offers (PQ, SQ, BQ, RQ), also one a server applies by itself
    # (DEFAULT_QUANTIZATION, https://docs.weaviate.io/weaviate/configuration/compression/rq-compression)
    kinds = [k for k in ("bq", "sq", "rq") if (hnsw.get(k) or {}).get("enabled")]
    if index_type == "flat":  # a flat index scanning compressed vectors is not exact: named as what it is
        family = "+".join(["flat", *kinds])
        return {"family": family, "metric": metric, "params": {}, "engine": {"schema": schema, "shards": shards}}
    pq_on = (hnsw.get("pq") or {}).get("enabled", False)
    params: dict[str, Any] = {"m": hnsw.get("maxConnections"), "ef_construction": hnsw.get("efConstruction"),
                              "ef": hnsw.get("ef")}  # fmt: skip
    if spec.family == "pq" or pq_on:
        pq = hnsw.get("pq") or {}
        params |= {"segments": pq.get("segments"), "centroids": pq.get("centroids"),
                   "trainingLimit": pq.get("trainingLimit")}  # fmt: skip
        family = "pq" if pq_on and compressed else "hnsw"
    else:
        # an enabled but untrained (SQ) compression is not served: report what is
        params |= {"vectorIndexType": index_type, "compression": kinds[0] if kinds and compressed else "none"}
        if index_type == "dynamic":
            params["threshold"] = config.get("threshold")
        if "sq" in kinds:
            params["trainingLimit"] = (hnsw.get("sq") or {}).get("trainingLimit")
        if "rq" in kinds:
            params["bits"] = (hnsw.get("rq") or {}).get("bits")
        family = "hnsw"
    if index_type == "dynamic" and objects < (config.get("threshold") or 0):
        family = "flat"
    return {"family": family, "metric": metric, "params": params, "engine": {"schema": schema, "shards": shards}}


def connection_settings(options: dict[str, Any]) -> dict[str, Any]:
    """Host, ports and TLS of the Weaviate to use, from options, environment or the compose default."""
    url = urlparse(WeaviateStore.server_url(options))
    secure = url.scheme == "https"
    grpc_port = int(options.get("grpc_port") or os.environ.get("VDBBENCH_WEAVIATE_GRPC_PORT") or DEFAULT_GRPC_PORT)
    return {
        "http_host": url.hostname or "127.0.0.1", "http_port": url.port or (443 if secure else 80),
        "http_secure": secure, "grpc_host": str(options.get("grpc_host") or url.hostname or "127.0.0.1"),
        "grpc_port": grpc_port, "grpc_secure": secure,
    }  # fmt: skip


class WeaviateStore(RemoteStore):
    name = "weaviate"
    description = "Weaviate server through weaviate-client v4 (gRPC batch import and search)."
    mode = "server"
    identity_rules = (
        IdentityRule(r"^weaviate v?(?P<v>\S+)", "Weaviate", "Weaviate", "server", "Weaviate {v} {where}"),
    )
    identity_fallback = ("Weaviate", "Weaviate", "server")
    packages = ("weaviate-client",)
    compose_services = ("weaviate",)
    compose_address = ComposeAddress("VDBBENCH_WEAVIATE_URL", "url", DEFAULT_URL)
    families = FAMILIES
    # floors of a server not measured here. PQ and SQ train only once trainingLimit objects exist: the contract data
    # has 2000, so the builds lower it. Filtered: allow-lists of 2000 rows are under flatSearchCutoff (40000), so
    # Weaviate searches them flat; the floors leave the graph a margin
    conformance = Conformance(
        cases=(
            Case("flat"),
            Case("hnsw", {}, {"ef": 200}, floor=0.95, sent=("threshold", "trainingLimit")),
            Case(
                "hnsw",
                {"compression": "sq", "trainingLimit": 1000},
                {"ef": 200},
                floor=0.9,
                sent=("threshold",),
                label="hnsw-sq",
            ),
            Case("pq", {"segments": 16, "trainingLimit": 1000}, {"ef": 200}, floor=0.6),  # 2 dims per 1-byte code
        ),
        filters=(Case("flat"), Case("hnsw", {}, {"ef": 200}, floor=0.95)),
        deletes=(Case("flat", floor=0.9), Case("hnsw", {}, {"ef": 200}, floor=0.9)),
        options={"collection": "VdbbenchTest"},
        server_env="VDBBENCH_WEAVIATE_URL",
        secrets={"url": "https://weaviate.internal:8443", "grpc_port": 50052},
        secret_env={"WEAVIATE_API_KEY": "k3y-s3cret"},
    )
    supports_batch_search = False  # the v4 client sends one near_vector query per call
    filter_ops = frozenset(OPS)
    # the HNSW walk uses ACORN by default from Weaviate 1.34 (else sweeping); allow-lists under flatSearchCutoff
    # (default 40000 objects) are searched flat
    filter_note = "pre-filter: an allow-list from the property indexes restricts the HNSW walk, or a flat scan"
    supports_delete = True
    reserved_attributes = frozenset(RESERVED)
    concurrent_writes = False  # the sync v4 client does not document thread safety: churn interleaves writes
    options_help = {
        "url": "Weaviate REST URL; else VDBBENCH_WEAVIATE_URL; default http://127.0.0.1:8080",
        "grpc_host": "gRPC host (default: the URL's host)",
        "grpc_port": "gRPC port; else VDBBENCH_WEAVIATE_GRPC_PORT; default 50051",
        "collection": "collection name (default Vdbbench)",
        "batch_size": "objects per insert batch (default 1000)",
        "index_timeout_s": "seconds to wait for the engine to finish indexing (default 3600)",
    }

    _filter: Any = None  # the client Filter sent with each search, built once in set_filter

    @property
    def collection_name(self) -> str:
        return str(self.options.get("collection", "Vdbbench"))

    def open(self) -> None:
        self._connect(connection_settings(self.options))

    def _connect(self, settings: dict[str, Any]) -> None:
        import weaviate
        from weaviate.classes.init import AdditionalConfig, Auth, Timeout

        self._settings = settings
        key = os.environ.get("WEAVIATE_API_KEY")
        try:
            self._client = weaviate.connect_to_custom(
                **settings, auth_credentials=Auth.api_key(key) if key else None,
                additional_config=AdditionalConfig(timeout=Timeout(init=30, query=300, insert=600)),
            )  # fmt: skip
        except Exception as e:
            where = f"{settings['http_host']}:{settings['http_port']} (gRPC {settings['grpc_port']})"
            raise self.unreachable(where, e) from None

    def create(self, spec: BuildSpec) -> None:
        self.spec = spec
        self.drop()
        self._collection = self._client.collections.create_from_dict(class_body(self.collection_name, spec))
        self._inserted = 0

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        coll = self._collection
        columns = {property_name(name): values.tolist() for name, values in (attributes or {}).items()}  # as Python
        with coll.batch.fixed_size(batch_size=int(self.options.get("batch_size", 1000))) as batch:
            for row, (i, v) in enumerate(zip(ids.tolist(), np.asarray(vectors, np.float32).tolist(), strict=True)):
                properties = {name: values[row] for name, values in columns.items()}
                batch.add_object(properties=properties, uuid=uuid.UUID(int=int(i)), vector=v)
        failed = coll.batch.failed_objects
        if failed:
            raise StoreError(f"weaviate: {len(failed)} objects failed to import, first: {failed[0].message}")
        self._inserted += len(ids)

    def delete(self, ids: np.ndarray) -> None:
        """Delete by uuid, at consistency level ALL, so no replica still answers with a deleted object."""
        from weaviate.classes.config import ConsistencyLevel
        from weaviate.classes.query import Filter as W

        coll = self._collection.with_consistency_level(ConsistencyLevel.ALL)
        ids = np.asarray(ids, dtype=np.int64).tolist()
        for start in range(0, len(ids), DELETE_BATCH):
            uuids = [uuid.UUID(int=i) for i in ids[start : start + DELETE_BATCH]]
            result = coll.data.delete_many(where=W.by_id().contains_any(uuids))
            if result.failed:
                raise StoreError(f"weaviate: {result.failed} of {len(uuids)} objects failed to delete")

    def _rest(self, path: str) -> Any:
        """GET a Weaviate REST path and return its JSON: the engine's raw answer, not the client's model of it."""
        import httpx

        settings = self._settings
        scheme = "https" if settings["http_secure"] else "http"
        key = os.environ.get("WEAVIATE_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        r = httpx.get(f"{scheme}://{settings['http_host']}:{settings['http_port']}{path}", headers=headers, timeout=60)
        r.raise_for_status()
        return r.json()

    def _shards(self) -> list[dict[str, Any]]:
        """GET /v1/nodes/{class}?output=verbose: per-shard object count, indexing queue and compression."""
        nodes = self._rest(f"/v1/nodes/{self.collection_name}?output=verbose").get("nodes", [])
        return [dict(s, node=n.get("name")) for n in nodes for s in (n.get("shards") or [])
                if s.get("class") == self.collection_name]  # fmt: skip

    def build_index(self) -> None:
        """Wait until every shard holds all objects, its async indexing queue is empty and it is READY;
        and, where SQ/PQ was asked and enough objects exist to train it, until it is compressed."""
        p = self.spec.params
        trained = self.spec.family == "pq" or p.get("compression") == "sq"
        trains = (trained and self._inserted >= p["trainingLimit"]) or p.get("compression") == "bq"
        deadline = time.monotonic() + float(self.options.get("index_timeout_s", 3600))
        while True:
            shards = self._shards()
            ready = (
                shards
                and sum(s.get("objectCount", 0) for s in shards) >= self._inserted
                and all(s.get("vectorQueueLength", 0) == 0 and s.get("vectorIndexingStatus") == "READY" for s in shards)
                and (not trains or all(s.get("compressed") for s in shards))
            )
            if ready:
                return
            if time.monotonic() > deadline:
                raise StoreError(f"weaviate: index not ready after {self.options.get('index_timeout_s', 3600)} s: "
                                 f"{shards}")  # fmt: skip
            time.sleep(0.2)  # polling interval of the engine's own status, not a fixed wait

    def set_search_params(self, params: dict[str, Any]) -> None:
        from weaviate.classes.config import Reconfigure

        super().set_search_params(params)
        if self.spec.family == "flat":
            return
        ef = int(params.get("ef", -1))
        hnsw = Reconfigure.VectorIndex.hnsw(ef=ef)
        if self.spec.params.get("vectorIndexType") == "dynamic":
            self._collection.config.update(vectorizer_config=Reconfigure.VectorIndex.dynamic(hnsw=hnsw))
        else:
            self._collection.config.update(vector_index_config=hnsw)

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._filter = None if flt is None else engine_filter(typed(flt, self.spec.attributes))

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        res = self._collection.query.near_vector(
            near_vector=np.asarray(query, np.float32).tolist(), limit=k, return_properties=[], filters=self._filter
        )
        return np.fromiter((o.uuid.int for o in res.objects), dtype=np.int64, count=len(res.objects))

    def client_handle(self) -> dict[str, Any]:
        # hosts, ports and TLS only: each process takes the API key from its own environment
        return {**connection_settings(self.options), "collection": self.collection_name, "spec": self.spec}

    def attach(self, handle: dict[str, Any]) -> None:
        """Connect to the server holding the collection another instance built, to search it only."""
        self.options["collection"] = handle["collection"]
        self.spec = handle["spec"]
        self._connect({k: v for k, v in handle.items() if k not in ("collection", "spec")})
        if not self._client.collections.exists(self.collection_name):
            raise StoreError(f"weaviate: no collection {self.collection_name!r} at {self._settings['http_host']}")
        self._collection = self._client.collections.get(self.collection_name)

    def effective_config(self) -> dict[str, Any]:
        schema = self._rest(f"/v1/schema/{self.collection_name}")
        out = effective_from_schema(schema, self.spec, self._shards())
        if self.spec.attributes:
            out["attribute_indexes"] = attribute_indexes(schema, self.spec.attributes)
        if self._filter is not None:
            out["filter"] = filter_json(self._filter)
        return out

    def engine_version(self) -> str:
        try:
            server = self._client.get_meta().get("version", "?")
        except Exception:  # noqa: BLE001 - provenance only
            server = "?"
        return f"weaviate {server} (weaviate-client {version('weaviate-client')})"

    def drop(self) -> None:
        if self._client is not None and self._client.collections.exists(self.collection_name):
            self._client.collections.delete(self.collection_name)
