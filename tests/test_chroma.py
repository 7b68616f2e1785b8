"""What is Chroma's own: its where clauses, filtered search on a sparse graph, metadata values, and the server
mode (a `chroma run` started here, and VDBBENCH_CHROMA_URL when set). The embedded store's contract is in
tests/conformance."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest
from attachkit import assert_same_answers, search_from_second_process
from storekit import (
    assert_answers_valid,
    build_and_search,
    check_delete_and_insert,
    check_filters,
    files_left,
    open_store,
    small_data,
)

from vdbbench.core.filters import parse_filter
from vdbbench.execution.points import param_sources
from vdbbench.stores import BuildSpec, StoreError, get_store_class
from vdbbench.stores.chroma.adapter import engine_filter

pytest.importorskip("chromadb")

METRICS = ["euclidean", "angular", "ip"]
GENEROUS_BUILD = {"m": 16, "ef_construction": 100}
TIGHT_BUILD = {"m": 8, "ef_construction": 64}
INDEXES = {"kind": "string_inverted_index", "year": "int_inverted_index", "score": "float_inverted_index"}


@pytest.fixture
def store(tmp_path):
    s = open_store("chroma", tmp_path)
    yield s
    s.close()


def test_engine_filter_is_a_where_clause():
    where = lambda expr: engine_filter(parse_filter(expr))  # noqa: E731
    assert where({"kind": "a"}) == {"kind": {"$eq": "a"}}
    assert where({"kind": "it's"}) == {"kind": {"$eq": "it's"}}  # a JSON value: nothing to escape
    assert where({"kind": {"in": ["b", "c"]}}) == {"kind": {"$in": ["b", "c"]}}
    assert where({"year": {"in": [2003, 2005.0]}}) == {"year": {"$in": [2003.0, 2005.0]}}  # $in takes one type
    assert where({"year": 2003}) == {"year": {"$eq": 2003}}
    assert where({"year": {"gte": 2010, "lt": 2015}}) == {"$and": [{"year": {"$gte": 2010}}, {"year": {"$lt": 2015}}]}
    assert where({"score": {"gt": 0.2, "lte": 0.7}}) == {"$and": [{"score": {"$gt": 0.2}}, {"score": {"$lte": 0.7}}]}
    assert where({"kind": "d", "year": {"gte": 2020}}) == {"$and": [{"kind": {"$eq": "d"}}, {"year": {"$gte": 2020}}]}


def test_embedded_filtered_search_on_a_sparse_graph_is_approximate(store):
    """m 4, ef 10: filtered recall measured 0.598..0.92, 0.598 in a CI run of 2026-12-04 (so the graph serves, not
    a scan of the passing rows)."""
    out = check_filters(store, "hnsw", 0.5, {"m": 4, "ef_construction": 10}, {"ef": 10})
    assert min(o.recall for o in out.values()) < 0.9


def test_embedded_metadata_values_filter_exactly(store):
    """Quotes, operator-like strings and non-ASCII stay plain values; an int column matches float bounds."""
    kinds = np.array(["it's", "$eq", "日本", "a"] * 5)
    vectors = np.random.default_rng(3).standard_normal((20, 4)).astype(np.float32)
    store.create(BuildSpec("hnsw", "euclidean", 4, GENEROUS_BUILD, count=20,
                           attributes={"kind": "str", "year": "int"}))  # fmt: skip
    store.insert(np.arange(20, dtype=np.int64), vectors, {"kind": kinds, "year": np.arange(20, dtype=np.int64)})
    store.build_index()
    for value in ("it's", "$eq", "日本"):
        store.set_filter(parse_filter({"kind": value}))
        assert sorted(store.search(vectors[0], 20).tolist()) == np.flatnonzero(kinds == value).tolist()
        assert sorted(store.search_batch(vectors[:1], 20)[0].tolist()) == np.flatnonzero(kinds == value).tolist()
    store.set_filter(parse_filter({"year": {"in": [3, 5.0]}}))
    assert sorted(store.search(vectors[0], 20).tolist()) == [3, 5]
    store.set_filter(parse_filter({"year": {"gt": 16.5}}))
    assert sorted(store.search(vectors[0], 20).tolist()) == [17, 18, 19]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """A real `chroma run` on 127.0.0.1 and a free port, data in a temp dir, shared by this module's server tests
    (the last one stops it itself); stopped afterwards."""
    tmp_path = tmp_path_factory.mktemp("chroma-server")
    cli = Path(sys.executable).with_name("chroma")
    if not cli.exists():
        cli = shutil.which("chroma")
    if not cli:
        pytest.skip("the chroma CLI is not installed next to this Python")
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(cli), "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chroma server did not come up: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_chroma_run_filters_and_deletes(chroma_server, tmp_path):
    url, _ = chroma_server
    store = open_store("chroma", tmp_path / "client", {"url": url})
    try:
        check_filters(store, "hnsw", 0.95, GENEROUS_BUILD, {"ef": 100})
        assert store.effective_config()["attribute_indexes"] == INDEXES  # read back from the server's schema
        check_delete_and_insert(store, "hnsw", 0.95, GENEROUS_BUILD, {"ef": 100})
        store.drop()
    finally:
        store.close()


def test_server_collection_searched_from_second_process(chroma_server, tmp_path):
    url, _ = chroma_server
    options = {"url": url}
    store = open_store("chroma", tmp_path / "client", options)
    try:
        out = build_and_search(store, "hnsw", "angular", TIGHT_BUILD, {"ef": 100})
        handle = store.client_handle()
        assert handle["url"] == url and handle["collection"] == "vdbbench"
        assert (handle["spec"].family, handle["spec"].metric, handle["spec"].dim) == ("hnsw", "angular", 32)
        data = small_data("angular")
        # a client asking another ef_search must not rewrite the builder's collection configuration
        # (the server would keep serving its load-time ef_search anyway, so answers stay the same)
        attached = search_from_second_process("chroma", tmp_path / "client", options, handle, data.test,
                                              {"ef": 40})  # fmt: skip
        assert_same_answers(attached, out.answers)
        # the client's close() neither dropped the collection nor changed it: the builder answers the same
        assert "vdbbench" in [c.name for c in store._client.list_collections()]
        assert store._stored_hnsw()["ef_search"] == 100
        assert store._collection.count() == 2000
        assert_same_answers([store.search(q, 10) for q in data.test], out.answers)
        store.drop()
    finally:
        store.close()


def test_server_contract_and_ef_search_caveat(chroma_server, tmp_path):
    """Runs last of the server tests: it stops the server and checks it is gone."""
    url, proc = chroma_server
    store = open_store("chroma", tmp_path / "client", {"url": url})
    try:
        # ef_search at its default: the value the server's graph is loaded with, so nothing differs
        out = build_and_search(store, "hnsw", "angular", GENEROUS_BUILD, {"ef": 100})
        assert out.recall >= 0.95
        assert_answers_valid(out, 10, 2000)
        assert out.mismatches == []
        # a running server keeps its graph's load-time ef_search and no API says which it serves: ef is "sent"
        assert out.effective["params"] == GENEROUS_BUILD
        assert store.engine_version().startswith("chroma server")
        store.set_search_params({"ef": 10})
        effective = store.effective_config()
        assert effective["engine"]["configuration"]["ef_search"] == 10  # stored, but not necessarily served
        assert param_sources(GENEROUS_BUILD | {"ef": 10}, effective) == {"m": "engine", "ef_construction": "engine",
                                                                          "ef": "sent"}  # fmt: skip
        store.drop()
        assert "vdbbench" not in [c.name for c in store._client.list_collections()]
    finally:
        store.close()
    assert files_left(tmp_path / "client") == []
    proc.terminate()
    proc.wait(timeout=20)
    assert proc.returncode is not None and not psutil.pid_exists(proc.pid)


SERVER_URL = os.environ.get("VDBBENCH_CHROMA_URL")


@pytest.mark.skipif(not SERVER_URL, reason="set VDBBENCH_CHROMA_URL to a Chroma server (e.g. http://127.0.0.1:8000)")
@pytest.mark.parametrize("metric", METRICS)
def test_external_server_reaches_floor(tmp_path, metric):
    store = open_store("chroma", tmp_path, {"url": SERVER_URL})
    try:
        out = build_and_search(store, "hnsw", metric, GENEROUS_BUILD, {"ef": 100})
        assert out.recall >= 0.95
        assert_answers_valid(out, 10, 2000)
        assert out.mismatches == []
        store.drop()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("reported", "engine", "mode", "label"),
    [
        ("chromadb 1.5.9", "Chroma embedded client", "embedded", "Chroma 1.5.9 (embedded client)"),
        ("chroma server 1.0.0 (chromadb 1.5.9)", "Chroma", "server", "Chroma 1.0.0 server"),
    ],
)
def test_identity_from_the_reported_version(reported, engine, mode, label):
    """The version strings are this adapter's engine_version() formats; an old record without one is the embedded
    client, and that embedded client stands in for a Chroma server."""
    from vdbbench.stores.identity import identify, stand_in_warning

    ident = identify("chroma", reported, {}, local=False)
    assert (ident["engine"], ident["mode"], ident["label"], ident["baseline"]) == (engine, mode, label, False)
    assert identify("chroma", None)["label"] == "Chroma embedded client"
    assert (stand_in_warning(ident) is None) == (mode == "server")


def test_server_address_that_does_not_answer_is_an_error_naming_it(tmp_path):
    """Never a silent fallback: the embedded client must not start in the named server's place."""
    from conftest import free_port

    port = free_port()
    store = get_store_class("chroma")(tmp_path, {"url": f"http://127.0.0.1:{port}"})
    with pytest.raises(StoreError, match=f"http://127.0.0.1:{port}"):
        store.open()
    store.close()
    assert store.owned_processes() == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no embedded data dir was created


def test_settings_engine_gives_chromas_own_hnsw_defaults():
    from vdbbench.config import parse_config

    data = {"datasets": [{"name": "d", "synthetic": {"n": 100}}], "stores": [{"store": "chroma", "index": "hnsw"}]}
    engine = parse_config({**data, "settings": "engine"})
    assert engine.plan(engine.stores[0], n=10000, dim=64).builds == [{"m": 16, "ef_construction": 100}]
