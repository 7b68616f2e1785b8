"""The runner end to end on real in-process stores: records, failures, resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from vdbbench.cli import main
from vdbbench.config import ConfigError, parse_config
from vdbbench.core.results import ResultsFile, load_results, read_records
from vdbbench.execution.worker import StoreWorker, WorkerTimeout
from vdbbench.stores import BuildSpec
from vdbbench.sweep.runner import Sweep

ROOT = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))


RAW = {
    "k": 10,
    "runs": 2,
    "warmup": 5,
    "datasets": [{"name": "syn", "synthetic": {"n": 3000, "dim": 16, "queries": 60, "seed": 3}}],
    "stores": [{"store": "exact", "index": "flat"}],
}


def config(stores, **over):
    return parse_config({**RAW, "stores": stores, **over})


HNSW = {
    "store": "hnswlib",
    "index": "hnsw",
    "build": {"M": [8, 16], "ef_construction": 64},
    "search": {"ef": [10, 100]},
}
EXACT = {"store": "exact", "index": "flat"}


def test_sweep_writes_one_record_per_point_with_provenance(tmp_path):
    counts = Sweep(config([HNSW, EXACT]), tmp_path / "out").run()
    assert counts["ok"] == 5 and counts["failed"] == 0
    records = load_results(tmp_path / "out")
    assert len(records) == 5
    r = next(r for r in records if r["store"] == "hnswlib" and r["build"]["m"] == 16 and r["search"]["ef"] == 100)
    for field in (
        "dataset",
        "index",
        "k",
        "recall",
        "qps",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "insert_s",
        "index_s",
        "status",
        "error",
        "effective",
        "provenance",
        "dataset_info",
    ):
        assert field in r, field
    assert r["recall"] >= 0.95 and r["status"] == "ok" and r["config_mismatch"] == []
    assert r["effective"]["params"]["m"] == 16
    assert len(r["qps_runs"]) == 2
    assert r["provenance"]["packages"]["hnswlib"] and r["provenance"]["host"]["cpu_count"] >= 1
    assert len(r["dataset_info"]["sha256"]) == 64 and r["dataset_info"]["train"] == 3000
    exact = next(r for r in records if r["store"] == "exact")
    assert exact["recall"] == 1.0


def test_rerun_skips_measured_points(tmp_path):
    Sweep(config([HNSW]), tmp_path / "out").run()
    lines_before = (tmp_path / "out" / "results.jsonl").read_text().count("\n")
    counts = Sweep(config([HNSW]), tmp_path / "out").run()
    assert counts == {"ok": 0, "failed": 0, "skipped": 0, "resumed": 4}
    assert (tmp_path / "out" / "results.jsonl").read_text().count("\n") == lines_before


def test_extending_a_sweep_measures_only_new_points(tmp_path):
    Sweep(config([HNSW]), tmp_path / "out").run()
    wider = {**HNSW, "search": {"ef": [10, 100, 200]}}
    counts = Sweep(config([wider]), tmp_path / "out").run()
    assert counts["ok"] == 2 and counts["resumed"] == 4


@pytest.mark.parametrize("step", ["open", "insert", "search"])
def test_failing_store_is_recorded_and_others_still_run(tmp_path, failing_store, step):
    broken = {"store": "failing", "index": "flat", "options": {"fail_at": step}}
    counts = Sweep(config([broken, EXACT]), tmp_path / "out").run()
    records = load_results(tmp_path / "out")
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["store"] == "failing"
    assert f"engine refused {step}" in failed[0]["error"]
    assert counts["ok"] == 1 and [r["store"] for r in records if r["status"] == "ok"] == ["exact"]


def test_failed_point_is_retried_on_resume_and_superseded(tmp_path, failing_store, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv("FAILING_STORE_FAIL_AT", "search")  # the engine fails this time (options, part of the key, stay)
    Sweep(config([{"store": "failing", "index": "flat"}]), out).run()
    monkeypatch.delenv("FAILING_STORE_FAIL_AT")
    Sweep(config([{"store": "failing", "index": "flat"}]), out).run()
    assert len(read_records(out / "results.jsonl")) == 2  # history kept
    assert [r["status"] for r in load_results(out)] == ["ok"]  # one current record


def test_changed_options_are_a_different_point(tmp_path, failing_store):
    """Options change results (a server's URL, a pre- or post-filter): a sweep with other options measures anew."""
    out = tmp_path / "out"
    Sweep(config([{"store": "failing", "index": "flat", "options": {"password": "a"}}]), out).run()
    counts = Sweep(config([{"store": "failing", "index": "flat", "options": {"seed_note": "b"}}]), out).run()
    assert counts["ok"] == 1 and counts["resumed"] == 0
    assert len({r["key"] for r in load_results(out)}) == 2


def test_k_beyond_ground_truth_is_rejected_before_any_store_runs(tmp_path):
    with pytest.raises(ConfigError, match="k: 200 exceeds the 100 true neighbours"):
        Sweep(config([EXACT], k=200), tmp_path / "out").run()
    assert not (tmp_path / "out").exists()  # no empty output directory left behind


@pytest.mark.parametrize(
    "bad",
    [{"k": 200}, {"datasets": [{"name": "mine", "path": "no/such/file.hdf5"}]}],
    ids=["config", "data"],
)
def test_cli_sweep_refused_before_it_starts_leaves_no_output_dir(tmp_path, bad):
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({**RAW, **bad}))
    out = tmp_path / "out"
    assert main(["sweep", "-c", str(cfg), "--out", str(out), "--no-report"]) == 2
    assert not out.exists()


