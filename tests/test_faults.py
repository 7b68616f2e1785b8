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

import numpy as np
import psutil
import pytest
import yaml

from vdbbench.config import parse_config
from vdbbench.core.results import load_results, read_records
from vdbbench.execution.worker import RemoteError, StoreWorker, WorkerCrashed
from vdbbench.stores import ADAPTERS, BuildSpec, StoreError, get_store_class
from vdbbench.stores.redis.server import redis_home
from vdbbench.stores.servers import sysv_segments
from vdbbench.sweep.runner import Sweep

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
    """Server processes working in, naming, or logging to a directory under ``path`` (redis rewrites its title;
    PostgreSQL run as root keeps its data in a private directory elsewhere, but logs into the workdir)."""
    found = []
    for p in psutil.process_iter(["cmdline", "cwd", "open_files"]):
        try:
            files = [f.path for f in p.info["open_files"] or []]
            if any(str(x).startswith(str(path)) for x in [p.info["cwd"] or "", *files]) or any(
                str(path) in a for a in p.info["cmdline"] or []
            ):
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


# the CLI, held after its second record until the signal comes: the interruption is certain, not a race
HELD_CLI = """
import sys, threading
from vdbbench import cli
from vdbbench.core import results
append = results.ResultsFile.append
def held(self, record):
    append(self, record)
    if len(self.records()) == 2:
        threading.Event().wait(600)
results.ResultsFile.append = held
sys.exit(cli.main(sys.argv[1:]))
"""


