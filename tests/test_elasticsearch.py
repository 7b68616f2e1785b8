"""Elasticsearch: index mapping, knn body and read-back against the documented shapes, and the shared
contract against a server when VDBBENCH_ELASTICSEARCH_URL is set (e.g. after `services up elasticsearch`)."""

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
    check_searches_beside_writes,
    open_store,
    small_data,
)

from vdbbench.core.filters import parse_filter
from vdbbench.stores import BuildSpec, StoreError, get_store_class
from vdbbench.stores.elasticsearch.adapter import (
    DEFAULT_URL,
    FAMILIES,
    attribute_indexes,
    effective_from_mapping,
    engine_filter,
    index_body,
    knn_body,
)


def spec(family: str, metric: str = "angular", **params) -> BuildSpec:
    return BuildSpec(family, metric, 384, {p.name: p.default for p in FAMILIES[family].build} | params)


def test_hnsw_mapping_matches_documented_shape():
    # https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/dense-vector#dense-vector-params :
    # {"type": "dense_vector", "dims": 384, "index": true, "similarity": "cosine",
    #  "index_options": {"type": "int8_hnsw", "m": 16, "ef_construction": 100}}
    body = index_body(spec("hnsw", type="int8_hnsw", m=32, ef_construction=200))
    assert body["mappings"]["properties"]["vector"] == {
        "type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine",
        "index_options": {"type": "int8_hnsw", "m": 32, "ef_construction": 200},
    }  # fmt: skip
    assert body["settings"]["index"] == {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"}


@pytest.mark.parametrize("metric,similarity", [("euclidean", "l2_norm"), ("angular", "cosine"),
                                               ("ip", "max_inner_product")])  # fmt: skip
def test_similarities_are_elasticsearch_names(metric, similarity):
    # max_inner_product, not dot_product: dot_product requires unit-length vectors
    assert index_body(spec("flat", metric))["mappings"]["properties"]["vector"]["similarity"] == similarity


def test_flat_carries_no_graph_parameters_and_means_exact_only():
    options = index_body(spec("flat"))["mappings"]["properties"]["vector"]["index_options"]
    assert options == {"type": "flat"}
    from vdbbench.config import ConfigError, parse_config

    cfg = {"datasets": [{"name": "d", "synthetic": {}}],
           "stores": [{"store": "elasticsearch", "index": "flat", "build": {"type": "int8_flat"}}]}  # fmt: skip
    with pytest.raises(ConfigError, match=r"stores\[0\].build.type: must be one of \['flat'\]"):
        parse_config(cfg)


@pytest.mark.parametrize("kind", ["int8_flat", "int4_flat", "bbq_flat"])
def test_quantized_flat_is_named_as_what_it_is_never_exact_flat(kind):
    """An index someone made with a quantized brute force reads back as that type: a mismatch, not exact flat."""
    mapping = {"mappings": {"properties": {"vector": {"type": "dense_vector", "dims": 384, "index": True,
               "similarity": "cosine", "index_options": {"type": kind}}}}}  # fmt: skip
    eff = effective_from_mapping(mapping, 1, 2000)
    assert eff["family"] == kind and eff["coverage"]["indexed_rows"] == 0
    from vdbbench.execution.points import config_mismatches

    assert config_mismatches("flat", {"type": "flat"}, eff) == [
        f"family: asked flat, engine serves {kind}",
        f"type: asked 'flat', engine reports '{kind}'",
    ]


def test_client_of_another_major_version_is_refused():
    from vdbbench.stores.elasticsearch.adapter import version_problem

    assert version_problem("9.5.1", "9.5.2") is None
    assert "pip install 'elasticsearch>=8,<9'" in version_problem("9.5.1", "8.17.0")


def test_knn_body_matches_documented_shape():
    # https://www.elastic.co/docs/solutions/search/vector/knn#approximate-knn :
    # {"knn": {"field": "...", "query_vector": [...], "k": 10, "num_candidates": 100}}
    q = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    body = knn_body(q, 10, spec("hnsw"), {"ef": 100})
    assert body == {"knn": {"field": "vector", "query_vector": [0.5, -1.0, 2.0], "k": 10, "num_candidates": 100},
                    "size": 10, "_source": False}  # fmt: skip
    assert "num_candidates" not in knn_body(q, 10, spec("hnsw"), {"ef": 0})["knn"]  # ES default 1.5k
    assert knn_body(q, 50, spec("hnsw"), {"ef": 20})["knn"]["num_candidates"] == 50  # never below k


KINDS = {"kind": "str", "year": "int", "score": "float"}


def test_attribute_fields_are_keyword_long_double():
    # https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/keyword and .../number
    body = index_body(BuildSpec("hnsw", "euclidean", 8, spec("hnsw").params, attributes=KINDS))
    properties = body["mappings"]["properties"]
    assert {name: properties[name] for name in KINDS} == {
        "kind": {"type": "keyword"}, "year": {"type": "long"}, "score": {"type": "double"},
    }  # fmt: skip
    assert body["mappings"]["dynamic"] == "strict"  # a document with an unmapped attribute is refused
    with pytest.raises(StoreError, match="attribute 'vector' is one of elasticsearch's own fields"):
        index_body(BuildSpec("flat", "euclidean", 8, {}, attributes={"vector": "int"}))


def test_attribute_indexes_read_back_from_mapping():
    mapping = {"mappings": {"properties": {"vector": {"type": "dense_vector"}, "kind": {"type": "keyword"},
               "year": {"type": "long"}, "score": {"type": "double", "index": False}}}}  # fmt: skip
    assert attribute_indexes(mapping, KINDS) == {"kind": "keyword", "year": "long", "score": "none"}
    dotted = {"mappings": {"properties": {"doc": {"properties": {"dept": {"type": "keyword"}}}}}}  # "doc.dept" as read
    assert attribute_indexes(dotted, {"doc.dept": "str", "doc.year": "int"}) == {
        "doc.dept": "keyword",
        "doc.year": "none",
    }


@pytest.mark.parametrize(
    "expression,clauses",
    [  # https://www.elastic.co/docs/reference/query-languages/query-dsl/query-dsl-term-query (terms, range)
        ({"kind": "a"}, [{"term": {"kind": "a"}}]),
        ({"kind": "it's"}, [{"term": {"kind": "it's"}}]),  # JSON carries the quote as it is
        ({"kind": {"in": ["b", "c"]}}, [{"terms": {"kind": ["b", "c"]}}]),
        ({"year": 2003}, [{"term": {"year": 2003}}]),
        ({"year": {"gt": 2010}}, [{"range": {"year": {"gt": 2010}}}]),
        ({"year": {"lte": 2010}}, [{"range": {"year": {"lte": 2010}}}]),
        ({"score": {"gte": 0.2, "lt": 0.7}}, [{"range": {"score": {"gte": 0.2, "lt": 0.7}}}]),
        ({"kind": "d", "year": {"gte": 2020}}, [{"term": {"kind": "d"}}, {"range": {"year": {"gte": 2020}}}]),
    ],
)
def test_engine_filter_is_a_bool_filter_of_term_terms_range(expression, clauses):
    assert engine_filter(parse_filter(expression)) == {"bool": {"filter": clauses}}


def test_filter_goes_inside_the_knn_section():
    """Inside knn it pre-filters; a filter beside knn would post-filter (filtered-knn-search docs)."""
    flt = engine_filter(parse_filter({"kind": "a"}))
    body = knn_body(np.array([1.0], dtype=np.float32), 10, spec("hnsw"), {"ef": 100}, flt)
    assert body == {"knn": {"field": "vector", "query_vector": [1.0], "k": 10, "num_candidates": 100,
                            "filter": {"bool": {"filter": [{"term": {"kind": "a"}}]}}},
                    "size": 10, "_source": False}  # fmt: skip


def test_read_back_from_mapping():
    # abridged GET /{index}/_mapping answer
    mapping = {"mappings": {"dynamic": "strict", "properties": {"vector": {
        "type": "dense_vector", "dims": 384, "index": True, "similarity": "max_inner_product",
        "index_options": {"type": "bbq_hnsw", "m": 24, "ef_construction": 150, "rescore_vector": {"oversample": 3.0}},
    }}}}  # fmt: skip
    eff = effective_from_mapping(mapping, 3, 2000)
    assert eff["family"] == "hnsw" and eff["metric"] == "ip"
    assert eff["coverage"] == {"segments": 3, "indexed_segments": 3, "rows": 2000, "indexed_rows": 2000,
                               "source": "_stats segments"}  # fmt: skip
    assert eff["params"] == {"type": "bbq_hnsw", "m": 24, "ef_construction": 150}
    mapping["mappings"]["properties"]["vector"]["index_options"] = {"type": "flat"}
    assert effective_from_mapping(mapping, 1)["family"] == "flat"


def test_default_url_is_the_compose_service():
    assert DEFAULT_URL == "http://127.0.0.1:9200"


def test_no_server_is_a_clear_error(tmp_path, monkeypatch):
    from vdbbench.stores import StoreError

    monkeypatch.setenv("VDBBENCH_ELASTICSEARCH_URL", "http://127.0.0.1:9")
    with pytest.raises(StoreError, match="no Elasticsearch answering at http://127.0.0.1:9.*services up"):
        open_store("elasticsearch", tmp_path, {"timeout_s": 2})


def test_handle_carries_url_and_index_but_no_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("ELASTIC_PASSWORD", "pw-s3cret")
    store = get_store_class("elasticsearch")(tmp_path, {"url": "https://alice:s3cret@es.internal:9200",
                                                        "index": "bench"})  # fmt: skip
    store.spec = spec("hnsw")
    handle = store.client_handle()
    assert handle == {"url": "https://es.internal:9200", "index": "bench", "field": "vector", "spec": store.spec}
    assert_no_secret(handle, "s3cret", "alice")


def check_server_baseline(store: str, key: str, metric: str, recall: float) -> None:
    """Server baselines can only be recorded where that server runs; until one is, the floors guard recall."""
    recorded = json.loads(BASELINES.read_text())
    if f"{store}/{key}/{metric}" in recorded or os.environ.get("VDBBENCH_UPDATE_BASELINES") == "1":
        check_baseline(store, key, metric, recall)


# -- the shared contract against a live server ----------------------------------------------------------
needs_server = pytest.mark.skipif(
    not os.environ.get("VDBBENCH_ELASTICSEARCH_URL"),
    reason="set VDBBENCH_ELASTICSEARCH_URL to run against an Elasticsearch server",
)
# bbq_* needs >= 64 dimensions and the contract data has 32, so BBQ is covered by the mapping tests only.
CASES = [
    ("flat", {}, {}, "flat", 1.0),
    ("hnsw", {}, {"num_candidates": 200}, "hnsw", 0.95),
    ("hnsw", {"type": "int8_hnsw"}, {"num_candidates": 200}, "hnsw-int8", 0.9),
]


@needs_server
@pytest.mark.parametrize("metric", ["euclidean", "angular", "ip"])
@pytest.mark.parametrize("family,build,search,key,floor", CASES, ids=[c[3] for c in CASES])
def test_server_contract(tmp_path, family, build, search, key, floor, metric):
    store = open_store("elasticsearch", tmp_path, {"index": "vdbbench-test"})
    try:
        out = build_and_search(store, family, metric, build, search)
        assert out.recall >= floor
        assert_answers_valid(out, 10, 2000)
        assert out.mismatches == []
        assert out.effective["engine"]["segments"] == 1
        check_server_baseline("elasticsearch", key, metric, out.recall)
        searched = {p.name: p.default for p in FAMILIES[family].search} | search
        attached = search_from_second_process("elasticsearch", tmp_path, {"index": "vdbbench-test"},
                                              store.client_handle(), small_data(metric).test, searched)  # fmt: skip
        assert_same_answers(attached, out.answers)
        assert store._client.indices.exists(index="vdbbench-test")  # the client's close() dropped nothing
        store.drop()
        assert not store._client.indices.exists(index="vdbbench-test")
    finally:
        store.close()


@needs_server
@pytest.mark.parametrize("family,search,floor", [("flat", {}, 1.0), ("hnsw", {"num_candidates": 200}, 0.95)])
def test_server_filters_and_deletes(tmp_path, family, search, floor):
    """Unmeasured here (no Elasticsearch server): Lucene scores the passing documents exactly when they are no
    more than num_candidates or the graph walk outgrows them, so 0.95 is a margin under the graph's own floor."""
    store = open_store("elasticsearch", tmp_path, {"index": "vdbbench-test"})
    try:
        check_filters(store, family, floor, search=search)
        assert store.effective_config()["attribute_indexes"] == {"kind": "keyword", "year": "long", "score": "double"}
        check_delete_and_insert(store, family, min(floor, 0.9), search=search)
        assert check_searches_beside_writes(store, family, search=search) >= 1  # concurrent_writes is declared
        store.drop()
    finally:
        store.close()