def test_torn_last_line_is_moved_aside_on_open(tmp_path, caplog):
    out = tmp_path / "out"
    Sweep(config([EXACT]), out).run()
    whole = (out / "results.jsonl").read_bytes()
    with open(out / "results.jsonl", "a") as f:
        f.write('{"key": "abc", "status": "o')  # a crash mid-write
    assert len(load_results(out)) == 1
    assert "not a complete record" in caplog.text
    ResultsFile(out).append({"key": "next", "status": "ok"})
    lines = (out / "results.jsonl").read_text().splitlines()
    assert (out / "results.jsonl").read_bytes().startswith(whole) and len(lines) == 2
    assert [json.loads(line)["key"] for line in lines][-1] == "next"  # every line is a whole record
    [aside] = out.glob("results.jsonl.torn-*")
    assert aside.read_text() == '{"key": "abc", "status": "o\n'
    caplog.clear()
    assert len(load_results(out)) == 2 and "not a complete record" not in caplog.text


def test_line_torn_by_an_older_harness_is_moved_aside_too(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    torn_in_the_middle = '{"key": "a", "status": "ok"}\n{"key": "b", "sta\n{"key": "c", "status": "ok"}\n'
    (out / "results.jsonl").write_text(torn_in_the_middle)
    ResultsFile(out)
    assert [r["key"] for r in read_records(out / "results.jsonl")] == ["a", "c"]
    assert [p.read_text() for p in out.glob("results.jsonl.torn-*")] == ['{"key": "b", "sta\n']


SECRETS = ["S3cr3tA", "S3cr3tB", "S3cr3tC", "S3cr3tD", "S3cr3tE"]


def test_cli_sweep_never_writes_secrets_to_results_report_or_stderr(tmp_path):
    """Every credential form, as a user would write it, through the CLI: stores that cannot connect record
    failures whose messages and options would carry the secrets."""
    dead = "127.0.0.1:1"
    stores = [
        {"store": "redis", "index": "flat", "options": {"url": f"redis://:S3cr3tA@{dead}/0"}},
        {"store": "pgvector", "index": "flat", "label": "pg-kv",
         "options": {"dsn": "host=127.0.0.1 port=1 user=u password=S3cr3tB dbname=x connect_timeout=2"}},
        {"store": "pgvector", "index": "flat", "label": "pg-url",
         "options": {"dsn": f"postgresql://u@{dead}/x?password=S3cr3tC&connect_timeout=2"}},
        {"store": "qdrant-server", "index": "hnsw", "options": {"url": f"http://{dead}", "api_key": "S3cr3tD"}},
        {"store": "elasticsearch", "index": "hnsw", "options": {"url": f"http://elastic:S3cr3tE@{dead}"}},
        EXACT,
    ]  # fmt: skip
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({**RAW, "stores": stores}))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "vdbbench", "sweep", "-c", str(cfg), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = load_results(out)
    # six entries; the server stores are not there, so each of their points (one per portable ef) failed
    assert len({r["label"] for r in records}) == 6 and [r["status"] for r in records].count("ok") == 1
    assert {r["label"] for r in records if r["status"] == "failed"} == {"redis", "pg-kv", "pg-url", "qdrant-server",
                                                                        "elasticsearch"}  # fmt: skip
    written = {"results.jsonl": (out / "results.jsonl").read_text(), "report.html": (out / "report.html").read_text(),
               "stderr": done.stderr, "stdout": done.stdout}  # fmt: skip
    leaks = [(secret, where) for secret in SECRETS for where, text in written.items() if secret in text]
    assert leaks == []
    assert "redis://:***@127.0.0.1:1/0" in written["results.jsonl"] and "password=***" in written["results.jsonl"]