@needs_redis
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_interrupted_sweep_keeps_results_stops_servers_and_resumes(out_dir, sig, code):
    store = {**REDIS_HNSW, "search": {"EF_RUNTIME": [10, 20, 40, 80, 160, 320]}}
    config = out_dir / "sweep.yaml"
    config.write_text(yaml.safe_dump(sweep_config(store, runs=5)))
    out = out_dir / "out"
    args = ["sweep", "-c", str(config), "--out", str(out), "--no-report"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", HELD_CLI, *args], cwd=out_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while not (results.exists() and results.read_text().count("\n") >= 2):
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "no result was written in time"
        time.sleep(0.05)
    assert processes_under(out), "redis-server should be running mid-sweep"
    proc.send_signal(sig)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == code, output
    assert "interrupted" in output and "resume" in output
    lines = results.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["status"] == "ok" for line in lines)  # every line whole
    deadline = time.monotonic() + 30
    while processes_under(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_under(out), "a server outlived the interrupted sweep"

    rerun = subprocess.run([sys.executable, "-m", "vdbbench", *args], cwd=out_dir, env=env, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert "2 already measured (resumed)" in rerun.stderr.replace("\n", " ")
    latest = load_results(out)
    assert len(latest) == 12 and all(r["status"] == "ok" for r in latest)
    assert len(read_records(results)) == 12  # nothing measured twice


@pytest.mark.parametrize("store", [pytest.param("redis", marks=needs_redis), "pgvector"])
def test_embedded_server_sweep_prints_no_runtime_dir_warning(out_dir, store):
    config = out_dir / "sweep.yaml"
    config.write_text(yaml.safe_dump(sweep_config({"store": store, "index": "flat"}, runs=1)))
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}  # as on a plain server login
    done = subprocess.run(
        [sys.executable, "-m", "vdbbench", "sweep", "-c", str(config), "--out", str(out_dir / "out"), "--no-report"],
        cwd=out_dir, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 point(s) measured, 0 failed" in done.stderr.replace("\n", " ")
    assert "XDG_RUNTIME_DIR" not in done.stderr + done.stdout
    assert "Warning" not in done.stderr


def pg_segments() -> set[str]:
    return {str(p) for p in Path("/dev/shm").glob("PostgreSQL.*")}


def orphaned(segments: set[str]) -> set[str]:
    """Those of ``segments`` still there that no living server uses: mapped by none of its processes, nor
    listed in a control segment one maps (other tests' servers may be running)."""
    from vdbbench.stores.servers import _pg_dsm_handles

    mapped = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            mapped |= {line.split()[-1] for line in maps.read_text().splitlines() if "/dev/shm/PostgreSQL." in line}
        except OSError:
            continue
    in_use = mapped | {f"/dev/shm/PostgreSQL.{h}" for control in mapped for h in _pg_dsm_handles(Path(control))}
    return {s for s in segments if Path(s).exists() and s not in in_use}


SERVER_STORES = [pytest.param("redis", "redis-server", marks=needs_redis), ("pgvector", "postgres")]


@pytest.mark.parametrize("victim", ["store process", "server"])
@pytest.mark.parametrize("store,marker", SERVER_STORES, ids=["redis", "pgvector"])
def test_kill_mid_build_leaves_no_data_secret_or_shared_memory(out_dir, store, marker, victim, monkeypatch):
    """The parent removes what the servers wrote, whether or not the adapter's close() ever runs."""
    workdir = out_dir / "work"
    # The store's process makes PostgreSQL's private data directory under its TMPDIR: a folder of this
    # test's own, so another run's servers on the machine cannot be mistaken for a leftover.
    temp_root = Path(tempfile.mkdtemp(prefix="vdbbench-faults-"))
    temp_root.chmod(0o755)  # the server user (as root: "pgserver") must traverse it
    monkeypatch.setenv("TMPDIR", str(temp_root))
    shm_before, private_before = pg_segments(), private_pg_dirs(temp_root)
    rng = np.random.default_rng(1)
    data = rng.random((4000, 32), dtype=np.float32)
    family = "hnsw"
    build = {p.name: p.default for p in get_store_class(store).families[family].build}
    worker = StoreWorker(ADAPTERS[store], workdir, {})
    try:
        worker.call("open", timeout=120)
        worker.call("create", BuildSpec(family, "euclidean", 32, build, 4000), timeout=120)
        worker.call("timed_insert", np.arange(2000), data[:2000], timeout=120)
        server = psutil.Process(min(worker.owned_pids))
        assert marker in server.name()
        if store == "pgvector" and os.geteuid() == 0:  # the private directory is where this test looks
            assert len(private_pg_dirs(temp_root) - private_before) == 1
        victim_process = psutil.Process(worker.process.pid) if victim == "store process" else server
        victim_process.kill()
        psutil.wait_procs([victim_process], timeout=10)
        with pytest.raises((WorkerCrashed, RemoteError)):
            worker.call("timed_insert", np.arange(2000, 4000), data[2000:], timeout=120)
    finally:
        worker.close()
    left = [p.name for p in workdir.iterdir()] if workdir.exists() else []
    assert [name for name in left if not name.endswith(".log")] == []  # the server's log stays, for diagnosis
    assert private_pg_dirs(temp_root) - private_before == set()
    assert orphaned(pg_segments() - shm_before) == set()
    # a killed postmaster's System V segment (56 bytes, named in its postmaster.pid) is removed too
    assert [s for s in sysv_segments().values() if s["cpid"] == server.pid] == []
    assert not processes_under(workdir)
    shutil.rmtree(temp_root, ignore_errors=True)


def private_pg_dirs(root: Path) -> set[Path]:
    """Private data directories made for PostgreSQL under ``root`` when the harness runs as root."""
    return set(root.glob("vdbbench-pg-*"))


@pytest.mark.parametrize("store,marker", SERVER_STORES, ids=["redis", "pgvector"])
def test_client_of_a_dead_embedded_server_says_it_died(out_dir, store, marker):
    cls = get_store_class(store)
    owner = cls(out_dir / "work", {})
    owner.open()
    try:
        family = "flat"
        owner.create(BuildSpec(family, "euclidean", 8, {}, 10))
        owner.insert(np.arange(10), np.random.default_rng(0).random((10, 8), dtype=np.float32))
        owner.build_index()
        handle = owner.client_handle()
        pid = owner.server.pid
        os.kill(pid, signal.SIGKILL)
        psutil.wait_procs([p for p in psutil.process_iter() if p.pid == pid], timeout=10)
        client = cls(out_dir / "work", {})
        with pytest.raises(StoreError) as e:
            client.attach(handle)
        client.close()
    finally:
        owner.close()
    message = str(e.value)
    assert f"(pid {pid}) has died" in message and "end of its log" in message
    assert "VDBBENCH_" not in message and "option" not in message
