"""Qdrant: what the embedded engine (qdrant-edge-py) does on its own (quantization, full_scan_threshold, the WAL
lock), and the request mapping the embedded and server stores share, against the docs. The contract every store
meets, embedded and on a server (VDBBENCH_QDRANT_URL), is in tests/conformance."""

from __future__ import annotations

import numpy as np
import pytest
from storekit import (
    assert_answers_valid,
    build_and_search,
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


def test_a_tiny_collection_has_no_graph_and_says_so(tmp_path):
    data = small_data("euclidean", n=30, dim=8, queries=5)
    store = open_store("qdrant", tmp_path)
    out = build_and_search(store, "hnsw", "euclidean", SMALL, k=50, data=data)
    assert_answers_valid(out, 50, 30)
    assert out.recall == 1.0
    # 30 x 8 floats is under Qdrant's smallest indexing threshold (1 KB): no graph, and it says so
    assert out.effective["family"] == "flat"
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
