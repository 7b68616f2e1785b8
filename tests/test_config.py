"""Config validation: every error names the field and says what to write instead."""

import pytest

from vdbbench.config import ConfigError, load_config, parse_config
from vdbbench.stores import get_store_class, store_names
from vdbbench.stores.servers import RemoteStore

# the databases that run on this machine without Docker: every store but the baselines and the remote servers
LOCAL_DATABASES = [
    name for name in store_names()
    if not get_store_class(name).baseline and not issubclass(get_store_class(name), RemoteStore)
]  # fmt: skip


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
    assert cfg.build_grid(cfg.stores[0]) == [{"m": 8, "ef_construction": 200}, {"m": 16, "ef_construction": 200}]
    assert cfg.search_grid(cfg.stores[0]) == [{"ef": 10}, {"ef": 20}]


def test_unknown_store_lists_known_ones():
    msg = error_of(base(stores=[{"store": "pinecone", "index": "hnsw"}]))
    assert "stores[0].store" in msg and "pinecone" in msg and "hnswlib" in msg


def test_family_the_store_lacks_names_what_it_offers():
    msg = error_of(base(stores=[{"store": "hnswlib", "index": "ivf"}]))
    assert "stores[0].index" in msg and "offers hnsw" in msg


def test_unknown_parameter_lists_the_parameters_with_both_names():
    msg = error_of(base(stores=[{"store": "hnswlib", "index": "hnsw", "build": {"degree": 16}}]))
    assert "stores[0].build.degree" in msg and "m (M), ef_construction" in msg


@pytest.mark.parametrize(
    "store,index,build,search,want_build,want_search",
    [
        ("milvus", "hnsw", {"M": 8, "efConstruction": 64}, {"ef": 20}, {"m": 8, "ef_construction": 64}, {"ef": 20}),
        ("pgvector", "ivf", {"lists": 50}, {"probes": [2, 4]}, {"nlist": 50}, {"nprobe": [2, 4]}),
        ("redis", "hnsw", {"EF_CONSTRUCTION": 100}, {"EF_RUNTIME": 40}, {"ef_construction": 100}, {"ef": 40}),
        ("qdrant", "hnsw", {"ef_construct": 64}, {"hnsw_ef": 32}, {"ef_construction": 64}, {"ef": 32}),
    ],
)  # fmt: skip
def test_engine_names_are_normalised_to_portable_names(store, index, build, search, want_build, want_search):
    cfg = parse_config(base(stores=[{"store": store, "index": index, "build": build, "search": search}]))
    assert cfg.stores[0].build == want_build
    assert cfg.stores[0].search == want_search
    assert all(set(want_build) <= set(b) for b in cfg.build_grid(cfg.stores[0], n=1000, dim=32))


ALIASED = [
    (name, family, section, param)
    for name in store_names()
    for family, fam in get_store_class(name).families.items()
    for section, params in (("build", fam.build), ("search", fam.search))
    for param in params
    if param.aliases
]  # fmt: skip


@pytest.mark.parametrize("name,family,section,param", ALIASED, ids=[f"{n}-{f}-{p.name}" for n, f, _, p in ALIASED])
def test_every_engine_spelling_of_every_store_is_normalised_to_the_portable_name(name, family, section, param):
    for alias in param.aliases:
        cfg = parse_config(base(stores=[{"store": name, "index": family, section: {alias: param.default}}]))
        assert getattr(cfg.stores[0], section) == {param.name: param.default}, alias


def test_both_spellings_of_one_parameter_is_an_error_naming_both():
    msg = error_of(base(stores=[{"store": "milvus", "index": "hnsw", "build": {"M": 8, "m": 16}}]))
    assert "stores[0].build.m" in msg and "'m' and 'M'" in msg and "same parameter m (M)" in msg


def test_bad_value_under_an_engine_name_names_both_spellings():
    msg = error_of(base(stores=[{"store": "redis", "index": "hnsw", "search": {"EF_RUNTIME": 0}}]))
    assert "stores[0].search.EF_RUNTIME: must be >= 1" in msg and "ef (EF_RUNTIME)" in msg


