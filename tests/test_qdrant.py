"""Qdrant: the embedded engine (qdrant-edge-py) for real, the shared request mapping against the docs,
and the shared contract against a Qdrant server when VDBBENCH_QDRANT_URL is set."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from attachkit import assert_no_secret, assert_same_answers, search_from_second_process
from storekit import (
    BASELINES,
    assert_answers_valid,
    build_and_search,
    check_baseline,
    check_delete_and_insert,
    check_filters,
    files_left,
    open_store,
    small_data,
)

from vdbbench.core.filters import parse_filter
from vdbbench.stores import BuildSpec, get_store_class
from vdbbench.stores.qdrant.adapter import (
    FAMILIES,
    collection_body,
    engine_filter,
    payload_index_body,
    search_params_body,
)
from vdbbench.stores.qdrant_server.adapter import DEFAULT_URL, effective_from_collection_info

SMALL = {"full_scan_threshold": 10}  # KB: below the 250 KB contract data, so the graph is searched, not scanned
GENEROUS = {"ef": 200}

# (family, build, search, baseline key, floor). Floors for the quantized builds, on this 32-dim data:
# scalar int8 loses little (>= 0.9). Binary keeps 1 bit per dimension, 32 bits per vector here, so the
# graph walk ranks coarsely; with 10x oversampled rescoring of a wide candidate list it reaches >= 0.8
# (Qdrant advises binary for >= 1024 dimensions; at 4x oversampling it scores ~0.45 on ip here). PQ x4
# (one byte per dimension) with 4x oversampled rescoring reaches >= 0.9; coarser codes are tested below.
BINARY_SEARCH = {"ef": 400, "oversampling": 10.0}
CASES = [
    ("flat", {}, {}, "flat", 1.0),
    ("hnsw", SMALL, GENEROUS, "hnsw", 0.95),
    ("hnsw", SMALL | {"quantization": "scalar"}, GENEROUS | {"oversampling": 2.0}, "hnsw-scalar", 0.9),
    ("hnsw", SMALL | {"quantization": "binary"}, BINARY_SEARCH, "hnsw-binary", 0.8),
    ("pq", SMALL | {"compression": "x4"}, GENEROUS | {"oversampling": 4.0}, "pq", 0.9),
]


@pytest.mark.parametrize("metric", ["euclidean", "angular", "ip"])
@pytest.mark.parametrize("family,build,search,key,floor", CASES, ids=[c[3] for c in CASES])
def test_embedded_contract(tmp_path, family, build, search, key, floor, metric):
    store = open_store("qdrant", tmp_path)
    out = build_and_search(store, family, metric, build, search)
    assert out.recall >= floor, f"{key}/{metric}: recall {out.recall}"
    assert_answers_valid(out, 10, 2000)
    assert out.mismatches == []
    assert out.effective["family"] == family and out.effective["metric"] == metric
    defaults = {p.name: p.default for p in FAMILIES[family].build}
    assert out.effective["params"] == defaults | build
    assert out.effective["engine"]["indexed_vectors_count"] == (0 if family == "flat" else 2000)
    assert out.resources["data_bytes"] > 0
    check_baseline("qdrant", key, metric, out.recall)
    store.drop()
    store.close()
    assert files_left(tmp_path) == []


@pytest.mark.parametrize("family,build,floor", [("flat", {}, 1.0), ("hnsw", SMALL, 0.95)])
def test_embedded_filters_natively(tmp_path, family, build, floor):
    """Every contract filter through the payload filter: hnsw floor 0.95, the unfiltered floor, measured 1.0 at
    ef 200 on every filter (Qdrant's planner scores the payload index's matches exactly below full_scan_threshold,
    and walks the graph with payload-aware links above it)."""
    store = open_store("qdrant", tmp_path)
    try:
        out = check_filters(store, family, floor, build, GENEROUS)
        effective = store.effective_config()
        # read back from the shard's own payload_schema
        assert effective["attribute_indexes"] == {"kind": "keyword", "year": "integer", "score": "float"}
        assert out["none-pass"].selectivity == 0.0 and out["range-int"].short == 0
        store.set_filter(parse_filter({"kind": "a"}))
        assert store.effective_config()["filter"] == {"must": [{"key": "kind", "match": {"value": "a"}}]}
    finally:
        store.close()


@pytest.mark.parametrize("family,build,floor", [("flat", {}, 1.0), ("hnsw", SMALL, 0.95)])
def test_embedded_deletes_and_inserts_after_the_build(tmp_path, family, build, floor):
    store = open_store("qdrant", tmp_path)
    try:
        out = check_delete_and_insert(store, family, floor, build, GENEROUS)
        assert out["deleted"] > 100  # the queries' nearest rows, each of which a lingering copy would return
        assert store.effective_config()["engine"]["points_count"] == 2000 - out["deleted"]  # 1800 built + 200 new
    finally:
        store.close()


def test_rescoring_recovers_binary_quantization_loss(tmp_path):
    store = open_store("qdrant", tmp_path)
    data = small_data("angular")
    bare = build_and_search(store, "hnsw", "angular", SMALL | {"quantization": "binary"},
                            GENEROUS | {"rescore": False, "oversampling": 1.0})  # fmt: skip
    store.set_search_params(GENEROUS | {"rescore": True, "oversampling": 4.0})
    from vdbbench.core.metrics import recall_at_k

    answers = store.search_batch(data.test, 10)
    rescored = recall_at_k(answers, data.test, data.train, data.neighbors, 10, "angular").recall
    assert rescored > bare.recall
    store.close()


def test_coarser_product_quantization_loses_recall(tmp_path):
    store = open_store("qdrant", tmp_path)
    search = GENEROUS | {"oversampling": 4.0}
    fine = build_and_search(store, "pq", "angular", SMALL | {"compression": "x4"}, search)
    coarse = build_and_search(store, "pq", "angular", SMALL | {"compression": "x16"}, search)
    assert coarse.effective["params"]["compression"] == "x16"
    assert coarse.recall < fine.recall
    store.close()


def test_graph_below_full_scan_threshold_is_reported_as_flat(tmp_path):
    """With Qdrant's default full_scan_threshold (10 MB) the 250 KB contract data is scanned, not searched
    through the graph it built: the runner must see that as a family mismatch."""
    store = open_store("qdrant", tmp_path)
    out = build_and_search(store, "hnsw", "euclidean")
    assert out.effective["engine"]["indexed_vectors_count"] == 2000  # the graph exists...
    assert out.effective["family"] == "flat"  # ...but is not what serves the queries
    assert out.mismatches == ["family: asked hnsw, engine serves flat"]
    assert out.recall == 1.0
    store.close()


@pytest.mark.parametrize("family,build", [("flat", {}), ("hnsw", SMALL)])
def test_k_larger_than_collection_returns_everything(tmp_path, family, build):
    data = small_data("euclidean", n=30, dim=8, queries=5)
    store = open_store("qdrant", tmp_path)
    out = build_and_search(store, family, "euclidean", build, k=50, data=data)
    assert_answers_valid(out, 50, 30)
    assert out.recall == 1.0
    # 30 x 8 floats is under Qdrant's smallest indexing threshold (1 KB): no graph, and it says so
    assert out.effective["family"] == "flat"
    store.close()


def test_search_batch_equals_single_searches(tmp_path):
    store = open_store("qdrant", tmp_path)
    data = small_data("ip")
    build_and_search(store, "hnsw", "ip", SMALL, GENEROUS)
    batch = store.search_batch(data.test[:20], 10)
    single = [store.search(q, 10) for q in data.test[:20]]
    assert all(np.array_equal(a, b) for a, b in zip(batch, single, strict=True))
    store.close()


def test_create_replaces_an_earlier_build(tmp_path):
    store = open_store("qdrant", tmp_path)
    build_and_search(store, "flat", "euclidean")
    out = build_and_search(store, "flat", "euclidean", data=small_data("euclidean", n=30, dim=8, queries=5))
    assert out.effective["engine"]["points_count"] == 30
    store.close()


# -- the shared mapping against Qdrant's documented request shapes -------------------------------------
def spec(family: str, metric: str = "angular", **params) -> BuildSpec:
    return BuildSpec(family, metric, 384, {p.name: p.default for p in FAMILIES[family].build} | params)


def test_embedded_offers_no_handle_for_other_processes(tmp_path):
    """An EdgeShard locks its WAL: a second process cannot load it, so concurrent clients are refused."""
    import subprocess
    import sys

    store = open_store("qdrant", tmp_path)
    try:
        build_and_search(store, "hnsw", "euclidean", SMALL, GENEROUS)
        assert store.client_handle() is None
        code = "import sys, qdrant_edge as qe; qe.EdgeShard.load(sys.argv[1])"
        probe = subprocess.run([sys.executable, "-c", code, str(tmp_path / "qdrant-shard")], capture_output=True,
                               text=True, timeout=120)  # fmt: skip
        assert probe.returncode != 0 and "failed to open WAL" in probe.stderr
    finally:
        store.close()


def test_collection_body_hnsw_matches_documented_shape():
    # https://qdrant.tech/documentation/concepts/collections/#create-a-collection and
    # https://qdrant.tech/documentation/concepts/indexing/#vector-index :
    # {"vectors": {"size": 384, "distance": "Cosine"}, "hnsw_config": {"m": 16, "ef_construct": 100,
    #  "full_scan_threshold": 10000}, "optimizers_config": {"indexing_threshold": ...}}
    body = collection_body(spec("hnsw", m=32, ef_construction=200))
    assert body == {
        "vectors": {"size": 384, "distance": "Cosine"},
        "hnsw_config": {"m": 32, "ef_construct": 200, "full_scan_threshold": 10000},
        "optimizers_config": {"indexing_threshold": 1},
    }


@pytest.mark.parametrize(
    "family,params,expected",
    [
        # https://qdrant.tech/documentation/guides/quantization/#setting-up-scalar-quantization
        ("hnsw", {"quantization": "scalar"}, {"scalar": {"type": "int8"}}),
        # https://qdrant.tech/documentation/guides/quantization/#setting-up-binary-quantization
        ("hnsw", {"quantization": "binary"}, {"binary": {}}),
        # https://qdrant.tech/documentation/guides/quantization/#setting-up-product-quantization
        ("pq", {"compression": "x32"}, {"product": {"compression": "x32"}}),
    ],
)
def test_quantization_bodies_match_documented_shape(family, params, expected):
    from qdrant_client import models

    body = collection_body(spec(family, **params))
    assert body["quantization_config"] == expected
    models.CreateCollection.model_validate(body)  # the official client's schema accepts it as is


def test_flat_body_disables_indexing_and_searches_exactly():
    body = collection_body(spec("flat", metric="euclidean"))
    assert body == {"vectors": {"size": 384, "distance": "Euclid"}, "optimizers_config": {"indexing_threshold": 0}}
    # https://qdrant.tech/documentation/concepts/search/#search-api : "params": {"exact": true}
    assert search_params_body(spec("flat"), {}) == {"exact": True}


def test_search_params_match_documented_shape():
    from qdrant_client import models

    # https://qdrant.tech/documentation/guides/quantization/#searching-with-quantization :
    # "params": {"quantization": {"ignore": false, "rescore": true, "oversampling": 2.0}}
    body = search_params_body(spec("pq"), {"ef": 128, "rescore": True, "oversampling": 2.0})
    assert body == {"hnsw_ef": 128, "exact": False,
                    "quantization": {"ignore": False, "rescore": True, "oversampling": 2.0}}  # fmt: skip
    models.SearchParams.model_validate(body)
    assert "quantization" not in search_params_body(spec("hnsw"), {"ef": 64})


# https://qdrant.tech/documentation/concepts/filtering/#match, #match-any and #range
@pytest.mark.parametrize(
    "expression,expected",
    [
        ({"kind": "a"}, [{"key": "kind", "match": {"value": "a"}}]),
        ({"kind": 'say "hi"'}, [{"key": "kind", "match": {"value": 'say "hi"'}}]),  # JSON: no escaping needed
        ({"year": 2003}, [{"key": "year", "match": {"value": 2003}}]),
        ({"kind": {"in": ["b", "c"]}}, [{"key": "kind", "match": {"any": ["b", "c"]}}]),
        ({"year": {"in": [2001, 2002]}}, [{"key": "year", "match": {"any": [2001, 2002]}}]),
        ({"year": {"gt": 2010}}, [{"key": "year", "range": {"gt": 2010}}]),
        ({"year": {"gte": 2010, "lt": 2015}}, [{"key": "year", "range": {"gte": 2010, "lt": 2015}}]),
        ({"score": {"lte": 0.7}}, [{"key": "score", "range": {"lte": 0.7}}]),
        # a float has no match in Qdrant: equality is the closed range, several values any of those
        ({"score": 0.5}, [{"key": "score", "range": {"gte": 0.5, "lte": 0.5}}]),
        ({"score": {"in": [0.25, 0.5]}}, [{"should": [{"key": "score", "range": {"gte": 0.25, "lte": 0.25}},
                                                      {"key": "score", "range": {"gte": 0.5, "lte": 0.5}}]}]),
        ({"kind": "d", "year": {"gte": 2020}},
         [{"key": "kind", "match": {"value": "d"}}, {"key": "year", "range": {"gte": 2020}}]),
    ],
)  # fmt: skip
def test_filter_translation_matches_documented_shape(expression, expected):
    from qdrant_client import models

    body = engine_filter(parse_filter(expression))
    assert body == {"must": expected}
    models.Filter.model_validate(body)  # the official client's schema accepts it as is


def test_payload_indexes_match_documented_schemas():
    # https://qdrant.tech/documentation/concepts/indexing/#payload-index : keyword, integer, float
    built = BuildSpec("hnsw", "ip", 8, {}, attributes={"kind": "str", "year": "int", "score": "float"})
    assert payload_index_body(built) == {"kind": "keyword", "year": "integer", "score": "float"}


def test_embedded_filter_values_take_the_column_type(tmp_path):
    """An integer bound on a float column (score: 1) and an integral float on an int one (year: 2003.0) still
    match: Qdrant compares types strictly, so values are cast to the column's kind before translating."""
    from storekit import build_with_attributes, contract_attributes

    store = open_store("qdrant", tmp_path)
    try:
        data = build_with_attributes(store, "flat")
        year = contract_attributes()["year"]
        store.set_filter(parse_filter({"year": {"in": [2003.0]}}))
        assert store.effective_config()["filter"] == {"must": [{"key": "year", "match": {"any": [2003]}}]}
        got = store.search(data.test[0], 2000)
        assert sorted(got.tolist()) == np.flatnonzero(year == 2003).tolist()
        store.set_filter(parse_filter({"score": 1}))  # an int on a float column: a float range, never an int match
        assert store.effective_config()["filter"]["must"][0] == {"key": "score", "range": {"gte": 1.0, "lte": 1.0}}
    finally:
        store.close()


