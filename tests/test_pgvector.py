"""Contract tests for pgvector on the embedded PostgreSQL 16 + pgvector 0.6 (pgserver build)."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import psutil
import pytest
from storekit import (
    assert_answers_valid,
    build_and_search,
    check_baseline,
    files_left,
    open_store,
    small_data,
)

from vdbbench.runner import config_mismatches
from vdbbench.stores.pgvector import binary_copy_rows

METRICS = ["euclidean", "angular", "ip"]
BUILDS = {
    # family: (build params, search params) — generous search settings, so the floors hold
    "flat": ({}, {}),
    "hnsw": ({"m": 16, "ef_construction": 64}, {"ef": 200}),
    "ivf": ({"nlist": 20}, {"nprobe": 20}),  # every list probed: exhaustive over the lists
}
FLOORS = {"flat": 1.0, "hnsw": 0.95, "ivf": 0.99}


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


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("family", list(BUILDS))
def test_family_metric_reaches_floor(store, family, metric):
    build, search = BUILDS[family]
    out = build_and_search(store, family, metric, build, search)
    assert out.recall >= FLOORS[family], f"{family}/{metric}: recall {out.recall}"
    assert_answers_valid(out, 10, 2000)
    assert out.mismatches == []
    assert out.effective["family"] == family
    assert out.effective["metric"] == metric
    assert out.effective["params"] == build | search
    if family != "flat":
        assert out.effective["engine"]["plan"]["index_used"] == "vdbbench_items_embedding_idx"
        assert out.resources["index_bytes"] > 0
    assert out.resources["table_bytes"] > 0 and out.resources["memory_bytes"] > 0
    check_baseline("pgvector", family, metric, out.recall)
    store.drop()


def test_recall_rises_with_probes_and_search_batch_matches_search(store):
    # 20,000 points in 20 clusters, 100 lists: one probe reliably misses neighbours in other lists
    data = small_data("euclidean", n=20000, dim=48, queries=100)
    narrow = build_and_search(store, "ivf", "euclidean", {"nlist": 100}, {"nprobe": 1}, data=data)
    store.set_search_params({"nprobe": 100})
    assert store.effective_config()["params"]["nprobe"] == 100  # read back with SHOW ivfflat.probes
    wide = [store.search(q, 10) for q in data.test]
    batch = store.search_batch(data.test, 10)
    assert all(np.array_equal(a, b) for a, b in zip(wide, batch, strict=True))
    from vdbbench.metrics import recall_at_k

    assert narrow.recall < 0.95 < recall_at_k(wide, data.test, data.train, data.neighbors, 10, "euclidean").recall
    store.drop()


def test_k_larger_than_collection_and_than_ef_search(store):
    """flat returns every row; pgvector's HNSW scan returns at most hnsw.ef_search rows (its documented limit)."""
    data = small_data("euclidean")
    build_and_search(store, "flat", "euclidean")
    assert len(store.search(data.test[0], 5000)) == 2000
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


def test_nothing_left_running_or_on_disk_after_close():
    workdir = _workdir()
    try:
        s = open_store("pgvector", workdir)
        out = build_and_search(s, "hnsw", "euclidean", {"m": 8, "ef_construction": 32}, {"ef": 100})
        assert out.recall > 0.9
        assert out.resources["data_bytes"] > 0
        pids = [p.pid for p in s.server.processes()]
        assert len(pids) > 1  # postmaster and its workers
        assert "PostgreSQL 16" in s.engine_version() and "pgvector 0.6" in s.engine_version()
        s.drop()
        s.close()
        s.close()
        assert [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"] == []
        assert files_left(workdir) == []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


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


def test_second_process_style_client_attaches_to_the_same_server(store):
    """What concurrency clients do: attach with client_handle(); closing a client leaves the server running."""
    from vdbbench.stores.pgvector import PgvectorStore

    data = small_data("angular")
    build_and_search(store, "hnsw", "angular", {"m": 8, "ef_construction": 32}, {"ef": 100})
    assert store.owned_processes() == [store.server.pid]
    client = PgvectorStore(store.workdir, {})
    client.attach(store.client_handle())
    try:
        client.set_search_params({"ef": 100})
        assert all(np.array_equal(client.search(q, 10), store.search(q, 10)) for q in data.test[:10])
        assert client.owned_processes() == []
    finally:
        client.close()
    assert store.server.is_running() and store.server.data_dir.exists()
    assert len(store.search(data.test[0], 10)) == 10
    store.drop()


def test_server_mode_code_path_against_a_local_server(store, monkeypatch, tmp_path):
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
    from vdbbench.stores import pgvector

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
    from vdbbench.stores.pgvector import default_settings

    gib = 1024**3
    assert default_settings(16 * gib, 4)["shared_buffers"] == "4096MB"  # the users' 16 GiB host: the cap
    assert default_settings(2 * gib, 2)["shared_buffers"] == "512MB"
    assert default_settings(256 * 1024**2, 1)["shared_buffers"] == "128MB"  # never below PostgreSQL's default
    build_and_search(store, "hnsw", "euclidean", {"m": 8, "ef_construction": 32}, {"ef": 40})
    reported = store.effective_config()["engine"]["settings"]
    expected = default_settings()
    units = {"MB": 1, "GB": 1024}
    for name in ("shared_buffers", "maintenance_work_mem"):
        value = reported[name]
        as_mb = int(value[:-2]) * units[value[-2:]]
        assert as_mb == int(expected[name][:-2]), f"{name}: server reports {value}, sized {expected[name]}"
