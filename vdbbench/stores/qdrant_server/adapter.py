"""Qdrant server through qdrant-client: the same families and request bodies as the embedded ``qdrant`` store.

Connects to ``options.url``, else ``$VDBBENCH_QDRANT_URL``, else the docker compose service
(http://127.0.0.1:6333). API key from ``options.api_key``, ``$QDRANT__SERVICE__API_KEY`` or
``$VDBBENCH_QDRANT_API_KEY``.

Bulk loading follows Qdrant's own recipe: the collection is created with indexing off, and
``build_index()`` switches on the configured ``indexing_threshold`` (1 KB, so even small data is
indexed) and waits until the collection is green, the optimizer idle and
``indexed_vectors_count`` covers every point. That wait is the build's index time.

Concurrent clients attach by URL and collection name (``client_handle``); they only search.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import numpy as np

from vdbbench.core.filters import OPS, Filter, typed
from vdbbench.stores.base import BuildSpec, Case, ComposeAddress, Conformance, IdentityRule, StoreError, coverage
from vdbbench.stores.base import served_family as base_served_family
from vdbbench.stores.qdrant.adapter import (
    ENGINE_EXTRAS,
    FAMILIES,
    FILTER_NOTE,
    QDRANT_SENT,
    QDRANT_SMALL,
    _metric_of,
    attribute_indexes,
    collection_body,
    engine_filter,
    graph_params,
    payload_index_body,
    payload_rows,
    quantization_params,
    search_params_body,
    served_family,
)
from vdbbench.stores.servers import RemoteStore, without_credentials

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:6333"  # docker/docker-compose.yml service "qdrant"


def server_url(options: dict[str, Any]) -> str:
    return str(options.get("url") or os.environ.get("VDBBENCH_QDRANT_URL") or DEFAULT_URL)


SERVER_HNSW = Case("hnsw", QDRANT_SMALL, {"ef": 200}, floor=0.95, sent=QDRANT_SENT)


class QdrantServerStore(RemoteStore):
    name = "qdrant-server"
    description = "Qdrant server (docker compose or remote) through qdrant-client; waits for the optimizer to finish."
    mode = "server"
    identity_rules = (IdentityRule(r"^qdrant v?(?P<v>\S+)", "Qdrant", "Qdrant", "server", "Qdrant {v} {where}"),)
    identity_fallback = ("Qdrant", "Qdrant", "server")
    packages = ("qdrant-client",)
    engine_extras = ENGINE_EXTRAS
    compose_services = ("qdrant",)
    compose_address = ComposeAddress("VDBBENCH_QDRANT_URL", "url", DEFAULT_URL)
    families = FAMILIES
    # the embedded store's builds (vdbbench.stores.qdrant), at the floors of a server not measured here
    conformance = Conformance(
        cases=(
            Case("flat"),
            SERVER_HNSW,
            Case(
                "hnsw",
                QDRANT_SMALL | {"quantization": "scalar"},
                {"ef": 200, "oversampling": 2.0},
                floor=0.9,
                sent=QDRANT_SENT,
                label="hnsw-scalar",
            ),
            Case(
                "hnsw",
                QDRANT_SMALL | {"quantization": "binary"},
                {"ef": 400, "oversampling": 10.0},
                floor=0.8,
                sent=QDRANT_SENT,
                label="hnsw-binary",
            ),
            Case(
                "pq",
                QDRANT_SMALL | {"compression": "x4"},
                {"ef": 200, "oversampling": 4.0},
                floor=0.9,
                sent=QDRANT_SENT,
            ),
        ),
        filters=(SERVER_HNSW,),
        deletes=(SERVER_HNSW,),
        attribute_indexes={"str": "keyword", "int": "integer", "float": "float"},
        options={"collection": "vdbbench_test"},
        server_env="VDBBENCH_QDRANT_URL",
        secrets={"url": "https://alice:s3cret@qdrant.internal:6333"},
        secret_env={"QDRANT__SERVICE__API_KEY": "k3y-s3cret"},
    )
    supports_batch_search = True
    filter_ops = frozenset(OPS)
    filter_note = FILTER_NOTE
    supports_delete = True
    concurrent_writes = False  # not tried against a server here: writes interleave with searches
    options_help = {
        "url": "Qdrant server URL; else VDBBENCH_QDRANT_URL; default http://127.0.0.1:6333",
        "api_key": "Qdrant API key (qdrant-client's name); else QDRANT__SERVICE__API_KEY / VDBBENCH_QDRANT_API_KEY",
        "collection": "collection name (default vdbbench)",
        "prefer_grpc": "talk gRPC instead of REST (default false)",
        "timeout_s": "client request timeout in seconds (default 300)",
        "index_timeout_s": "seconds to wait for the engine to finish indexing (default 3600)",
    }

    _filter: Any = None  # the models.Filter sent with every query, or None
    server_version: str | None = None

    @property
    def collection(self) -> str:
        return str(self.options.get("collection", "vdbbench"))

    def open(self) -> None:
        from qdrant_client import QdrantClient

        url = self.url
        api_key = (
            self.options.get("api_key")
            or os.environ.get("QDRANT__SERVICE__API_KEY")
            or os.environ.get("VDBBENCH_QDRANT_API_KEY")
        )
        self._client = QdrantClient(
            url=url, api_key=api_key or None, prefer_grpc=bool(self.options.get("prefer_grpc", False)),
            timeout=int(self.options.get("timeout_s", 300)),
            check_compatibility=False,  # its check runs in a thread that fails noisily with no server; ours is below
        )  # fmt: skip
        try:
            self._client.get_collections()
            self.server_version = str(self._client.info().version)
            problem = version_problem(version("qdrant-client"), self.server_version)
            if problem:  # recorded with every point too (effective.engine.compatibility)
                log.warning("qdrant-server at %s: %s; see docker/README.md for the tested pairs", url, problem)
        except Exception as e:
            self.close()
            raise self.unreachable(url, e) from None

    def create(self, spec: BuildSpec) -> None:
        from qdrant_client import models

        self.spec = spec
        body = collection_body(spec)
        # load with indexing off; build_index() switches on the threshold from the body
        body_at_load = {**body, "optimizers_config": {**body["optimizers_config"], "indexing_threshold": 0}}
        cc = models.CreateCollection.model_validate(body_at_load)
        if self._client.collection_exists(self.collection):
            self._client.delete_collection(self.collection)
        self._client.create_collection(
            self.collection, vectors_config=cc.vectors, hnsw_config=cc.hnsw_config,
            optimizers_config=cc.optimizers_config, quantization_config=cc.quantization_config,
        )  # fmt: skip
        for name, schema in payload_index_body(spec).items():  # before the points, so the HNSW build links them
            self._client.create_payload_index(self.collection, name, field_schema=schema, wait=True)
        self._body = body

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        from qdrant_client import models

        batch = models.Batch(
            ids=[int(i) for i in ids], vectors=np.asarray(vectors, np.float32).tolist(),
            payloads=payload_rows(attributes, len(ids)) if attributes else None,
        )  # fmt: skip
        self._client.upsert(self.collection, points=batch, wait=True)

    def delete(self, ids: np.ndarray) -> None:
        from qdrant_client import models

        # wait=True: the call returns once the deletion is applied, so the next query no longer sees the points
        selector = models.PointIdsList(points=[int(i) for i in np.asarray(ids).tolist()])
        self._client.delete(self.collection, points_selector=selector, wait=True)

    def build_index(self) -> None:
        from qdrant_client import models

        threshold = self._body["optimizers_config"]["indexing_threshold"]
        if threshold:
            self._client.update_collection(
                self.collection, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=threshold)
            )
        deadline = time.monotonic() + float(self.options.get("index_timeout_s", 3600))
        while True:
            info = self._client.get_collection(self.collection)
            status = getattr(info.status, "value", info.status)
            optimizer = getattr(info.optimizer_status, "value", info.optimizer_status)
            indexed = (info.indexed_vectors_count or 0) >= (info.points_count or 0) or not threshold
            if status == "green" and optimizer == "ok" and indexed:
                return
            if status == "red":
                raise StoreError(f"qdrant-server: collection is red: {info.optimizer_status}")
            if status == "grey":  # optimizations pending until an update arrives; an empty diff triggers them
                self._client.update_collection(self.collection, optimizers_config=models.OptimizersConfigDiff())
            if time.monotonic() > deadline:
                raise StoreError(
                    f"qdrant-server: index not complete after {self.options.get('index_timeout_s', 3600)} s "
                    f"(status {status}, {info.indexed_vectors_count}/{info.points_count} vectors indexed)"
                )
            time.sleep(0.2)  # polling interval of the engine's own status, not a fixed wait

    def set_search_params(self, params: dict[str, Any]) -> None:
        from qdrant_client import models

        super().set_search_params(params)
        self._params = models.SearchParams.model_validate(search_params_body(self.spec, self.search_params))

    def set_filter(self, flt: Filter | None) -> None:
        from qdrant_client import models

        super().set_filter(flt)
        self._filter_body = None if flt is None else engine_filter(typed(flt, self.spec.attributes))
        self._filter = None if flt is None else models.Filter.model_validate(self._filter_body)

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        res = self._client.query_points(
            self.collection, query=np.asarray(query, np.float32).tolist(), search_params=self._params, limit=k,
            with_payload=False, query_filter=self._filter,
        )  # fmt: skip
        return np.fromiter((p.id for p in res.points), dtype=np.int64, count=len(res.points))

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        from qdrant_client import models

        requests = [
            models.QueryRequest(query=np.asarray(q, np.float32).tolist(), params=self._params, limit=k,
                                with_payload=False, filter=self._filter)
            for q in queries
        ]  # fmt: skip
        answers = self._client.query_batch_points(self.collection, requests=requests)
        return [np.fromiter((p.id for p in r.points), dtype=np.int64, count=len(r.points)) for r in answers]

    def client_handle(self) -> dict[str, Any]:
        # no user:password@ in the URL: each process takes the API key from its own environment
        return {"url": without_credentials(self.url), "collection": self.collection, "spec": self.spec}

    def attach(self, handle: dict[str, Any]) -> None:
        """Connect to the server holding the collection another instance built, to search it only."""
        self.options |= {"url": handle["url"], "collection": handle["collection"]}
        self.spec = handle["spec"]
        self.open()
        if not self._client.collection_exists(self.collection):
            raise StoreError(f"qdrant-server: no collection {self.collection!r} at {handle['url']}")

    def effective_config(self) -> dict[str, Any]:
        info = self._client.get_collection(self.collection)
        effective = effective_from_collection_info(
            info.model_dump(mode="json"), self.spec, self.search_params, self._segments(), self.server_version
        )
        if self._filter is not None:
            effective["filter"] = self._filter_body
        return effective

    def _segments(self) -> list[dict[str, Any]] | None:
        """This collection's segments from ``GET /telemetry`` (https://api.qdrant.tech/api-reference/service/telemetry):
        per segment its type, vector count, indexed vector count and index config; None when not readable."""
        try:
            telemetry = self._client.http.service_api.telemetry(details_level=3).model_dump(mode="json")["result"]
            collections = (telemetry.get("collections") or {}).get("collections") or []
            mine = next(c for c in collections if c.get("id") == self.collection)
            return [seg for shard in mine.get("shards") or [] for seg in ((shard.get("local") or {}).get("segments")
                                                                          or [])]  # fmt: skip
        except Exception as e:  # noqa: BLE001 - without telemetry the collection totals are all there is
            log.warning("qdrant-server: telemetry not readable (%s); coverage from collection totals only", e)
            return None

    def engine_version(self) -> str:
        try:
            server = self._client.info().version
        except Exception:  # noqa: BLE001 - version is provenance only
            server = "?"
        return f"qdrant {server} (qdrant-client {version('qdrant-client')})"

    def drop(self) -> None:
        if self._client is not None and self._client.collection_exists(self.collection):
            self._client.delete_collection(self.collection)


def segment_coverage(segments: list[dict[str, Any]], full_scan_threshold_kb: int) -> dict[str, Any]:
    """Rows Qdrant searches through an HNSW graph, segment by segment, from telemetry's ``SegmentTelemetry``.

    Qdrant decides per segment (https://qdrant.tech/documentation/concepts/indexing/#vector-index): a segment
    is searched through its graph only when it is an ``indexed`` segment whose vector index is ``hnsw`` and
    its vectors take at least ``full_scan_threshold`` KB; any other segment is scanned.
    """
    rows = indexed_rows = indexed_segments = 0
    for seg in segments:
        info, config = seg.get("info") or {}, seg.get("config") or {}
        vectors = next(iter((info.get("vector_data") or {}).values()), {})
        vector_config = next(iter((config.get("vector_data") or {}).values()), {})
        n = int(vectors.get("num_vectors", info.get("num_vectors", 0)))
        graph_rows = int(vectors.get("num_indexed_vectors", info.get("num_indexed_vectors", 0)))
        kb = n * int(vector_config.get("size") or 0) * 4 / 1024
        graph = (info.get("segment_type") == "indexed" and (vector_config.get("index") or {}).get("type") == "hnsw"
                 and kb >= full_scan_threshold_kb)  # fmt: skip
        rows += n
        if graph and graph_rows:
            indexed_segments += 1
            indexed_rows += min(graph_rows, n)
    return coverage(len(segments), indexed_segments, rows, indexed_rows, "telemetry segments")


def version_problem(client: str, server: str) -> str | None:
    """Qdrant supports a client one minor version apart from its server; more drift is flagged (not fatal)."""
    c, s = (re.match(r"v?(\d+)\.(\d+)", v or "") for v in (client, server))
    if not (c and s):
        return None
    (cmaj, cmin), (smaj, smin) = (tuple(map(int, c.groups())), tuple(map(int, s.groups())))
    if cmaj != smaj or abs(cmin - smin) > 1:
        return f"qdrant-client {client} and Qdrant server {server} differ by more than one minor version"
    return None


def effective_from_collection_info(
    info: dict[str, Any],
    spec: BuildSpec,
    search: dict[str, Any],
    segments: list[dict[str, Any]] | None = None,
    server_version: str | None = None,
) -> dict[str, Any]:
    """Harness view of ``GET /collections/{name}`` (https://api.qdrant.tech/api-reference/collections/get-collection),
    with per-segment coverage from telemetry when ``segments`` are given."""
    config = info["config"]
    vectors = config["params"]["vectors"]
    hnsw = config.get("hnsw_config") or {}
    quant = vectors.get("quantization_config") or config.get("quantization_config")
    indexing = (config.get("optimizer_config") or {}).get("indexing_threshold")
    points = info.get("points_count") or 0
    built = bool(indexing) and points > 0 and (info.get("indexed_vectors_count") or 0) >= points
    # every segment is at most the whole collection: if all of it is under full_scan_threshold, all is scanned
    below = points * vectors["size"] * 4 / 1024 < (hnsw.get("full_scan_threshold") or 0)
    family = served_family(built, below, quant)
    params: dict[str, Any] = {}
    if indexing:
        params = graph_params(hnsw)
        params |= quantization_params(spec.family, quant)
    engine: dict[str, Any] = {"collection": info, "search_params": search_params_body(spec, search)}
    cover = None
    if segments is not None:
        cover = segment_coverage(segments, int(hnsw.get("full_scan_threshold") or 0))
        engine["segments"] = segments
        if family != "flat" and built:  # the graph family, only where segments really carry a searched graph
            family = base_served_family(family, cover["rows"], cover["indexed_rows"])
    if server_version is not None:
        engine["server_version"] = server_version
        engine["compatibility"] = version_problem(version("qdrant-client"), server_version)
    return {
        "family": family,
        "metric": _metric_of(vectors["distance"]),
        "params": params,
        "engine": engine,
        "coverage": cover,
        **({"attribute_indexes": attribute_indexes(info.get("payload_schema") or {}, spec)} if spec.attributes else {}),
    }