def test_server_read_back_from_collection_info():
    # abridged GET /collections/{name} answer (https://api.qdrant.tech/api-reference/collections/get-collection)
    info = {
        "status": "green", "optimizer_status": "ok", "points_count": 100000, "indexed_vectors_count": 100000,
        "config": {
            "params": {"vectors": {"size": 384, "distance": "Dot"}},
            "hnsw_config": {"m": 24, "ef_construct": 128, "full_scan_threshold": 10000},
            "optimizer_config": {"indexing_threshold": 1},
            "quantization_config": {"product": {"compression": "x16", "always_ram": None}},
        },
    }  # fmt: skip
    eff = effective_from_collection_info(info, spec("pq", metric="ip"), {"ef": 64})
    assert eff["family"] == "pq" and eff["metric"] == "ip"
    assert eff["params"] == {"m": 24, "ef_construction": 128, "full_scan_threshold": 10000, "compression": "x16"}
    info["indexed_vectors_count"] = 50000  # optimizer not done: what serves is a scan
    assert effective_from_collection_info(info, spec("pq", metric="ip"), {})["family"] == "flat"


def test_server_reads_payload_indexes_back_from_collection_info():
    # GET /collections/{name} lists payload indexes under payload_schema (qdrant-client models.PayloadIndexInfo)
    from qdrant_client import models

    info = {
        "status": "green", "optimizer_status": "ok", "points_count": 2000, "indexed_vectors_count": 2000,
        "config": {"params": {"vectors": {"size": 32, "distance": "Euclid"}},
                   "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10},
                   "optimizer_config": {"indexing_threshold": 1}},
        "payload_schema": {"kind": {"data_type": "keyword", "points": 2000},
                           "year": {"data_type": "integer", "params": {"type": "integer", "lookup": True,
                                                                      "range": True}, "points": 2000}},
    }  # fmt: skip
    for entry in info["payload_schema"].values():
        models.PayloadIndexInfo.model_validate(entry)
    built = BuildSpec("hnsw", "euclidean", 32, {}, attributes={"kind": "str", "year": "int", "score": "float"})
    eff = effective_from_collection_info(info, built, {})
    assert eff["attribute_indexes"] == {"kind": "keyword", "year": "integer", "score": "none"}  # score: not created
    assert "attribute_indexes" not in effective_from_collection_info(info, spec("hnsw"), {})


