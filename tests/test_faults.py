"""Faults with real servers: a server killed mid-sweep, and a sweep interrupted by a signal.

Nothing measured is lost or duplicated, every server the harness started is stopped, and
the same command resumes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

from vdbbench.config import parse_config
from vdbbench.results import load_results, read_records
from vdbbench.runner import Sweep
from vdbbench.stores.redis import redis_home

needs_redis = pytest.mark.skipif(
    not (redis_home() / "bin" / "redis-server").exists(), reason="redis-stack not unpacked: run scripts/setup.sh"
)


@pytest.fixture
def out_dir(monkeypatch):
    """Outside pytest's tmp dir: PostgreSQL runs as another user and needs to traverse the path."""
    path = Path(tempfile.mkdtemp(prefix="vdbbench-test-faults-"))
    os.chmod(path, 0o755)
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(path / "data"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def processes_under(path: Path) -> list[psutil.Process]:
    """Server processes working in, or naming, a directory under ``path`` (redis rewrites its title)."""
    found = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if str(p.info["cwd"] or "").startswith(str(path)) or any(str(path) in a for a in p.info["cmdline"] or []):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return [p for p in found if p.pid != os.getpid()]


def sweep_config(store: dict, **over) -> dict:
    data = {
        "k": 10, "runs": 2, "warmup": 5,
        "datasets": [{"name": "syn", "synthetic": {"n": 3000, "dim": 16, "queries": 50, "seed": 5}}],
        "stores": [store],
    }  # fmt: skip
    data.update(over)
    return data


REDIS_HNSW = {"store": "redis", "index": "hnsw", "build": {"M": [8, 16], "EF_CONSTRUCTION": 100},
              "search": {"EF_RUNTIME": [10, 50, 100]}}  # fmt: skip
PG_HNSW = {"store": "pgvector", "index": "hnsw", "build": {"m": [8, 16], "ef_construction": 32},
           "search": {"ef_search": [10, 50, 100]}}  # fmt: skip


def kill_server_after_first_record(out: Path, marker: str):
    """An on_record hook that SIGKILLs the store's server once, right after the first point is saved."""
    state = {"killed": []}

    def hook(record: dict) -> None:
        if state["killed"]:
            return
        victims = [p for p in processes_under(out) if marker in p.name()]
        assert victims, f"no {marker} process found under {out}"
        for p in victims:
            p.kill()
        psutil.wait_procs(victims, timeout=10)
        state["killed"] = [p.pid for p in victims]

    return hook, state


@pytest.mark.parametrize(
    "store,marker",
    [pytest.param(REDIS_HNSW, "redis-server", marks=needs_redis), (PG_HNSW, "postgres")],
    ids=["redis", "pgvector"],
)
def test_server_killed_mid_sweep(out_dir, store, marker):
    out = out_dir / "out"
    hook, state = kill_server_after_first_record(out, marker)
    counts = Sweep(parse_config(sweep_config(store)), out, on_record=hook).run()
    assert state["killed"], "the server was never killed"
    records = read_records(out / "results.jsonl")
    assert len(records) == 6 and len({r["key"] for r in records}) == 6  # nothing lost, nothing twice
    first_build = [r for r in records if r["build"] == records[0]["build"]]
    second_build = [r for r in records if r["build"] != records[0]["build"]]
    assert first_build[0]["status"] == "ok" and first_build[0]["recall"] > 0.5
    assert [r["status"] for r in first_build[1:]] == ["failed", "failed"]
    assert all("search failed" in r["error"] or "not measured" in r["error"] for r in first_build[1:])
    # the next build ran on a freshly started server, and measured every point
    assert [r["status"] for r in second_build] == ["ok", "ok", "ok"]
    assert counts == {"ok": 4, "failed": 2, "skipped": 0, "resumed": 0}
    assert not processes_under(out), "a server outlived the sweep"

    # the same command again: only the two failed points are measured, and supersede the failures
    again = Sweep(parse_config(sweep_config(store)), out).run()
    assert again["ok"] == 2 and again["resumed"] == 4
    latest = load_results(out)
    assert len(latest) == 6 and all(r["status"] == "ok" for r in latest)
    assert not processes_under(out)


@needs_redis
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_sweep_keeps_results_stops_servers_and_resumes(out_dir, sig):
    store = {**REDIS_HNSW, "search": {"EF_RUNTIME": [10, 20, 40, 80, 160, 320]}}
    config = out_dir / "sweep.yaml"
    config.write_text(yaml.safe_dump(sweep_config(store, runs=5)))
    out = out_dir / "out"
    command = [sys.executable, "-m", "vdbbench", "sweep", "-c", str(config), "--out", str(out), "--no-report"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, cwd=out_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while not (results.exists() and results.read_text().count("\n") >= 1):
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "no result was written in time"
        time.sleep(0.05)
    assert processes_under(out), "redis-server should be running mid-sweep"
    proc.send_signal(sig)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 130, output
    assert "interrupted" in output and "resume" in output
    lines = results.read_text().splitlines()
    assert lines and all(json.loads(line)["status"] == "ok" for line in lines)  # every line whole
    done_before = len(lines)
    assert done_before < 12
    deadline = time.monotonic() + 30
    while processes_under(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_under(out), "a server outlived the interrupted sweep"

    rerun = subprocess.run(command, cwd=out_dir, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done_before} already measured (resumed)" in rerun.stderr.replace("\n", " ")
    latest = load_results(out)
    assert len(latest) == 12 and all(r["status"] == "ok" for r in latest)
    assert len(read_records(results)) == 12  # nothing measured twice
