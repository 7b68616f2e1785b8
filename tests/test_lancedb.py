"""What is LanceDB's own: refine and partition training, IVF_HNSW over full or SQ vectors, the SQL filter, pre- and
post-filtering, the scan of rows added after the build, native hybrid's logging. The contract every store meets
(recall floors, read-back, filters, deletes, concurrent writes, second-process clients) is in tests/conformance."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from storekit import (
    FILTERS,
    build_and_search,
    build_with_attributes,
    check_delete_and_insert,
    check_filters,
    contract_attributes,
    filtered_search,
    open_store,
    score_restricted,
    small_data,
)

from vdbbench.core.filters import mask, parse_filter
from vdbbench.stores import BuildSpec, StoreError
from vdbbench.stores.lancedb.adapter import engine_filter

pytest.importorskip("lancedb")

# Generous settings on the 2000-row contract data: every partition probed; for the quantized indexes
# (PQ codes, HNSW over 8-bit SQ codes) a refine step re-ranks candidates on the full vectors.
GENEROUS = {
    "ivf": ({"nlist": 16}, {"nprobe": 16}),
    "pq": ({"nlist": 4, "pq_m": 8, "nbits": 8}, {"nprobe": 4, "refine": 10}),
    "hnsw": (
        {"num_partitions": 1, "m": 16, "ef_construction": 200, "quantization": "sq"},
        {"ef": 200, "nprobe": 1, "refine": 5},
    ),
}
IVF_FLOOR = 0.99


@pytest.fixture
def store(tmp_path):
    s = open_store("lancedb", tmp_path)
    yield s
    s.close()


def test_pq_without_refine_is_approximate(store):
    """8 PQ codes for 32 dims lose ranking detail; the floor is low on purpose, refining must beat it."""
    build, _ = GENEROUS["pq"]
    raw = build_and_search(store, "pq", "euclidean", build, {"nprobe": 4, "refine": 0})
    assert 0.3 <= raw.recall < 0.9
    data = small_data("euclidean")
    store.set_search_params({"nprobe": 4, "refine": 10})
    refined = [store.search(q, 10) for q in data.test]
    assert sum(len(set(a) & set(data.neighbors[i][:10])) for i, a in enumerate(refined)) / 500 >= 0.95


def test_fewer_partitions_trained_than_asked_shows_as_mismatch(store):
    """LanceDB trains fewer IVF_PQ partitions than asked on a small table; the read-back must say so."""
    out = build_and_search(store, "pq", "euclidean", {"nlist": 16, "pq_m": 8}, {"nprobe": 16})
    trained = out.effective["params"]["nlist"]
    assert trained < 16
    assert f"nlist: asked 16, engine reports {trained}" in out.mismatches


def test_pq_sub_vectors_must_divide_dim(store):
    with pytest.raises(StoreError, match="must divide the dimension 30"):
        store.create(BuildSpec("pq", "euclidean", 30, {"nlist": 4, "pq_m": 8, "nbits": 8}))


def test_hnsw_is_over_full_vectors_unless_quantization_is_asked(store):
    """Portable hnsw on LanceDB is IVF_HNSW_FLAT (full vectors, one partition, compacted table): at a high ef it
    reaches the recall every other HNSW store reaches; SQ stays an explicit option, read back as such. (That ef,
    which no LanceDB API reports, takes effect is in tests/conformance.)"""
    data = small_data("angular", n=5000, dim=32, queries=50)
    build = {"num_partitions": 1, "m": 16, "ef_construction": 200, "quantization": "none"}
    full = build_and_search(store, "hnsw", "angular", build, {"ef": 400, "nprobe": 1}, data=data)
    assert full.recall >= 0.99 and full.mismatches == []
    assert full.effective["engine"]["index"]["type"] == "IvfHnswFlat"
    assert full.effective["params"]["quantization"] == "none"
    assert full.effective["engine"]["fragments"] == 1  # the 10 insert batches were compacted in build_index()
    sq_build = {**build, "quantization": "sq"}
    sq = build_and_search(store, "hnsw", "angular", sq_build, {"ef": 400, "nprobe": 1}, data=data)
    assert sq.effective["engine"]["index"]["type"] == "IvfHnswSq" and sq.effective["params"]["quantization"] == "sq"


def test_hnsw_ef_below_k_times_refine_is_refused_clearly(store):
    data = small_data("euclidean", n=30, dim=8, queries=5)
    build_and_search(store, "hnsw", "euclidean", {"num_partitions": 1, "m": 8, "ef_construction": 50}, data=data)
    store.set_search_params({"ef": 20, "nprobe": 1, "refine": 5})
    with pytest.raises(StoreError, match=r"ef=20 must be >= k × refine \(refine_factor\) \(here 10 × 5\)"):
        store.search(data.test[0], 10)


HYBRID_SCRIPT = """
import sys, tempfile
from pathlib import Path
import numpy as np
from vdbbench.stores import BuildSpec
from vdbbench.stores.lancedb.adapter import LanceDBStore

