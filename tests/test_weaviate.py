"""Weaviate: the class definition and read-back against the documented shapes. The contract every store meets runs
against a Weaviate server in tests/conformance when VDBBENCH_WEAVIATE_URL is set (e.g. after `python -m vdbbench
services up weaviate`)."""

from __future__ import annotations

import pytest

from vdbbench.core.filters import parse_filter, typed
from vdbbench.stores import BuildSpec, StoreError, get_store_class
from vdbbench.stores.weaviate.adapter import (
    DEFAULT_URL,
    FAMILIES,
    attribute_indexes,
    class_body,
    connection_settings,
    effective_from_schema,
    engine_filter,
    filter_json,
)


def spec(family: str, metric: str = "angular", **params) -> BuildSpec:
    return BuildSpec(family, metric, 384, {p.name: p.default for p in FAMILIES[family].build} | params)


def test_hnsw_class_matches_documented_shape():
    # https://docs.weaviate.io/weaviate/config-refs/indexing/vector-index#hnsw-index-parameters :
    # "vectorIndexType": "hnsw", "vectorIndexConfig": {"distance": "cosine", "maxConnections": 32,
    # "efConstruction": 128, "ef": -1, ...}; "vectorizer": "none" for vectors brought by the client.
    body = class_body("Vdbbench", spec("hnsw", m=16, ef_construction=256))  # portable names, sent as Weaviate's
    assert body == {
        "class": "Vdbbench", "vectorizer": "none", "properties": [], "vectorIndexType": "hnsw",
        "vectorIndexConfig": {"distance": "cosine", "maxConnections": 16, "efConstruction": 256, "ef": -1},
    }  # fmt: skip


@pytest.mark.parametrize("metric,distance", [("euclidean", "l2-squared"), ("angular", "cosine"), ("ip", "dot")])
def test_distances_are_weaviate_names(metric, distance):
    # https://docs.weaviate.io/weaviate/config-refs/distances
    assert class_body("C", spec("flat", metric))["vectorIndexConfig"] == {"distance": distance}
    assert class_body("C", spec("flat", metric))["vectorIndexType"] == "flat"


def test_compression_blocks_match_documented_shape():
    # https://docs.weaviate.io/weaviate/config-refs/indexing/vector-index#pq-parameters (and bq, sq):
    # "pq": {"enabled": true, "segments": 0, "centroids": 256, "trainingLimit": 100000}
    pq = class_body("C", spec("pq", trainingLimit=5000))["vectorIndexConfig"]["pq"]
    assert pq == {"enabled": True, "segments": 0, "centroids": 256, "trainingLimit": 5000}
    assert class_body("C", spec("hnsw", compression="bq"))["vectorIndexConfig"]["bq"] == {"enabled": True}
    sq = class_body("C", spec("hnsw", compression="sq"))["vectorIndexConfig"]["sq"]
    assert sq == {"enabled": True, "trainingLimit": 100000}


def test_dynamic_index_wraps_hnsw_and_flat():
    # https://docs.weaviate.io/weaviate/config-refs/indexing/vector-index#dynamic-index-parameters
    body = class_body("C", spec("hnsw", "euclidean", vectorIndexType="dynamic", threshold=5000))
    assert body["vectorIndexType"] == "dynamic"
    config = body["vectorIndexConfig"]
    assert config["threshold"] == 5000 and config["flat"] == {"distance": "l2-squared"}
    assert config["hnsw"]["maxConnections"] == 32 and config["hnsw"]["distance"] == "l2-squared"


KINDS = {"kind": "str", "year": "int", "score": "float"}


def test_attribute_properties_match_documented_shape():
    # https://docs.weaviate.io/weaviate/config-refs/collections (properties) and .../datatypes: int, number, text;
    # tokenization "field" keeps a text value whole, indexRangeFilters adds the range index (1.26+)
    body = class_body("C", BuildSpec("hnsw", "euclidean", 8, spec("hnsw").params, attributes=KINDS))
    assert body["properties"] == [
        {"name": "kind", "dataType": ["text"], "indexFilterable": True, "tokenization": "field",
         "indexSearchable": False},
        {"name": "year", "dataType": ["int"], "indexFilterable": True, "indexRangeFilters": True},
        {"name": "score", "dataType": ["number"], "indexFilterable": True, "indexRangeFilters": True},
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["id", "Id", "2nd", "dept-name"])
def test_attribute_that_cannot_be_a_property_is_refused(name):
    with pytest.raises(StoreError, match=f"weaviate: attribute '{name}' cannot be a property name"):
        class_body("C", BuildSpec("flat", "euclidean", 8, {}, attributes={name: "int"}))


