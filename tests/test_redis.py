"""What is Redis's own, on Redis 7.4 + RediSearch 2.10 (redis-stack unpacked by scripts/setup.sh): its query
syntax and hybrid policies, TAG values, the binaries it needs, server mode. The contract every store meets is in
tests/conformance."""

from __future__ import annotations

import os

import numpy as np
import pytest
from storekit import (
    build_and_search,
    build_with_attributes,
    files_left,
    filtered_search,
    open_store,
    small_data,
)

from vdbbench.core.filters import parse_filter
from vdbbench.stores import BuildSpec, StoreError
from vdbbench.stores.redis.adapter import engine_filter
from vdbbench.stores.redis.server import redis_home

try:
    redis_home()
    MISSING = None
except StoreError as e:
    MISSING = str(e)
needs_redis = pytest.mark.skipif(MISSING is not None, reason=f"{MISSING}")

BUILDS = {"flat": ({}, {}), "hnsw": ({"m": 16, "ef_construction": 200}, {"ef": 200})}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = open_store("redis", tmp_path_factory.mktemp("redis"))
    yield s
    s.close()


def test_missing_binaries_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_REDIS_HOME", str(tmp_path / "nowhere"))
    monkeypatch.delenv("VDBBENCH_REDIS_URL", raising=False)
    with pytest.raises(StoreError, match=r"bash scripts/setup\.sh"):
        open_store("redis", tmp_path)
    assert files_left(tmp_path) == []


@pytest.mark.skipif(not os.environ.get("VDBBENCH_REDIS_URL"), reason="set VDBBENCH_REDIS_URL to test a running Redis")
def test_server_mode_with_url(tmp_path):
    s = open_store("redis", tmp_path)
    try:
        assert s.server is None
        out = build_and_search(s, "hnsw", "euclidean", {"m": 16, "ef_construction": 200}, {"ef": 200})
        assert out.recall >= 0.95 and out.mismatches == []
        s.drop()
    finally:
        s.close()


@needs_redis
def test_url_mode_against_the_private_server(store, monkeypatch, tmp_path):
    """Server mode (url + REDIS_PASSWORD from the environment) exercised against the embedded server."""
    assert store.engine_version().startswith("Redis 7.4") and "RediSearch 2.10" in store.engine_version()
    monkeypatch.setenv("REDIS_PASSWORD", store._password)
    remote = open_store("redis", tmp_path, {"url": f"redis://127.0.0.1:{store.server.port}/0", "prefix": "remote"})
    try:
        assert remote.server is None and remote.owned_processes() == []
        out = build_and_search(remote, "flat", "angular")
        assert out.recall == 1.0 and out.mismatches == []
        remote.drop()
    finally:
        remote.close()
    assert store.server.is_running() and files_left(tmp_path) == []


@needs_redis
def test_sweep_against_a_server_records_its_container_figures_or_why_not(store, monkeypatch, tmp_path):
    """In server mode the runner reads the compose container's memory and disk; with no Docker it says why."""
    from vdbbench.config import parse_config
    from vdbbench.core.results import load_results
    from vdbbench.sweep.runner import Sweep

    monkeypatch.setenv("REDIS_PASSWORD", store._password)
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no Docker engine, whatever the host
    cfg = parse_config({
        "k": 10, "runs": 1, "warmup": 0,
        "datasets": [{"name": "syn", "synthetic": {"n": 500, "dim": 8, "queries": 10}}],
        "stores": [{"store": "redis", "index": "flat",
                    "options": {"url": f"redis://127.0.0.1:{store.server.port}/0", "prefix": "sweep"}}],
    })  # fmt: skip
    Sweep(cfg, tmp_path / "out").run()
    [record] = load_results(tmp_path / "out")
    assert record["status"] == "ok" and record["recall"] == 1.0
    assert "docker" in record["resources"]["container_note"].lower()
    assert store._password not in (tmp_path / "out" / "results.jsonl").read_text()