def test_server_sends_the_translated_filter_as_client_models(tmp_path):
    """No server needed: the request's filter is qdrant-client's own Filter of FieldConditions."""
    from qdrant_client import models

    store = get_store_class("qdrant-server")(tmp_path, {})
    store.spec = BuildSpec("hnsw", "ip", 8, {}, attributes={"kind": "str", "year": "int", "score": "float"})
    store.set_filter(parse_filter({"kind": {"in": ["b", "c"]}, "year": {"gte": 2010.0, "lt": 2015}, "score": 1}))
    assert store._filter == models.Filter(must=[
        models.FieldCondition(key="kind", match=models.MatchAny(any=["b", "c"])),
        models.FieldCondition(key="year", range=models.Range(gte=2010, lt=2015)),
        models.FieldCondition(key="score", range=models.Range(gte=1.0, lte=1.0)),
    ])  # fmt: skip
    store.set_filter(None)
    assert store._filter is None


def test_server_default_url_matches_compose_port():
    from test_compose import compose_ports

    assert DEFAULT_URL == "http://127.0.0.1:6333"
    assert "127.0.0.1:6333:6333" in compose_ports("qdrant")


def test_server_handle_carries_no_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("QDRANT__SERVICE__API_KEY", "k3y-s3cret")
    store = get_store_class("qdrant-server")(tmp_path, {"url": "https://alice:s3cret@qdrant.internal:6333",
                                                        "collection": "bench"})  # fmt: skip
    store.spec = spec("hnsw", metric="ip")
    handle = store.client_handle()
    assert handle == {"url": "https://qdrant.internal:6333", "collection": "bench", "spec": store.spec}
    assert_no_secret(handle, "s3cret", "alice", "k3y")


