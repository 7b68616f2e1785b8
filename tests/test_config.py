"""Config validation: every error names the field and says what to write instead."""

import pytest

from vdbbench.config import ConfigError, load_config, parse_config


def base(**over):
    cfg = {
        "k": 10,
        "datasets": [{"name": "syn", "synthetic": {"n": 100}}],
        "stores": [{"store": "hnswlib", "index": "hnsw", "build": {"M": [8, 16]}, "search": {"ef": [10, 20]}}],
    }
    cfg.update(over)
    return cfg


def error_of(data) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(data, "test.yaml")
    return str(e.value)


def test_valid_config_expands_build_grid_with_defaults():
    cfg = parse_config(base())
    assert cfg.build_grid(cfg.stores[0]) == [{"M": 8, "ef_construction": 200}, {"M": 16, "ef_construction": 200}]
    assert cfg.search_grid(cfg.stores[0]) == [{"ef": 10}, {"ef": 20}]


def test_unknown_store_lists_known_ones():
    msg = error_of(base(stores=[{"store": "pinecone", "index": "hnsw"}]))
    assert "stores[0].store" in msg and "pinecone" in msg and "hnswlib" in msg


def test_family_the_store_lacks_names_what_it_offers():
    msg = error_of(base(stores=[{"store": "hnswlib", "index": "ivf"}]))
    assert "stores[0].index" in msg and "offers hnsw" in msg


def test_unknown_parameter_lists_the_parameters():
    msg = error_of(base(stores=[{"store": "hnswlib", "index": "hnsw", "build": {"m": 16}}]))
    assert "stores[0].build.m" in msg and "M, ef_construction" in msg


def test_wrong_parameter_type_is_named():
    msg = error_of(base(stores=[{"store": "hnswlib", "index": "hnsw", "search": {"ef": ["many"]}}]))
    assert "stores[0].search.ef" in msg and "integer" in msg


def test_parameter_below_minimum():
    msg = error_of(base(stores=[{"store": "hnswlib", "index": "hnsw", "build": {"M": 1}}]))
    assert "stores[0].build.M" in msg and ">= 2" in msg


def test_unknown_top_level_key():
    msg = error_of(base(kk=10))
    assert "kk: unknown key" in msg


def test_missing_datasets():
    data = base()
    del data["datasets"]
    assert "datasets: required key is missing" in error_of(data)


def test_k_must_be_positive():
    assert "k:" in error_of(base(k=0))


def test_bad_metric_in_synthetic():
    msg = error_of(base(datasets=[{"name": "s", "synthetic": {"metric": "manhattan"}}]))
    assert "datasets[0].synthetic.metric" in msg and "euclidean" in msg


def test_duplicate_store_entries_need_labels():
    s = {"store": "hnswlib", "index": "hnsw"}
    assert "distinct 'label'" in error_of(base(stores=[s, s]))
    parse_config(base(stores=[s, {**s, "label": "hnswlib-b"}]))


def test_not_a_mapping():
    assert "top level must be a mapping" in error_of(["k", 10])


def test_yaml_syntax_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("k: [10\nstores: {")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_all_problems_reported_at_once():
    msg = error_of(base(stores=[{"store": "nope", "index": "hnsw"}, {"store": "hnswlib", "index": "pq"}]))
    assert "stores[0].store" in msg and "stores[1].index" in msg


def test_default_config_is_valid():
    from vdbbench.config import DEFAULT_CONFIG

    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.datasets[0].name == "fashion-mnist-784-euclidean"


def test_unknown_option_is_named_with_the_valid_keys():
    msg = error_of(base(stores=[{"store": "milvus", "index": "hnsw", "options": {"bogus": 1, "uri": "http://h:1"}}]))
    assert "stores[0].options.bogus: milvus has no option 'bogus'; valid keys: uri (" in msg
    assert "url (" in msg and "token (" in msg
    assert "options.uri" not in msg  # pymilvus's own name is accepted


def test_misspelled_server_url_key_is_an_error_not_an_embedded_run():
    msg = error_of(base(stores=[{"store": "qdrant-server", "index": "hnsw", "options": {"ulr": "http://h:6333"}}]))
    assert "stores[0].options.ulr" in msg and "url (Qdrant server URL" in msg


def test_store_without_options_says_so():
    msg = error_of(base(stores=[{"store": "exact", "index": "flat", "options": {"url": "x"}}]))
    assert "stores[0].options.url: exact has no option 'url'; valid keys: none" in msg


def test_every_adapter_documents_the_options_it_reads():
    """Each key an adapter reads from self.options must be declared (with help), so validation cannot reject it."""
    import inspect
    import re

    from vdbbench.stores import get_store_class, store_names

    for name in store_names():
        cls = get_store_class(name)
        read = set(re.findall(r"options\.get\(\"(\w+)\"", inspect.getsource(inspect.getmodule(cls))))
        read -= {"type", "m", "ef_construction"}  # Elasticsearch's index_options mapping, not store options
        assert read <= set(cls.options_help), f"{name} reads undeclared options {read - set(cls.options_help)}"
        assert all(h.strip() for h in cls.options_help.values()), name