def test_log_messages_and_error_texts_lose_their_secrets():
    import io
    import logging

    from vdbbench.core.provenance import RedactingFilter, redact_text

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("vdbbench.test_redaction")
    logger.addHandler(handler)
    try:
        logger.warning("connecting to %s", "host=h password='S3cr3t x' user=u")
        logger.warning("headers %s", {"Authorization": "Bearer S3cr3tT", "x-api-key": "S3cr3tK"})
    finally:
        logger.removeHandler(handler)
    assert "S3cr3t" not in stream.getvalue() and "user=u" in stream.getvalue()
    for text, expected in [
        ("redis://:pw@h:6379", "redis://:***@h:6379"),
        ("https://u:pw@h/x?token=pw&apikey=pw&n=1", "https://u:***@h/x?token=***&apikey=***&n=1"),
        ("Authorization: Bearer pw", "Authorization: ***"),
        ("PGPASSWORD=pw pwd=pw passwd=pw api_key=pw", "PGPASSWORD=*** pwd=*** passwd=*** api_key=***"),
        ("max_tokens=512 author=me passages=3", "max_tokens=512 author=me passages=3"),  # not secrets
    ]:
        assert redact_text(text) == expected


def test_secrets_in_options_never_reach_results(tmp_path, failing_store):
    store = {
        "store": "failing",
        "index": "flat",
        "options": {"password": "hunter2", "url": "http://user:hunter2@127.0.0.1:1"},
    }
    Sweep(config([store]), tmp_path / "out").run()
    assert "hunter2" not in (tmp_path / "out" / "results.jsonl").read_text()


def test_build_past_its_time_limit_is_stopped_and_recorded(tmp_path, failing_store):
    hung = {"store": "failing", "index": "flat", "options": {"hang_at": "build_index"}}
    counts = Sweep(config([hung, EXACT], limits={"build_s": 3}), tmp_path / "out").run()
    records = {r["store"]: r for r in load_results(tmp_path / "out")}
    assert records["failing"]["status"] == "failed" and records["failing"]["timed_out"] is True
    assert "exceeded its time limit of 3 s" in records["failing"]["error"]
    assert records["exact"]["status"] == "ok" and counts["ok"] == 1


def test_search_past_its_time_limit_is_stopped_and_recorded(tmp_path, failing_store):
    hung = {"store": "failing", "index": "flat", "options": {"hang_at": "search"}}
    Sweep(config([hung], limits={"search_s": 2}), tmp_path / "out").run()
    [record] = load_results(tmp_path / "out")
    assert record["timed_out"] is True and "search failed" in record["error"]
    assert record["insert_s"] >= 0  # the build itself was measured and kept