def test_settings_portable_gives_every_store_the_same_values_and_engine_its_own():
    names = [n for n in LOCAL_DATABASES if "hnsw" in get_store_class(n).families]
    stores = [{"store": s, "index": "hnsw"} for s in names]
    cfg = parse_config(base(stores=stores))
    portable = dict(zip(names, [cfg.plan(s, n=10000, dim=64) for s in cfg.stores], strict=True))
    assert {(p.builds[0]["m"], p.builds[0]["ef_construction"]) for p in portable.values()} == {(16, 200)}
    assert all(p.searches == [{**p.searches[0], "ef": ef} for ef in (10, 20, 40, 80, 160, 320)]
               for p in portable.values())  # fmt: skip
    extras = {n: get_store_class(n).engine_extras.get("hnsw", {}) for n in names}
    assert any(extras.values()) and all(portable[n].builds[0].items() >= extras[n].items() for n in names)
    cfg = parse_config(base(stores=stores, settings="engine"))
    engine = dict(zip(names, [cfg.plan(s, n=10000, dim=64) for s in cfg.stores], strict=True))
    for name in names:  # each engine's own defaults, extras included
        assert engine[name].builds == [{p.name: p.default for p in get_store_class(name).families["hnsw"].build}]
    assert [(engine[n].builds[0]["m"], engine[n].builds[0]["ef_construction"]) for n in
            ("milvus", "pgvector", "redis", "qdrant")] == [(30, 360), (16, 64), (16, 200), (16, 100)]  # fmt: skip
    assert {p.settings for p in engine.values()} == {"engine"}


def test_portable_ivf_and_pq_sizes_follow_the_documented_rules():
    from vdbbench.stores.portable import nlist_for, pq_m_for

    assert [nlist_for(n) for n in (100, 2000, 20000, 1_000_000, 10**9)] == [2, 32, 128, 1024, 4096]
    assert [pq_m_for(d) for d in (32, 384, 784, 100)] == [8, 96, 196, 25]
    cfg = parse_config(base(stores=[{"store": "pgvector", "index": "ivf"}, {"store": "milvus", "index": "pq"}]))
    ivf = cfg.plan(cfg.stores[0], n=20000, dim=384)
    assert ivf.builds == [{"nlist": 128, "vector_type": "vector"}]  # pgvector's other ivf parameters at their defaults
    assert ivf.searches[-1] == {"nprobe": 64, "iterative_scan": "off", "max_probes": 32768}
    pq = cfg.plan(cfg.stores[1], n=20000, dim=384)
    assert pq.builds == [{"nlist": 128, "pq_m": 96, "nbits": 8}]
    assert any("refine" in note and "not applied" in note for note in pq.notes)  # milvus IVF_PQ has no refine


def test_portable_value_an_engine_refuses_is_noted():
    from vdbbench.stores import FamilySpec, Param
    from vdbbench.stores.portable import default_values

    narrow = FamilySpec("hnsw", "x", build=(Param("m", int, 8, maximum=12), Param("ef_construction", int, 64)),
                        search=(Param("ef", int, 10, maximum=100),))  # fmt: skip
    build, search, notes = default_values(get_store_class("hnswlib"), narrow, "portable", 1000, 32)
    assert build == {"m": 12, "ef_construction": 200} and search == {"ef": [10, 20, 40, 80, 100]}
    assert "m: portable value 16 not accepted (must be <= 12, got 16); 12 used" in notes
    qdrant_pq = get_store_class("qdrant").families["pq"]  # HNSW + PQ: no IVF lists, no refine
    notes = default_values(get_store_class("qdrant"), qdrant_pq, "portable", 1000, 32)[2]
    assert [n.split(":")[0] for n in notes] == ["nlist", "pq_m", "nbits", "nprobe", "refine"]


def test_recall_targets_replace_the_default_grid_and_must_be_fractions():
    cfg = parse_config(base(recall_targets=[0.95, 0.9], stores=[{"store": "hnswlib", "index": "hnsw"}]))
    plan = cfg.plan(cfg.stores[0], n=1000, dim=8)
    assert plan.targets == [0.9, 0.95] and plan.searches == [] and plan.knob == "ef"
    explicit = parse_config(base(recall_targets=[0.9]))  # the entry lists search values: measured as well
    assert explicit.plan(explicit.stores[0]).searches == [{"ef": 10}, {"ef": 20}]
    assert "recall targets must be in (0, 1]" in error_of(base(recall_targets=[90]))


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
    assert cfg.datasets[0].text.corpus == "wordnet-en" and cfg.settings == "portable"
    assert cfg.recall_targets == [0.9, 0.95, 0.99]
    assert {(s.store, s.family) for s in cfg.stores} == {(d, "hnsw") for d in LOCAL_DATABASES} | {
        ("hnswlib", "hnsw"), ("exact", "flat")}  # fmt: skip


