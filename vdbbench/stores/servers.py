"""Server stores: the two kinds of store whose engine is a server, and the server processes the harness starts.

``LocalServerStore`` is a store whose server the harness runs itself when the config names none
(PostgreSQL, redis-server); ``RemoteStore`` one whose server runs elsewhere (a docker compose
service or a remote server the config names). Both find a named server the same way: the option
and environment variable of the store's ``compose_address``.

A ``LocalServer`` runs one engine binary on 127.0.0.1 and a free port, with its data under
a directory the caller gives, waits until the engine answers (polling, no fixed sleeps) and
stops it again. Nothing it starts may outlive the harness: every running server is stopped
by ``stop()`` (idempotent), at interpreter exit (``atexit``), on SIGTERM (turned into a
normal exit) and on Ctrl-C (``KeyboardInterrupt`` unwinds into the same ``atexit``).
Servers run in their own process group, so stopping also sweeps any worker processes a
killed server left behind, and, when started from the main thread, they get SIGTERM from
the kernel if the harness itself is killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import psutil

from vdbbench.core.resources import dir_bytes
from vdbbench.stores.base import ComposeAddress, Store, StoreError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_RUNNING: set[LocalServer] = set()  # started and not yet stopped; stopped at exit
_PR_SET_PDEATHSIG = 1
SHM = Path("/dev/shm")
PG_DSM_CONTROL_MAGIC = 0x9A503D32  # PostgreSQL's dynamic shared memory control segment (dsm.c)
PG_DSM_ITEM = struct.Struct("<I36x")  # dsm_control_item: handle, refcnt, first_page, npages, pm handle, pinned
PG_DSM_ITEMS_AT = 16  # the items follow magic, nitems, maxitems (uint32 each), aligned to 8 bytes


class ServerError(StoreError):
    """A local server failed to start, or died; the message carries the end of its log."""


def named_server(address: ComposeAddress, options: Mapping[str, Any]) -> str | None:
    """The server a config names for a store: the option ``address.option``, else its environment variable."""
    return options.get(address.option) or (os.environ.get(address.env) if address.env else None) or None


def without_credentials(url: str) -> str:
    """``url`` without ``user:password@``: a handle another process gets, which takes secrets from its own env."""
    return re.sub(r"//[^/@]*@", "//", url)


class RemoteStore(Store):
    """A store whose engine is a server the harness does not start: a docker compose service, or the server the
    option or environment variable of ``compose_address`` names. ``open()`` makes ``_client``; ``close()`` closes
    it. Subclasses declare ``compose_services`` and ``compose_address`` (its ``url`` is the default server)."""

    mode = "server"
    compose_address: ClassVar[ComposeAddress]
    _client: Any = None

    @classmethod
    def server_url(cls, options: Mapping[str, Any]) -> str:
        """The server's URL: the one the options or the environment name, else the compose service's."""
        return str(named_server(cls.compose_address, options) or cls.compose_address.url)

    @property
    def url(self) -> str:
        return self.server_url(self.options)

    def unreachable(self, where: str, error: BaseException) -> StoreError:
        """The error of a server that does not answer at ``where``, saying how to start one or name another."""
        product = self.fallback_identity(self.options)[0]
        return StoreError(
            f"{self.name}: no {product} answering at {where} ({type(error).__name__}); start it with "
            f"`python -m vdbbench services up {self.compose_services[-1]}` or set {self.compose_address.env}"
        )

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def compose_service(self) -> str:
        return self.name


class LocalServerStore(Store):
    """A store whose server the harness runs itself, a ``LocalServer`` on loopback with its data in the workdir,
    unless the option or environment variable of ``compose_address`` names a server (``address``).

    Subclasses make the server (``embedded_server``, not yet started), connect to it (``_connect``) and close
    their connections (``_close_clients``). A second process searching the same server keeps its connection
    details in ``_attached`` and the server's handle in ``_attached_server`` (to tell why it is gone if it died).
    """

    mode = "server"
    compose_address: ClassVar[ComposeAddress]
    server_log: ClassVar[str]  # the embedded server's log file, in the workdir
    server_name: ClassVar[str]  # what the embedded server is called in messages ("PostgreSQL", "redis-server")
    server_product: ClassVar[str]  # the product a named server must be, in messages ("PostgreSQL", "Redis")

    def __init__(self, workdir: Path, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(workdir, options)
        self.address: str | None = named_server(self.compose_address, self.options)
        self.server: LocalServer | None = None
        self._password: str | None = None  # the embedded server's, made for it at start
        self._attached: dict[str, Any] | None = None  # connection of a second process searching our index
        self._attached_server: dict[str, Any] | None = None  # the embedded server that process searches

    @abstractmethod
    def embedded_server(self) -> LocalServer:
        """A fresh embedded server, not started yet (its data, password and settings made for it)."""

    @abstractmethod
    def _connect(self) -> None:
        """Connect to the embedded server, the attached one or the named one; ``unreachable_error`` if none answers."""

    @abstractmethod
    def _close_clients(self) -> None:
        """Close this instance's connections (the server may be gone already)."""

    def _connection_broken(self) -> bool:
        """True when the connection must be made again although the server runs."""
        return False

    def open(self) -> None:
        if not self.address:
            self.server = self.embedded_server()
            self.server.start()
        self._connect()

    def _ensure_connected(self) -> None:
        """Restart an embedded server that died (e.g. killed) and reconnect; reconnect a broken connection."""
        if (self.server is not None and self.server.ensure_running()) or self._connection_broken():
            self._connect()

    def unreachable_error(self, error: object) -> StoreError:
        """Why the server cannot be reached: the embedded one died (with its log), or the named one does not answer."""
        if self.server is not None or self._attached_server is not None:
            where = f"the embedded {self.server_name}"
        else:
            where = f"{self.server_product} ({self.compose_address.env} / option {self.compose_address.option})"
        return StoreError(unreachable(self.server or self._attached_server, error, where))

    def close(self) -> None:
        self._close_clients()
        owned = self.owned_paths()
        if self.server is not None:
            self.server.stop()
            self.server = None
        for path in owned:  # everything the embedded server wrote
            remove_server_files(Path(path))
        if not self.address and self._attached is None:
            (self.workdir / self.server_log).unlink(missing_ok=True)

    def owned_processes(self) -> list[int]:
        return [self.server.pid] if self.server is not None and self.server.is_running() else []

    def server_resources(self) -> dict[str, Any]:
        """Memory and data bytes of the embedded server while it runs; {} otherwise."""
        if self.server is None or not self.server.is_running():
            return {}
        return {"memory_bytes": self.server.rss_bytes(), "data_bytes": self.server.data_bytes()}

    def compose_service(self) -> str | None:
        return self.name if self.address else None  # a named server: its containers' figures go with results


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def close_quietly(client: object | None) -> None:
    """Close a client connection whose server may already be gone (killed, stopped): nothing to report."""
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()