def test_a_process_stopped_for_its_time_limit_is_reported_as_timed_out_never_as_crashed(tmp_path):
    data = np.random.default_rng(0).random((50, 4), dtype=np.float32)
    worker = StoreWorker("storekit:FailingStore", tmp_path, {"hang_at": "search"})
    try:
        worker.call("create", BuildSpec("flat", "euclidean", 4, {}, 50))
        worker.call("insert", np.arange(50), data)
        worker.call("set_queries", data[:5])
        with pytest.raises(WorkerTimeout, match="timed_passes exceeded its time limit of 1 s"):
            worker.call("timed_passes", 10, 1, 0, timeout=1)
        with pytest.raises(WorkerTimeout, match="stopped earlier .timed_passes exceeded its time limit"):
            worker.call("effective_config", timeout=10)
    finally:
        worker.close()


def test_the_store_process_serves_only_the_calls_of_its_allow_list(tmp_path):
    from vdbbench.execution.worker import CALLS, RefusedCall, RemoteError

    assert {"timed_passes", "create", "drop"} <= CALLS and not {"_rows", "__class__", "store"} & CALLS
    worker = StoreWorker("storekit:FailingStore", tmp_path, {})
    try:
        for name in ("__class__", "_insert", "store", "build_index"):  # a dunder, a private host helper, anything
            with pytest.raises(RefusedCall, match=f"the store's process has no call '{name}': it serves only answers"):
                worker.call(name, timeout=10)
        worker._conn.send(("_rows", ("x.h5", "train", 0, 1)))  # past the parent's check: the process refuses too
        worker._pending = "_rows"
        with pytest.raises(RemoteError, match="RefusedCall: the store's process has no call '_rows'"):
            worker.receive(timeout=10)
        worker.call("create", BuildSpec("flat", "euclidean", 4, {}, 5), timeout=10)  # still serving its calls
        assert worker.call("effective_config", timeout=10)["family"] == "flat"
    finally:
        worker.close()


def test_finished_concurrency_levels_are_kept_when_a_later_level_fails(tmp_path, failing_store):
    store = {"store": "failing", "index": "flat", "options": {"crash_client": 2}}
    load_cfg = {"clients": [1, 2], "duration_s": 0.3, "min_recall": 0.5}
    Sweep(config([store], concurrency=load_cfg), tmp_path / "out").run()
    [load] = [r for r in load_results(tmp_path / "out") if r.get("workload") == "concurrent"]
    assert load["status"] == "failed" and load["error"].startswith("load failed at 2 clients: WorkerCrashed")
    assert [lv["clients"] for lv in load["concurrency"]["levels"]] == [1]
    assert load["concurrency"]["levels"][0]["queries"] > 0 and load["concurrency"]["failed_clients"] == 2


def test_crashed_store_process_is_recorded_and_next_build_starts_fresh(tmp_path, failing_store):
    crash = {"store": "failing", "index": "flat", "options": {"crash_at": "search"}}
    Sweep(config([crash, EXACT]), tmp_path / "out").run()
    records = {r["store"]: r for r in load_results(tmp_path / "out")}
    assert "process died during timed_passes (exit code 3)" in records["failing"]["error"]
    assert records["exact"]["recall"] == 1.0


def test_batch_queries_are_reported_separately(tmp_path):
    Sweep(config([EXACT], batch_size=16), tmp_path / "out").run()
    [record] = load_results(tmp_path / "out")
    assert record["batch"]["batch_size"] == 16 and record["batch"]["recall"] == 1.0
    assert record["batch"]["qps"] > 0 and len(record["batch"]["qps_runs"]) == 2