def test_attribute_columns_become_properties_with_a_lowercase_first_letter():
    """Weaviate lowercases a property's first letter on class creation: schema, filter and read-back use that name."""
    body = class_body("C", BuildSpec("flat", "euclidean", 8, {}, attributes={"Dept": "str"}))
    assert body["properties"][0]["name"] == "dept"
    assert filter_json(engine_filter(parse_filter({"Dept": "fx"}))) == {"operator": "Equal", "path": ["dept"],
                                                                        "valueText": "fx"}  # fmt: skip
    assert attribute_indexes({"properties": [{"name": "dept", "indexFilterable": True}]}, {"Dept": "str"}) == {
        "Dept": "indexFilterable"
    }
    with pytest.raises(StoreError, match=r"\['Dept', 'dept'\] differ only in their first letter's case"):
        class_body("C", BuildSpec("flat", "euclidean", 8, {}, attributes={"Dept": "str", "dept": "str"}))


def test_attribute_indexes_read_back_from_the_schema():
    # abridged GET /v1/schema/{class} properties, as the server reports them with its defaults filled in
    schema = {"properties": [
        {"name": "kind", "dataType": ["text"], "indexFilterable": True, "indexSearchable": False,
         "indexRangeFilters": False, "tokenization": "field"},
        {"name": "year", "dataType": ["int"], "indexFilterable": True, "indexRangeFilters": True,
         "indexSearchable": False},
        {"name": "score", "dataType": ["number"], "indexFilterable": False, "indexRangeFilters": False},
    ]}  # fmt: skip
    assert attribute_indexes(schema, KINDS) == {
        "kind": "indexFilterable", "year": "indexFilterable+indexRangeFilters", "score": "none",
    }  # fmt: skip


@pytest.mark.parametrize(
    "expression,where",
    [  # https://docs.weaviate.io/weaviate/api/graphql/filters: {"path": [...], "operator": ..., "value<Type>": ...}
        ({"kind": "a"}, {"operator": "Equal", "path": ["kind"], "valueText": "a"}),
        ({"kind": "it's"}, {"operator": "Equal", "path": ["kind"], "valueText": "it's"}),
        ({"kind": {"in": ["b", "c"]}}, {"operator": "ContainsAny", "path": ["kind"], "valueTextArray": ["b", "c"]}),
        ({"year": {"in": [2001, 2003]}}, {"operator": "ContainsAny", "path": ["year"], "valueIntArray": [2001, 2003]}),
        ({"year": 2003}, {"operator": "Equal", "path": ["year"], "valueInt": 2003}),
        ({"year": {"gt": 2010}}, {"operator": "GreaterThan", "path": ["year"], "valueInt": 2010}),
        ({"year": {"lte": 2010}}, {"operator": "LessThanEqual", "path": ["year"], "valueInt": 2010}),
        ({"year": {"gt": 2010.5}}, {"operator": "GreaterThanEqual", "path": ["year"], "valueInt": 2011}),
        ({"year": {"lt": 2010.5}}, {"operator": "LessThanEqual", "path": ["year"], "valueInt": 2010}),
        ({"score": {"gte": 0}}, {"operator": "GreaterThanEqual", "path": ["score"], "valueNumber": 0.0}),
        ({"score": {"lt": 0.7}}, {"operator": "LessThan", "path": ["score"], "valueNumber": 0.7}),
        (
            {"kind": "d", "year": {"gte": 2020, "lt": 2024}},
            {
                "operator": "And",
                "operands": [
                    {"operator": "Equal", "path": ["kind"], "valueText": "d"},
                    {"operator": "GreaterThanEqual", "path": ["year"], "valueInt": 2020},
                    {"operator": "LessThan", "path": ["year"], "valueInt": 2024},
                ],
            },
        ),
    ],
)
def test_engine_filter_is_the_documented_where(expression, where):
    """The client Filter the adapter sends, in Weaviate's REST where form; values typed as their property."""
    assert filter_json(engine_filter(typed(parse_filter(expression), KINDS))) == where


def test_set_filter_types_values_by_the_build_schema(tmp_path):
    """set_filter translates once, with the build's column kinds: an int bound on a number property is sent as
    valueNumber (Weaviate refuses valueInt there); None clears it."""
    store = get_store_class("weaviate")(tmp_path, {})
    store.spec = BuildSpec("hnsw", "euclidean", 8, spec("hnsw").params, attributes=KINDS)
    store.set_filter(parse_filter({"score": {"gt": 0}}))
    assert filter_json(store._filter) == {"operator": "GreaterThan", "path": ["score"], "valueNumber": 0.0}
    store.set_filter(None)
    assert store._filter is None


def server_schema(**hnsw) -> dict:
    """Abridged GET /v1/schema/{class} answer (https://docs.weaviate.io/weaviate/api/rest#tag/schema)."""
    config = {
        "distance": "cosine", "ef": 64, "efConstruction": 128, "maxConnections": 32, "dynamicEfMin": 100,
        "pq": {"enabled": False, "segments": 0, "centroids": 256, "trainingLimit": 100000},
        "bq": {"enabled": False}, "sq": {"enabled": False, "trainingLimit": 100000},
    } | hnsw  # fmt: skip
    return {"class": "Vdbbench", "vectorizer": "none", "vectorIndexType": "hnsw", "vectorIndexConfig": config}


