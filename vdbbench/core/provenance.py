"""What produced a result: code version, packages, host hardware, and the config (secrets removed)."""

from __future__ import annotations

import logging
import os
import platform
import re
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

import vdbbench

# the harness's own packages (data, ground truth, embedding, services); each store names its engine's
# packages itself (Store.packages), and the caller passes those in
PACKAGES = ("numpy", "h5py", "faiss-cpu", "torch", "sentence-transformers", "docker")

# a name that holds a secret: the word may close a longer name (redis_password, PGPASSWORD, x-api-key),
# but not start a longer word (max_tokens, author, passages)
SECRET_NAME = (
    r"(?:passwords?|passwd|pwd|secrets?|token|api[_-]?key|apikey|access[_-]?key|authorization|auth"
    r"|credentials?)(?![a-z])"
)
SECRET_KEY = re.compile(SECRET_NAME, re.IGNORECASE)
# scheme://user:PASSWORD@host, also with an empty user (redis://:PASSWORD@host)
URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]+@")
# NAME=value, NAME: value, "NAME": "value" (libpq DSNs, URL queries, headers, dict reprs in messages)
SECRET_VALUE = re.compile(
    rf"(?P<name>[\w.-]*{SECRET_NAME}[\"']?\s*[=:]\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|(?:bearer|basic|token)\s+[^\s'\",;&]+|[^\s'\"&;,)}\]]+)",
    re.IGNORECASE,
)
REDACTED = "***"


def _mask_value(match: re.Match) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match['name']}{quote}{REDACTED}{quote}"


def redact_text(text: str) -> str:
    """``text`` with URL passwords and the values of secret-named keys replaced by ``***``."""
    return SECRET_VALUE.sub(_mask_value, URL_PASSWORD.sub(rf"\1{REDACTED}@", text))


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret removed: the one redaction used for results, logs,
    reports and error messages. Secret-named mapping keys lose their value whole; strings lose URL
    passwords (``user:pw@``, ``:pw@``), and ``password=``/``token:``/``Authorization: Bearer`` values
    in DSNs, URL queries, headers and messages."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFilter(logging.Filter):
    """Removes secrets from every log message that passes the handler it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True


def redact_logs() -> None:
    """Attach the redacting filter to every root handler (configuring one if there is none), so
    messages of the vdbbench loggers, and of the engine libraries they call, lose their secrets."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def git_commit() -> dict[str, Any]:
    """Commit of the vdbbench source tree and whether it had uncommitted changes."""
    root = Path(vdbbench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


def package_versions(packages: Iterable[str] = ()) -> dict[str, str]:
    """Installed versions of the harness's packages and of ``packages`` (those not installed are left out)."""
    out = {}
    for name in dict.fromkeys((*PACKAGES, *packages)):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info() -> list[str]:
    """GPU names from nvidia-smi; empty when there is none."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


@lru_cache(maxsize=1)
def host_info() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": gpu_info(),
    }


def collect(config: dict[str, Any] | None = None, packages: Iterable[str] = ()) -> dict[str, Any]:
    """Provenance for one sweep: stored with each of its results; ``packages``: the stores' engine packages."""
    return {
        "vdbbench": vdbbench.__version__,
        "git": git_commit(),
        "packages": package_versions(packages),
        "host": host_info(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": redact(config) if config is not None else None,
    }