def test_dry_run_lists_every_planned_point_and_starts_nothing(capsys, monkeypatch, tmp_path):
    from vdbbench import cli

    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path))  # nothing prepared: sizes come from the config
    assert cli.main(["sweep", "--dry-run", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    lines = [x for x in out.splitlines() if " · " in x]
    for db in LOCAL_DATABASES:
        tuned = [x for x in lines if f"({db}) hnsw" in x and "target recall" in x]
        assert [x.split("target recall ")[1].split(":")[0] for x in tuned] == ["0.9", "0.95", "0.99"], db
        assert all("m=16 ef_construction=200" in x and "tune ef (500 tune / 500 evaluate)" in x for x in tuned)
    assert "wordnet-en-minilm-20k (19000 vectors, 1000 queries)" in out
    loads = [x for x in lines if "concurrency local: 1, 2, 4 clients × 3 s" in x]
    assert len(loads) == 8 and all("reaching recall 0.95" in x for x in loads)  # one per build, baselines too
    assert not (tmp_path / "out").exists() and not any(tmp_path.iterdir())


def test_unknown_option_is_named_with_the_valid_keys():
    msg = error_of(base(stores=[{"store": "milvus", "index": "hnsw", "options": {"bogus": 1, "uri": "http://h:1"}}]))
    assert "stores[0].options.bogus - milvus has no option 'bogus'; valid keys: uri (" in msg
    assert "url (" in msg and "token (" in msg
    assert "options.uri" not in msg  # pymilvus's own name is accepted


def test_misspelled_server_url_key_is_an_error_not_an_embedded_run():
    msg = error_of(base(stores=[{"store": "qdrant-server", "index": "hnsw", "options": {"ulr": "http://h:6333"}}]))
    assert "stores[0].options.ulr" in msg and "url (Qdrant server URL" in msg


def test_store_without_options_says_so():
    msg = error_of(base(stores=[{"store": "exact", "index": "flat", "options": {"url": "x"}}]))
    assert "stores[0].options.url - exact has no option 'url'; valid keys: none" in msg


def test_every_adapter_documents_the_options_it_reads():
    """Each key an adapter reads from self.options must be declared (with help), so validation cannot reject it."""
    import inspect
    import re

    for name in store_names():
        cls = get_store_class(name)
        read = set(re.findall(r"options\.get\(\"(\w+)\"", inspect.getsource(inspect.getmodule(cls))))
        read -= {"type", "m", "ef_construction"}  # Elasticsearch's index_options mapping, not store options
        assert read <= set(cls.options_help), f"{name} reads undeclared options {read - set(cls.options_help)}"
        assert all(h.strip() for h in cls.options_help.values()), name


def test_dry_run_lists_hybrid_points_next_to_their_dense_point():
    from vdbbench.sweep.plan import planned_points

    native = next(
        n for n in store_names() if get_store_class(n).native_hybrid and "flat" in get_store_class(n).families
    )
    cfg = parse_config(
        base(
            datasets=[{"name": "t", "text": {"corpus": "wordnet-en-labels"}}],
            stores=[
                {"store": "hnswlib", "index": "hnsw", "search": {"ef": [10, 40]}, "hybrid": "rrf"},
                {"store": native, "index": "flat", "hybrid": {"fusion": "weighted", "native": True}},
                {"store": "bm25"},
            ],
        )
    )
    lines = planned_points(cfg)
    assert [x.split("search ")[1] for x in lines if "(hnswlib)" in x] == [
        "ef=10", "ef=10 · rrf fusion with bm25", "ef=40", "ef=40 · rrf fusion with bm25"]  # fmt: skip
    own = [x.split(" · ")[-1] for x in lines if f"({native})" in x]
    assert own == ["search -", "weighted fusion with bm25", "the store's own hybrid search"]
    assert sum("(bm25)" in x for x in lines) == 1