rng = np.random.default_rng(0)
vectors = rng.random((300, 8), dtype=np.float32)
store = LanceDBStore(Path(tempfile.mkdtemp()))
store.open()
store.set_texts([f"ledger entry {i % 9} account {i}" for i in range(300)])
store.create(BuildSpec("flat", "euclidean", 8, {}, 300))
store.insert(np.arange(300), vectors)
store.build_index()
store.set_hybrid(True)
found = [store.search((vectors[i], f"account {i}"), 5) for i in range(20)]
print(sum(int(i in f) for i, f in enumerate(found)))
store.close()
"""


@pytest.mark.parametrize("user_setting", [None, "warn"])
def test_native_hybrid_does_not_flood_the_terminal_unless_the_user_asks(user_setting):
    """Lance logs a deprecation warning per hybrid query; the adapter quiets that one logger, and a
    LANCEDB_LOG the user set is left alone."""
    env = {k: v for k, v in os.environ.items() if k != "LANCEDB_LOG"} | (
        {"LANCEDB_LOG": user_setting} if user_setting else {}
    )
    done = subprocess.run([sys.executable, "-c", HYBRID_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) >= 18  # the text leg finds the passage naming the account
    warnings = done.stderr.count("Deprecation warning")
    assert (warnings == 0) if user_setting is None else (warnings >= 20)


# -- filters, deletes and inserts after the build --------------------------------------------------------
SCALAR_INDEXES = {"kind": "Bitmap", "year": "BTree", "score": "BTree"}  # as list_indices reports them


@pytest.mark.parametrize(
    "expression,sql",
    [
        ({"kind": "a"}, "`kind` = 'a'"),
        ({"kind": "it's"}, "`kind` = 'it''s'"),
        ({"kind": {"in": ["b", "o'c"]}}, "`kind` IN ('b', 'o''c')"),
        ({"year": {"in": [2001, 2003]}}, "`year` IN (2001, 2003)"),
        ({"year": {"gt": 2010}}, "`year` > 2010"),
        ({"year": {"gte": 2010, "lt": 2015}}, "`year` >= 2010 AND `year` < 2015"),
        ({"score": {"lte": 0.7}}, "`score` <= 0.7"),
        ({"Dept`x": "loans", "year": 2003}, "`Dept``x` = 'loans' AND `year` = 2003"),
    ],
)
def test_engine_filter_is_lancedb_sql(expression, sql):
    # https://docs.lancedb.com/.../search/filtering: SQL where; backticks keep a column name's case
    assert engine_filter(parse_filter(expression)) == sql


def test_prefilter_is_planned_on_the_scalar_indexes(store):
    """The filter reaches LanceDB as its SQL where clause, pre-filtering (stage read from the query plan) with the
    passing rows taken from the scalar indexes; recall under every operator is in tests/conformance."""
    build, search = GENEROUS["ivf"]
    build_with_attributes(store, "ivf", build, search)
    assert "filter" not in store.effective_config()
    store.set_filter(parse_filter(FILTERS["and"]))
    effective = store.effective_config()
    assert effective["filter"] == "`kind` = 'd' AND `year` >= 2020"
    assert (effective["filter_mode"], effective["filter_stage"]) == ("pre", "pre")  # stage: from the plan
    assert "ScalarIndexQuery" in effective["engine"]["plan"]  # the passing rows come from the scalar indexes


def test_prefilter_on_one_ivf_probe_answers_short_and_says_so(store):
    """A pre-filter searches only the passing rows of the probed partitions: with one probe of 32, a 1.5%
    filter finds fewer than k rows for most queries. The answers come back short, never padded
    (measured: 'and' recall 0.13 with all 50 answers short, 'eq-str' 0.81)."""
    out = check_filters(store, "ivf", 0.0, {"nlist": 32}, {"nprobe": 1})
    assert out["and"].short >= 40 and out["and"].recall < 0.4
    assert 0.5 < out["eq-str"].recall < 0.95


def test_postfilter_filters_the_top_k_and_answers_short(tmp_path):
    """options.filter: post keeps only the passing rows of the unfiltered top-k (LanceDB's documented
    post-filter), so recall falls to about the selectivity: no floor of 0.9 is possible, the test
    checks that behaviour instead."""
    store = open_store("lancedb", tmp_path, {"filter": "post"})
    try:
        build, search = GENEROUS["hnsw"]
        out = check_filters(store, "hnsw", 0.0, build, search)
        unfiltered = [set(store.search(q, 10).tolist()) for q in small_data("euclidean").test]
        for name, got in out.items():
            assert all(set(a.tolist()) <= top for a, top in zip(got.answers, unfiltered, strict=True)), name
            if 0 < got.selectivity < 1:
                assert got.short > 0 and got.recall < min(1.0, got.selectivity + 0.15), (name, got.recall)
        store.set_filter(parse_filter(FILTERS["eq-str"]))
        effective = store.effective_config()
        assert (effective["filter_mode"], effective["filter_stage"]) == ("post", "post")
    finally:
        store.close()


def test_any_column_name_filters_and_reads_back_its_index(store):
    """Backticks keep a column's case and spaces in the where clause; list_indices quotes such names, the
    read-back unquotes them."""
    vectors = small_data("euclidean").train[:300]
    store.create(BuildSpec("flat", "euclidean", 32, {}, 300, attributes={"Dept": "str", "my year": "int"}))
    store.insert(np.arange(300), vectors, {"Dept": np.array(["o'k", "b", "c"])[np.arange(300) % 3],
                                           "my year": np.arange(300)})  # fmt: skip
    store.build_index()
    store.set_filter(parse_filter({"Dept": "o'k", "my year": {"lt": 100}}))
    found = store.search(vectors[3], 50)
    assert sorted(found.tolist()) == list(range(0, 100, 3))  # all 34 passing rows, and only them
    assert store.effective_config()["attribute_indexes"] == {"Dept": "Bitmap", "my year": "BTree"}


def test_numbers_are_sent_as_the_column_types(store):
    """Lance refuses a float literal on an int64 column: 2010.5 and 2003.0 on year are sent as the integer
    bounds and values that pass the same rows; an int bound on the float score column passes too."""
    data = build_with_attributes(store, "flat")
    for expression in ({"year": {"gt": 2010.5, "lte": 2014.9}}, {"year": {"in": [2003.0, 2004]}}, {"score": {"gt": 0}}):
        got = filtered_search(store, expression, data)
        assert got.violations == 0 and got.short == 0 and got.recall == 1.0, expression
    store.set_filter(parse_filter({"year": {"gt": 2010.5, "lte": 2014.9}}))
    assert store.effective_config()["filter"] == "`year` >= 2011 AND `year` <= 2014"


def test_unknown_filter_mode_is_refused_with_the_config(tmp_path):
    from vdbbench.config import ConfigError, parse_config

    cfg = {"datasets": [{"name": "d", "synthetic": {}}],
           "stores": [{"store": "lancedb", "index": "hnsw", "options": {"filter": "after"}}]}  # fmt: skip
    with pytest.raises(ConfigError, match=r"stores\[0\].options.filter: 'after' is not a filter mode; use pre or post"):
        parse_config(cfg)
    with pytest.raises(StoreError, match=r"options.filter: 'after' is not a filter mode"):
        open_store("lancedb", tmp_path, {"filter": "after"})


def test_rows_added_after_the_build_are_scanned_beside_the_index(store):
    """Rows added after the index sit outside it: LanceDB scans them (no fast_search), under a filter too, and says
    so (ivf+flat); that deletes and inserts meet the contract on every family is in tests/conformance."""
    family = "ivf"
    build, search = GENEROUS[family]
    got = check_delete_and_insert(store, family, IVF_FLOOR, build, search)
    data, flt = small_data("euclidean"), parse_filter(FILTERS["in-str"])
    near = np.unique(data.neighbors[:, :3])
    deleted = near[near < 1800][:200]  # as check_delete_and_insert chooses them
    assert got["deleted"] == len(deleted) > 100
    effective = store.effective_config()
    assert effective["engine"]["fast_search"] is False
    assert effective["family"] == f"{family}+flat"  # the 200 new rows are scanned, not indexed
    assert effective["engine"]["stats"]["num_unindexed_rows"] == 200
    live = np.ones(2000, dtype=bool)
    live[deleted] = False
    store.set_filter(flt)
    filtered = score_restricted(
        [store.search(q, 10) for q in data.test], data, live & mask(flt, contract_attributes()), 10
    )
    assert filtered.violations == 0 and filtered.recall >= IVF_FLOOR
    assert any(np.isin(a, np.arange(1800, 2000)).any() for a in filtered.answers)  # new rows do come back


def test_identity_from_the_reported_version(tmp_path):
    """The version comes from the installed engine; LanceDB is embedded by design, so it stands in for no server."""
    from importlib.metadata import version

    from vdbbench.stores.identity import identify, stand_in_warning

    ident = identify("lancedb", "lancedb 0.40.0", {}, local=False)
    assert (ident["engine"], ident["mode"], ident["label"]) == ("LanceDB", "embedded", "LanceDB 0.40.0 (embedded)")
    assert ident["version"] == "0.40.0" and not ident["baseline"]
    assert stand_in_warning(ident) is None
    store = open_store("lancedb", tmp_path, {})
    try:
        assert store.engine_identity()["label"] == f"LanceDB {version('lancedb')} (embedded)"
    finally:
        store.close()


def test_portable_hnsw_is_one_graph_over_full_vectors_and_engine_settings_lances_own():
    from vdbbench.config import parse_config

    data = {"datasets": [{"name": "d", "synthetic": {"n": 100}}], "stores": [{"store": "lancedb", "index": "hnsw"}]}
    portable = parse_config(data)
    build = portable.plan(portable.stores[0], n=10000, dim=64).builds[0]
    assert build == {"num_partitions": 1, "m": 16, "ef_construction": 200, "quantization": "none"}
    engine = parse_config({**data, "settings": "engine"})
    build = engine.plan(engine.stores[0], n=10000, dim=64).builds[0]
    assert (build["m"], build["ef_construction"], build["quantization"]) == (20, 300, "sq")


def test_pq_sub_vectors_must_divide_the_dimension_before_anything_starts(tmp_path, monkeypatch):
    from vdbbench.config import ConfigError, parse_config
    from vdbbench.sweep.runner import Sweep

    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))
    data = {"k": 10, "datasets": [{"name": "syn", "synthetic": {"n": 3000, "dim": 16, "queries": 60}}],
            "stores": [{"store": "lancedb", "index": "pq", "build": {"num_sub_vectors": 6}}]}  # fmt: skip
    with pytest.raises(ConfigError) as e:
        Sweep(parse_config(data), tmp_path / "out").run()
    assert "stores[0].build.pq_m (num_sub_vectors): 6 does not divide the dimension 16" in str(e.value)
    assert "(dataset 'syn', dim 16, k 10)" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_repository_datasets_folder_does_not_shadow_huggingface_datasets_for_lancedb():
    """lancedb probes for HuggingFace's ``datasets``; run from the repository root, ``datasets/`` must not pose as it
    (sentence-transformers' side: test_packaging.py)."""
    from pathlib import Path

    code = "import vdbbench, sys; import lancedb; print(sys.modules.get('datasets'))"
    root = Path(__file__).parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "namespace" not in out.stdout


def test_native_hybrid_on_english_passages_builds_an_english_full_text_index(tmp_path):
    """What the quality sweep's native-hybrid point records of LanceDB (test_quality.py): a stemmed English FTS
    index beside the vectors, fused by LanceDB's RRF reranker."""
    from vdbbench.stores import get_store_class

    rng = np.random.default_rng(0)
    vectors = rng.random((300, 8), dtype=np.float32)
    store = open_store("lancedb", tmp_path, {})
    try:
        store.set_texts([f"the ledger entry {i % 9} names account {i}" for i in range(300)])
        store.create(BuildSpec("flat", "euclidean", 8, {}, 300))
        store.insert(np.arange(300), vectors)
        store.build_index()
        store.set_hybrid(True)
        fts = store.effective_config()["engine"]["fts"]
        assert fts["language"] == "English" and fts["stem"] and fts["remove_stop_words"]
    finally:
        store.close()
    assert "RRFReranker" in get_store_class("lancedb").native_hybrid