def test_read_back_reports_engine_values():
    eff = effective_from_schema(server_schema(), spec("hnsw"), [{"objectCount": 2000, "compressed": False}])
    assert eff["family"] == "hnsw" and eff["metric"] == "angular"
    assert eff["params"] == {"m": 32, "ef_construction": 128, "ef": 64, "vectorIndexType": "hnsw",
                             "compression": "none"}  # fmt: skip


def test_untrained_pq_is_reported_as_plain_hnsw():
    schema = server_schema(pq={"enabled": True, "segments": 96, "centroids": 256, "trainingLimit": 100000})
    untrained = effective_from_schema(schema, spec("pq"), [{"objectCount": 2000, "compressed": False}])
    assert untrained["family"] == "hnsw"  # the runner flags "asked pq, engine serves hnsw"
    trained = effective_from_schema(schema, spec("pq"), [{"objectCount": 200000, "compressed": True}])
    assert trained["family"] == "pq" and trained["params"]["segments"] == 96


def test_untrained_sq_is_reported_uncompressed():
    schema = server_schema(sq={"enabled": True, "trainingLimit": 100000})
    eff = effective_from_schema(schema, spec("hnsw", compression="sq"), [{"objectCount": 10, "compressed": False}])
    assert eff["params"]["compression"] == "none"


def test_rq_a_server_applies_by_default_is_read_back_as_a_mismatch():
    """DEFAULT_QUANTIZATION (Weaviate 1.33+) can turn on 8-bit RQ unasked: the point must not pass as uncompressed."""
    from vdbbench.execution.points import config_mismatches

    schema = server_schema(rq={"enabled": True, "bits": 8, "rescoreLimit": 20})
    eff = effective_from_schema(schema, spec("hnsw"), [{"objectCount": 2000, "compressed": True}])
    assert eff["params"]["compression"] == "rq" and eff["params"]["bits"] == 8
    assert "compression: asked 'none', engine reports 'rq'" in config_mismatches("hnsw", {"compression": "none"}, eff)


def test_flat_index_over_compressed_vectors_is_not_exact_flat():
    config = {"distance": "cosine", "bq": {"enabled": True}, "rq": {"enabled": False}}
    schema = {"class": "C", "vectorIndexType": "flat", "vectorIndexConfig": config}
    assert effective_from_schema(schema, spec("flat"), [{"objectCount": 10}])["family"] == "flat+bq"
    schema["vectorIndexConfig"]["bq"] = {"enabled": False}
    assert effective_from_schema(schema, spec("flat"), [{"objectCount": 10}])["family"] == "flat"


def test_dynamic_index_under_threshold_is_reported_flat():
    schema = {"class": "C", "vectorIndexType": "dynamic",
              "vectorIndexConfig": {"distance": "dot", "threshold": 10000, "hnsw": server_schema()["vectorIndexConfig"],
                                    "flat": {"distance": "dot"}}}  # fmt: skip
    small = effective_from_schema(schema, spec("hnsw", "ip", vectorIndexType="dynamic"), [{"objectCount": 2000}])
    assert small["family"] == "flat"
    large = effective_from_schema(schema, spec("hnsw", "ip", vectorIndexType="dynamic"), [{"objectCount": 20000}])
    assert large["family"] == "hnsw" and large["params"]["threshold"] == 10000


def test_connection_settings_default_and_environment(monkeypatch):
    monkeypatch.delenv("VDBBENCH_WEAVIATE_URL", raising=False)
    monkeypatch.delenv("VDBBENCH_WEAVIATE_GRPC_PORT", raising=False)
    assert DEFAULT_URL == "http://127.0.0.1:8080"
    s = connection_settings({})
    assert (s["http_host"], s["http_port"], s["grpc_port"], s["http_secure"]) == ("127.0.0.1", 8080, 50051, False)
    monkeypatch.setenv("VDBBENCH_WEAVIATE_URL", "https://weaviate.example:8443")
    s = connection_settings({})
    expected = ("weaviate.example", 8443, True, True)
    assert (s["http_host"], s["http_port"], s["http_secure"], s["grpc_secure"]) == expected


def test_handle_carries_connection_and_collection(tmp_path, monkeypatch):
    """What a client process connects with (that it carries no API key is in tests/conformance)."""
    monkeypatch.delenv("VDBBENCH_WEAVIATE_GRPC_PORT", raising=False)
    store = get_store_class("weaviate")(tmp_path, {"url": "https://weaviate.internal:8443", "grpc_port": 50052,
                                                   "collection": "Bench"})  # fmt: skip
    store.spec = spec("hnsw")
    handle = store.client_handle()
    assert handle == {
        "http_host": "weaviate.internal", "http_port": 8443, "http_secure": True, "grpc_host": "weaviate.internal",
        "grpc_port": 50052, "grpc_secure": True, "collection": "Bench", "spec": store.spec,
    }  # fmt: skip