def test_engine_filter_is_the_hybrid_query_prefilter():
    q = lambda expr: engine_filter(parse_filter(expr))  # noqa: E731
    assert q({"kind": "a"}) == "(@kind:{a})"
    assert q({"kind": "it's a-b"}) == "(@kind:{it\\'s\\ a\\-b})"  # punctuation and spaces escaped
    assert q({"kind": "日本"}) == "(@kind:{日本})"
    assert q({"kind": {"in": ["b", "c"]}}) == "(@kind:{b | c})"
    assert q({"year": 2003}) == "(@year:[2003 2003])"
    assert q({"year": {"in": [2003, 2005]}}) == "((@year:[2003 2003] | @year:[2005 2005]))"
    assert q({"year": {"gte": 2010, "lt": 2015}}) == "(@year:[2010 (2015])"
    assert q({"score": {"gt": 0.2, "lte": 0.7}}) == "(@score:[(0.2 0.7])"
    assert q({"year": {"gt": 3000}}) == "(@year:[(3000 +inf])"
    assert q({"score": {"lte": 0.5}}) == "(@score:[-inf 0.5])"
    assert q({"kind": "d", "year": {"gte": 2020}}) == "(@kind:{d} @year:[2020 +inf])"
    assert q({"my field": 1}) == "(@my\\ field:[1 1])"


@needs_redis
@pytest.mark.parametrize("family", list(BUILDS))
def test_filter_is_the_hybrid_query_and_its_policy_is_read_back(store, family):
    """The filter is the KNN query's pre-filter, and FT.PROFILE says how RediSearch ran it (recall under every
    operator, and the TAG/NUMERIC fields read back, are in tests/conformance)."""
    build, search = BUILDS[family]
    build_with_attributes(store, family, build, search)
    store.set_filter(parse_filter({"kind": "d", "year": {"gte": 2020}}))
    effective = store.effective_config()
    assert effective["filter"] == "(@kind:{d} @year:[2020 +inf])"
    assert effective["engine"]["query"]["knn"].startswith("(@kind:{d} @year:[2020 +inf])=>[KNN $K @vec $BLOB")
    expected = "ad-hoc brute force over the passing documents" if family == "hnsw" else "brute force (FLAT index)"
    assert effective["engine"]["query"]["hybrid_policy"] == expected
    store.set_filter(None)
    store.drop()
    assert store._client.dbsize() == 0  # drop removed the index and its hashes


@needs_redis
def test_hybrid_policy_on_larger_data_batches_a_broad_filter_and_brute_forces_a_narrow_one(store):
    """20,000 rows and a sparse graph: under a 50% filter RediSearch walks HNSW in batches (recall follows ef),
    under a 1.5% filter it scores the passing documents exactly."""
    data = small_data("euclidean", n=20000, dim=48, queries=100)
    build_with_attributes(store, "hnsw", {"m": 4, "ef_construction": 10}, {"ef": 10}, data=data)
    broad, narrow = {"kind": {"in": ["b", "c"]}}, {"kind": "d", "year": {"gte": 2020}}
    tight = filtered_search(store, broad, data)
    store.set_filter(parse_filter(broad))
    assert store.effective_config()["engine"]["query"]["hybrid_policy"].startswith("batches")
    store.set_search_params({"ef": 400})
    wide = filtered_search(store, broad, data)
    assert tight.recall < 0.6 and wide.recall > tight.recall + 0.3, (tight.recall, wide.recall)
    assert tight.violations == wide.violations == 0 and tight.short == wide.short == 0
    store.set_filter(parse_filter(narrow))
    assert store.effective_config()["engine"]["query"]["hybrid_policy"].startswith("ad-hoc brute force")
    assert filtered_search(store, narrow, data).recall == 1.0
    store.drop()


@needs_redis
def test_tag_values_match_exactly_whatever_they_hold(store):
    """Case, commas (the default TAG separator), quotes, spaces, dashes and non-ASCII: one exact tag each."""
    kinds = np.array(["it's 5%", "a,b", "A", "a", "日本 語", "x-y"] * 4)
    vectors = np.random.default_rng(3).standard_normal((24, 4)).astype(np.float32)
    store.create(BuildSpec("flat", "euclidean", 4, {}, count=24, attributes={"kind": "str"}))
    store.insert(np.arange(24, dtype=np.int64), vectors, {"kind": kinds})
    store.build_index()
    for value in set(kinds.tolist()):
        store.set_filter(parse_filter({"kind": value}))
        assert sorted(store.search(vectors[0], 24).tolist()) == np.flatnonzero(kinds == value).tolist(), value
        assert sorted(store.search_batch(vectors[:1], 24)[0].tolist()) == np.flatnonzero(kinds == value).tolist()
    store.set_filter(None)
    store.drop()
