"""Servers the harness starts itself: loopback only, stopped on close/exit/SIGTERM, restarted after a kill."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from storekit import build_and_search, files_left, open_store

from vdbbench.stores.servers import LocalServer, ServerError, free_port

# -- LocalServer on its own, with a tiny Python TCP server standing in for an engine -------

ECHO_SERVER = (
    "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(600)"
)


def _answers(server: LocalServer) -> bool:
    with socket.create_connection(("127.0.0.1", server.port), timeout=1):
        return True


def _toy_server(tmp_path, code: str = ECHO_SERVER) -> LocalServer:
    return LocalServer("toy", lambda port: [sys.executable, "-c", code, port], tmp_path / "data", _answers)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until_not_running(server: LocalServer, timeout_s: float = 10) -> None:
    """A killed multi-threaded server is reapable only once all its threads exited: poll, do not assume."""
    deadline = time.monotonic() + timeout_s
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_local_server_starts_answers_and_stops(tmp_path):
    server = _toy_server(tmp_path)
    server.start()
    try:
        assert server.is_running()
        assert server.listening_addresses() == [("127.0.0.1", server.port)]
        assert server.rss_bytes() > 1_000_000
        pid = server.pid
    finally:
        server.stop()
    server.stop()  # idempotent
    assert not server.is_running()
    assert _gone(pid)


def test_local_server_that_exits_while_starting_reports_its_log(tmp_path):
    server = _toy_server(tmp_path, "import sys; print('bad option --nope'); sys.exit(3)")
    with pytest.raises(ServerError, match=r"exited with code 3[\s\S]*bad option --nope"):
        server.start()
    assert not server.is_running()


def test_killed_local_server_is_detected_and_restarted(tmp_path):
    server = _toy_server(tmp_path)
    server.start()
    try:
        old_pid = server.pid
        os.kill(old_pid, signal.SIGKILL)
        _wait_until_not_running(server)
        assert not server.is_running()
        assert server.ensure_running() is True
        assert server.is_running() and server.pid != old_pid and server.restarts == 1
        assert server.ensure_running() is False
    finally:
        server.stop()


HARNESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from vdbbench.stores.servers import LocalServer
    import socket
    def ready(s):
        with socket.create_connection(("127.0.0.1", s.port), timeout=1):
            return True
    code = {code!r}
    server = LocalServer("toy", lambda port: [sys.executable, "-c", code, port], Path(sys.argv[1]), ready)
    server.start()
    print(server.pid, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_server_does_not_outlive_the_harness(tmp_path, how):
    """SIGTERM and Ctrl-C unwind into atexit; SIGKILL leaves it to the kernel's parent-death signal."""
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS.format(code=ECHO_SERVER), str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        server_pid = int(harness.stdout.readline())
        assert psutil.pid_exists(server_pid)
        harness.send_signal(how)
        harness.wait(20)
        deadline = time.monotonic() + 10
        while not _gone(server_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(server_pid), f"server {server_pid} still running after the harness got signal {how}"
    finally:
        harness.kill()


def test_free_port_is_bindable_on_loopback():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


# -- the engines' servers ----------------------------------------------------------------

ENGINES = {"pgvector": "postgres", "redis": "redis-server"}


@pytest.fixture
def server_workdir():
    """A workdir outside pytest's basetemp for PostgreSQL: run as root, the adapter starts it as user
    "pgserver", which needs search permission on the workdir's parents, and every new pytest session
    (other test runs on the same machine) strips group/other bits from /tmp/pytest-of-<user>."""
    path = Path(tempfile.mkdtemp(prefix="vdbbench-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("store_name", sorted(ENGINES))
def test_engine_server_loopback_only_restarted_after_kill_and_stopped(tmp_path, server_workdir, store_name):
    if store_name == "pgvector":
        tmp_path = server_workdir
    if store_name == "redis":
        from vdbbench.stores.redis.server import redis_home

        try:
            redis_home()
        except Exception as e:  # noqa: BLE001
            pytest.skip(str(e))
    store = open_store(store_name, tmp_path)
    pids: set[int] = set()
    try:
        server = store.server
        assert server is not None, "embedded mode should start its own server"
        procs = server.processes()
        pids |= {p.pid for p in procs}
        assert ENGINES[store_name] in procs[0].name()
        listening = [
            c.laddr[:2]
            for p in procs
            for c in p.net_connections("inet")
            if c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM
        ]
        assert listening == [("127.0.0.1", server.port)], f"listens on {listening}, expected only loopback"
        data = Path(store.owned_paths()[0])  # the workdir's, or (PostgreSQL as root) a private one made for it
        assert data == server.data_dir or data in server.data_dir.parents

        family = "flat"
        first = build_and_search(store, family, "euclidean")
        assert first.recall == 1.0
        assert first.resources["memory_bytes"] > 0

        old_pid = server.pid
        pids |= {p.pid for p in server.processes()}
        os.kill(old_pid, signal.SIGKILL)  # what the fault tests do mid-sweep
        _wait_until_not_running(server)
        assert not server.is_running()

        second = build_and_search(store, family, "euclidean")  # the next build starts a fresh server
        assert second.recall == 1.0
        assert server.is_running() and server.pid != old_pid and server.restarts == 1
        pids |= {p.pid for p in server.processes()}
        store.drop()
    finally:
        store.close()
    store.close()  # idempotent
    left = [pid for pid in pids if not _gone(pid)]
    assert left == [], f"processes left running: {left}"
    assert files_left(tmp_path) == [] and not data.exists()