def check_server_baseline(store: str, key: str, metric: str, recall: float) -> None:
    """Server baselines can only be recorded where that server runs; until one is, the floors guard recall."""
    recorded = json.loads(BASELINES.read_text())
    if f"{store}/{key}/{metric}" in recorded or os.environ.get("VDBBENCH_UPDATE_BASELINES") == "1":
        check_baseline(store, key, metric, recall)


# -- the shared contract against a live server ----------------------------------------------------------
needs_server = pytest.mark.skipif(
    not os.environ.get("VDBBENCH_QDRANT_URL"), reason="set VDBBENCH_QDRANT_URL to run against a Qdrant server"
)


@needs_server
@pytest.mark.parametrize("metric", ["euclidean", "angular", "ip"])
@pytest.mark.parametrize("family,build,search,key,floor", CASES, ids=[c[3] for c in CASES])
def test_server_contract(tmp_path, family, build, search, key, floor, metric):
    store = open_store("qdrant-server", tmp_path, {"collection": "vdbbench_test"})
    try:
        out = build_and_search(store, family, metric, build, search)
        assert out.recall >= floor
        assert_answers_valid(out, 10, 2000)
        assert out.mismatches == []
        assert out.effective["params"] == {p.name: p.default for p in FAMILIES[family].build} | build
        check_server_baseline("qdrant-server", key, metric, out.recall)
        searched = {p.name: p.default for p in FAMILIES[family].search} | search
        attached = search_from_second_process("qdrant-server", tmp_path, {"collection": "vdbbench_test"},
                                              store.client_handle(), small_data(metric).test, searched)  # fmt: skip
        assert_same_answers(attached, out.answers)
        assert store._client.collection_exists("vdbbench_test")  # the client's close() dropped nothing
        store.drop()
        assert not store._client.collection_exists("vdbbench_test")
    finally:
        store.close()