def test_concurrent_clients_merge_latencies_and_report_resources(tmp_path):
    hnsw = {**HNSW, "build": {"M": 16, "ef_construction": 64}, "search": {"ef": [10, 100]}}
    load_cfg = {"clients": [1, 2], "duration_s": 0.5, "min_recall": 0.99}
    Sweep(config([hnsw], concurrency=load_cfg), tmp_path / "out").run()
    records = load_results(tmp_path / "out")
    [load] = [r for r in records if r.get("workload") == "concurrent"]
    assert load["status"] == "ok" and load["search"] == {"ef": 100}  # ef=10 misses recall 0.99
    assert load["chosen_by"] == "fastest setting whose recall interval reaches 0.99"
    assert load["concurrency"]["min_recall"] == 0.99 and load["concurrency"]["reached"] is True
    levels = load["concurrency"]["levels"]
    assert [lv["clients"] for lv in levels] == [1, 2]
    for lv in levels:
        assert lv["queries"] > 0 and lv["qps"] > 0 and lv["p50_ms"] <= lv["p99_ms"]
        assert lv["client_bound"] is None  # the search runs inside the client for in-process stores
    point = next(r for r in records if r.get("workload") != "concurrent")
    res = point["resources"]
    assert res["rss_peak_build_bytes"] > 10_000_000 and res["rss_peak_query_bytes"] > 10_000_000
    assert res["rss_scope"] == "store process"
    assert point["client"]["harness_floor_us"] > 0 and point["client"]["cpu_share"] > 0
    # resume: neither the points nor the load measurement run again
    counts = Sweep(config([hnsw], concurrency=load_cfg), tmp_path / "out").run()
    assert counts["ok"] == 0 and counts["resumed"] == 3  # two points and the load measurement


def test_the_concurrency_finding_compares_only_stores_at_settings_reaching_the_same_recall():
    """A store whose best setting missed ``min_recall`` is loaded at a less accurate setting: its QPS is not comparable,
    however high, so the finding names the fastest among those that reached it and lists the other apart."""
    from vdbbench.charts.plots import build_series
    from vdbbench.workloads.concurrent import Concurrent

    def load(label, qps, reached):
        return {"workload": "concurrent", "status": "ok", "label": label, "store": "qdrant_server", "index": "hnsw",
                "build": {}, "search": {"ef": 10}, "chosen_recall": 0.99 if reached else 0.71,
                "concurrency": {"min_recall": 0.95, "reached": reached,
                                "levels": [{"clients": 4, "qps": qps, "p99_ms": 2.0}]}}  # fmt: skip

    records = [load("fast-but-inaccurate", 9000.0, False), load("accurate", 1200.0, True)]
    [sentence] = Concurrent().findings(records, build_series(records))
    assert "served the most of the settings reaching recall ≥ 0.95: 1,200 QPS" in sentence
    assert "fast-but-inaccurate" not in sentence.split(";")[0] and "9,000" not in sentence
    assert sentence.endswith(
        "; not compared: fast-but-inaccurate (qdrant_server) · hnsw (no setting reached that recall)."
    )


def test_store_without_shared_readers_says_so(tmp_path, failing_store):
    store = {"store": "failing", "index": "flat", "options": {}}
    Sweep(config([store], concurrency={"clients": [1, 2], "duration_s": 0.5}), tmp_path / "out").run()
    [load] = [r for r in load_results(tmp_path / "out") if r.get("workload") == "concurrent"]
    assert load["status"] == "skipped" and "cannot be searched from several processes" in load["error"]


def test_client_bound_only_judged_for_servers():
    from vdbbench.execution.concurrent import client_bound

    assert client_bound("server", 0.97) is True
    assert client_bound("server", 0.4) is False
    assert client_bound("embedded", 0.99) is None


@pytest.mark.parametrize(
    "store,message",
    [
        ({"store": "milvus", "index": "pq", "build": {"m": [4, 5]}, "options": {"uri": "http://127.0.0.1:1"}},
         "stores[0].build.pq_m (m): 5 does not divide the dimension 16; use one of [1, 2, 4, 8, 16]"),
        ({"store": "milvus", "index": "hnsw", "search": {"ef": [5, 64]}},
         "stores[0].search.ef: 5 is below k=10, which Milvus refuses; use ef >= 10"),
        ({"store": "pgvector", "index": "hnsw", "search": {"ef_search": 8}},
         "stores[0].search.ef (ef_search): 8 is below k=10, and pgvector returns at most ef_search rows"),
    ],
)  # fmt: skip
def test_engine_rules_fail_before_anything_starts(tmp_path, store, message):
    with pytest.raises(ConfigError) as e:
        Sweep(config([store]), tmp_path / "out").run()
    assert message in str(e.value)
    assert "(dataset 'syn', dim 16, k 10)" in str(e.value)
    assert not (tmp_path / "out").exists()  # no output dir, no engine: the Milvus URL is never dialled
