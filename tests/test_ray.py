"""Concurrent clients as Ray actors, on a local Ray cluster this test starts; latencies merged exactly."""

import numpy as np
import pytest
import ray

from vdbbench.config import ConfigError, parse_config
from vdbbench.core.results import load_results
from vdbbench.execution.concurrent import merge_level
from vdbbench.execution.worker import ClientLoop
from vdbbench.stores import StoreError
from vdbbench.stores.redis.server import redis_home
from vdbbench.sweep.runner import Sweep


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def config(store, **concurrency):
    return parse_config({
        "k": 10, "runs": 1, "warmup": 5, "batch_size": 0,
        "datasets": [{"name": "syn", "synthetic": {"n": 3000, "dim": 16, "queries": 60, "seed": 3}}],
        "stores": [store],
        "concurrency": {"clients": [1, 2], "duration_s": 0.5, "min_recall": 0.5, **concurrency},
    })  # fmt: skip


def check_ray_load(out, store):
    [load] = [r for r in load_results(out) if r.get("workload") == "concurrent"]
    assert load["status"] == "ok", load["error"]
    assert load["concurrency"]["engine"] == "ray"
    levels = load["concurrency"]["levels"]
    assert [lv["clients"] for lv in levels] == [1, 2]
    for lv in levels:
        assert lv["queries"] > 0 and lv["qps"] > 0 and 0 < lv["p50_ms"] <= lv["p99_ms"]
    return load


def test_ray_actors_load_hnswlib(tmp_path, ray_cluster, monkeypatch):
    from vdbbench.execution import concurrent

    started = []
    real_init = concurrent.RayClient.__init__

    def counting_init(self, *args):
        real_init(self, *args)
        started.append(self.actor)

    monkeypatch.setattr(concurrent.RayClient, "__init__", counting_init)
    hnsw = {"store": "hnswlib", "index": "hnsw", "build": {"M": 8, "ef_construction": 32}, "search": {"ef": [10, 64]}}
    Sweep(config(hnsw, engine="ray"), tmp_path / "out").run()
    load = check_ray_load(tmp_path / "out", hnsw)
    assert len(started) == 2  # one actor per client of the largest level, reused by the smaller
    assert all(lv["client_bound"] is None for lv in load["concurrency"]["levels"])  # search runs in the actor


def test_ray_actors_load_a_redis_server(tmp_path, ray_cluster):
    try:
        redis_home()
    except StoreError as e:
        pytest.skip(str(e))
    redis = {"store": "redis", "index": "hnsw", "build": {"M": 8, "EF_CONSTRUCTION": 64}, "search": {"EF_RUNTIME": 32}}
    Sweep(config(redis, engine="ray"), tmp_path / "out").run()
    load = check_ray_load(tmp_path / "out", redis)
    assert all(lv["client_bound"] in (True, False) for lv in load["concurrency"]["levels"])  # a server: judged


def test_latencies_are_merged_not_averaged():
    fast = ClientLoop(np.full(99, 0.001), 0.1, 1.0)  # 99 queries at 1 ms in 1 s
    slow = ClientLoop(np.array([0.1]), 0.1, 1.0)  # 1 query at 100 ms
    level = merge_level([fast, slow], "server")
    merged = np.concatenate([fast.latencies, slow.latencies]) * 1e3
    assert level["clients"] == 2 and level["queries"] == 100 and level["qps"] == 100.0
    assert level["p99_ms"] == pytest.approx(np.percentile(merged, 99))
    assert level["p50_ms"] == pytest.approx(1.0)  # the mean of the two clients' medians would be 50.5 ms
    assert level["client_cpu_share"] == 0.1 and level["client_bound"] is False


def test_ray_settings_are_checked_before_anything_starts():
    with pytest.raises(ConfigError, match="address is for engine: ray"):
        config({"store": "exact", "index": "flat"}, address="auto")
    with pytest.raises(ConfigError, match="engine"):
        config({"store": "exact", "index": "flat"}, engine="dask")
    assert config({"store": "exact", "index": "flat"}).concurrency.engine == "local"  # the default