@needs_server
def test_server_filters_and_deletes(tmp_path):
    store = open_store("qdrant-server", tmp_path, {"collection": "vdbbench_test"})
    try:
        check_filters(store, "hnsw", 0.95, SMALL, GENEROUS)
        assert store.effective_config()["attribute_indexes"] == {"kind": "keyword", "year": "integer",
                                                                 "score": "float"}  # fmt: skip
        check_delete_and_insert(store, "hnsw", 0.95, SMALL, GENEROUS)
        store.drop()
    finally:
        store.close()


def test_server_not_running_is_a_clear_error(tmp_path, monkeypatch):
    from vdbbench.stores import StoreError

    monkeypatch.setenv("VDBBENCH_QDRANT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(StoreError, match="no Qdrant answering at http://127.0.0.1:9.*services up qdrant"):
        open_store("qdrant-server", tmp_path, {"timeout_s": 2})


def _segment(kind: str, index: str, vectors: int, indexed: int, dim: int = 384) -> dict:
    """One abridged ``SegmentTelemetry`` of GET /telemetry (qdrant-client models.SegmentTelemetry)."""
    return {
        "info": {"segment_type": kind, "num_vectors": vectors, "num_points": vectors, "num_indexed_vectors": indexed,
                 "vector_data": {"": {"num_vectors": vectors, "num_indexed_vectors": indexed,
                                      "num_deleted_vectors": 0}}},
        "config": {"vector_data": {"": {"size": dim, "distance": "Dot", "storage_type": "Mmap", "index": {
            "type": index, "options": {"m": 24, "ef_construct": 128, "full_scan_threshold": 10000}}}}},
    }  # fmt: skip


def test_segment_telemetry_shape_is_the_clients_own():
    """The fields segment_coverage reads exist, with these names and values, in the client's telemetry models."""
    from qdrant_client.http import models

    seg = _segment("indexed", "hnsw", 10, 10)
    models.SegmentType(seg["info"]["segment_type"])
    models.VectorDataInfo.model_validate(seg["info"]["vector_data"][""])
    models.VectorDataConfig.model_validate(seg["config"]["vector_data"][""])
    assert {"num_vectors", "num_indexed_vectors", "segment_type"} <= set(models.SegmentInfo.model_fields)


def test_per_segment_coverage_catches_a_scan_the_collection_totals_call_hnsw():
    """100k points, all 'indexed' by the collection's count; but one segment is under full_scan_threshold
    (10 000 KB = 6 667 vectors of 384-d): Qdrant scans it, so the point is hnsw+flat, a mismatch."""
    info = {
        "status": "green", "optimizer_status": "ok", "points_count": 100000, "indexed_vectors_count": 100000,
        "config": {
            "params": {"vectors": {"size": 384, "distance": "Dot"}},
            "hnsw_config": {"m": 24, "ef_construct": 128, "full_scan_threshold": 10000},
            "optimizer_config": {"indexing_threshold": 1},
        },
    }  # fmt: skip
    big, small = _segment("indexed", "hnsw", 95000, 95000), _segment("indexed", "hnsw", 5000, 5000)
    assert effective_from_collection_info(info, spec("hnsw", metric="ip"), {})["family"] == "hnsw"  # totals only
    eff = effective_from_collection_info(info, spec("hnsw", metric="ip"), {}, [big, small])
    assert eff["family"] == "hnsw+flat"
    assert eff["coverage"] == {"segments": 2, "indexed_segments": 1, "rows": 100000, "indexed_rows": 95000,
                               "source": "telemetry segments"}  # fmt: skip
    from vdbbench.execution.points import config_mismatches

    assert config_mismatches("hnsw", {}, eff) == ["family: asked hnsw, engine serves hnsw+flat"]
    plain = _segment("plain", "plain", 100000, 0)  # an appendable segment not yet optimized: all scanned
    assert effective_from_collection_info(info, spec("hnsw", metric="ip"), {}, [plain])["family"] == "flat"
    one = effective_from_collection_info(info, spec("hnsw", metric="ip"), {}, [_segment("indexed", "hnsw", 100000,
                                                                                        100000)])  # fmt: skip
    assert one["family"] == "hnsw" and one["coverage"]["indexed_rows"] == 100000


def test_server_version_drift_is_recorded():
    from vdbbench.stores.qdrant_server.adapter import version_problem

    assert version_problem("1.17.0", "1.17.1") is None and version_problem("1.18.2", "v1.17.1") is None
    assert "more than one minor" in version_problem("1.20.0", "1.17.1")