class LocalServer:
    """One engine server process on loopback, owned by this harness.

    ``command(port)`` returns the argv that starts the server in the foreground on ``port``;
    ``ready(server)`` returns True once it answers requests. ``stop_signal`` is the engine's
    orderly-shutdown signal. ``user`` runs it as another OS user (PostgreSQL refuses root).
    """

    def __init__(
        self,
        name: str,
        command: Callable[[int], Sequence[str]],
        data_dir: Path,
        ready: Callable[[LocalServer], bool],
        *,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.name = name
        self.command = command
        self.data_dir = Path(data_dir)
        self.ready = ready
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / f"{name}.log"
        self.env = dict(env) if env is not None else None
        self.user = user
        self.stop_signal = stop_signal
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port: int | None = None
        self.pid: int | None = None  # the current, or last, server process
        self.restarts = 0
        self._proc: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"LocalServer({self.name!r}, pid={self.pid}, port={self.port}, running={self.is_running()})"

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        """Start the server on a fresh free port and return once it answers. No-op if running."""
        if self.is_running():
            return
        _install_sigterm_exit()
        self.port = free_port()
        argv = [str(a) for a in self.command(self.port)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
                **as_user(self.user),
                start_new_session=True,  # own process group: Ctrl-C reaches us, not it; stop() sweeps the group
                preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
            )
        self.pid = self._proc.pid
        _RUNNING.add(self)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        delay = 0.005
        while True:
            code = self._proc.poll()
            if code is not None:
                self.stop()
                raise ServerError(f"{self.name} exited with code {code} while starting:\n{self.log_tail()}")
            try:
                if self.ready(self):
                    return
            except Exception as e:  # noqa: BLE001 - a probe error only means "not yet"
                last_error = e
            else:
                last_error = None
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"{self.name} did not answer within {self.start_timeout_s:.0f} s"
                    f"{f' ({last_error})' if last_error else ''}:\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def is_running(self) -> bool:
        """True while the server process is alive (False once it exited or was killed)."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the server (orderly first, then SIGKILL) and any process it left. Idempotent."""
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored signal %d; killing it", self.name, proc.pid, self.stop_signal)
                proc.kill()
                proc.wait()
        _kill_group(proc.pid)

    def restart(self) -> None:
        """Stop whatever is left of the server and start a fresh process (new port)."""
        self.stop()
        self.restarts += 1
        self.start()

    def ensure_running(self) -> bool:
        """Start the server again if it died (e.g. killed from outside); True when it had to."""
        if self.is_running():
            return False
        if self.pid is not None:
            log.warning("%s (pid %s) is not running any more; starting a fresh one", self.name, self.pid)
        self.restart()
        return True

    # -- measurements --------------------------------------------------------------
    def processes(self) -> list[psutil.Process]:
        """The server process and all its children, while running."""
        if not self.is_running():
            return []
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_bytes(self) -> int:
        """Resident memory of the server and its children.

        On Linux this is the proportional set size (PSS), so memory the processes share
        (PostgreSQL's shared buffers) is counted once, not once per process; plain RSS
        where PSS is not available.
        """
        total = 0
        for proc in self.processes():
            try:
                try:
                    total += proc.memory_full_info().pss
                except (AttributeError, psutil.AccessDenied):
                    total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def data_bytes(self) -> int:
        """On-disk size of the server's data directory."""
        return dir_bytes(self.data_dir)

    def listening_addresses(self) -> list[tuple[str, int]]:
        """(address, port) of every TCP socket the server's processes listen on."""
        found = []
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                found += [c.laddr[:2] for c in proc.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        return found

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def handle(self) -> dict[str, object]:
        """What a process attached to this server needs to tell, later, whether it died (and why)."""
        return {"name": self.name, "pid": self.pid, "log": str(self.log_path)}


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def unreachable(server: LocalServer | Mapping[str, object] | None, error: object, fallback: str) -> str:
    """Why a server cannot be reached: 'the embedded X died' with its log tail when its process is gone,
    else ``fallback`` (where the connection settings came from) and the client's ``error``."""
    if isinstance(server, LocalServer):
        server = server.handle()
    if server and server.get("pid") and not _alive(int(server["pid"])):
        return (f"the embedded {server['name']} (pid {server['pid']}) has died: {error}; "
                f"end of its log:\n{log_tail(Path(str(server['log'])), 10)}")  # fmt: skip
    return f"cannot reach {fallback}: {error}"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def shared_memory_of(pid: int) -> list[str]:
    """The POSIX shared memory segments (files under /dev/shm) process ``pid`` has mapped."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            found = {line.split(maxsplit=5)[5].strip() for line in maps if f" {SHM}/" in line}
    except OSError:
        return []
    return sorted(p for p in found if not p.endswith("(deleted)"))


def remove_server_files(path: Path) -> None:
    """Remove what a stopped or killed server left: a data directory, a file, or a shared memory segment.

    A PostgreSQL control segment lists the other segments its postmaster created (parallel
    workers' memory, statistics); those go with it, as PostgreSQL itself would clean them up
    on its next start in the same data directory.
    """
    path = Path(path)
    if path.parent == SHM and path.name.startswith("PostgreSQL."):
        for handle in _pg_dsm_handles(path):
            (SHM / f"PostgreSQL.{handle}").unlink(missing_ok=True)
    if path.is_dir() and not path.is_symlink():
        for pid_file in [path / "postmaster.pid", *path.glob("*/postmaster.pid")]:
            _remove_sysv_segment(pid_file)
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


SYSV_SHM = Path("/proc/sysvipc/shm")
IPC_RMID = 0


def sysv_segments() -> dict[int, dict[str, int]]:
    """The System V shared memory segments of this host: shmid → key, size, creator pid, attached processes."""
    try:
        rows = SYSV_SHM.read_text().splitlines()[1:]
    except OSError:
        return {}
    out = {}
    for row in rows:
        fields = row.split()
        if len(fields) >= 7:
            key, shmid, _perms, size, cpid, _lpid, nattch = (int(x) for x in fields[:7])
            out[shmid] = {"key": key, "size": size, "cpid": cpid, "nattch": nattch}
    return out


def _remove_sysv_segment(pid_file: Path) -> None:
    """Remove the System V segment a PostgreSQL postmaster names in its ``postmaster.pid`` (last line: key and
    id), when it still exists with that key and no process is attached: a killed postmaster leaves it behind
    (PostgreSQL would reuse it on its next start in that data directory, which never comes here)."""
    try:
        last = pid_file.read_text().splitlines()[6].split()
        key, shmid = int(last[0]), int(last[1])
    except (OSError, IndexError, ValueError):
        return
    segment = sysv_segments().get(shmid)
    if segment is None or segment["key"] != key or segment["nattch"] != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.shmctl(shmid, IPC_RMID, None) != 0:
        log.debug("removing System V segment %s failed: errno %s", shmid, ctypes.get_errno())


def _pg_dsm_handles(control: Path) -> list[int]:
    """Handles listed in a PostgreSQL DSM control segment; [] when it is not one (or is gone)."""
    try:
        data = control.read_bytes()
    except OSError:
        return []
    if len(data) < PG_DSM_ITEMS_AT:
        return []
    magic, nitems, _ = struct.unpack_from("<III", data)
    if magic != PG_DSM_CONTROL_MAGIC or PG_DSM_ITEMS_AT + nitems * PG_DSM_ITEM.size > len(data):
        return []
    return [PG_DSM_ITEM.unpack_from(data, PG_DSM_ITEMS_AT + i * PG_DSM_ITEM.size)[0] for i in range(nitems)]


def as_user(user: str | None) -> dict[str, object]:
    """Popen arguments that run a child as ``user`` with that user's own group and no others (not root's)."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def stop_all() -> None:
    """Stop every server this process started and has not stopped yet (runs at exit)."""
    for server in list(_RUNNING):
        try:
            server.stop()
        except Exception as e:  # noqa: BLE001 - keep stopping the others
            log.warning("stopping %s failed: %s", server.name, e)


atexit.register(stop_all)


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a stopped server's process group (workers of a killed server)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return  # the group is already empty
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        alive = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
        if not alive:
            return
        time.sleep(0.02)


try:  # resolved here, not in the forked child
    _prctl = ctypes.CDLL(None).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGTERM to the server if the harness dies without cleaning up (SIGKILL)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_sigterm_installed = False


def _install_sigterm_exit() -> None:
    """Turn SIGTERM into SystemExit so finally-blocks and atexit stop the servers (main thread only)."""
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_signal)
    _sigterm_installed = True


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
