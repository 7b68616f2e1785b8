"""What produced a result: code version, packages, host hardware, and the config (secrets removed)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

import vdbbench

PACKAGES = (
    "numpy", "h5py", "hnswlib", "faiss-cpu", "torch", "sentence-transformers", "pymilvus", "milvus-lite",
    "chromadb", "lancedb", "pylance", "pgserver", "psycopg", "pgvector", "redis", "qdrant-edge-py",
    "qdrant-client", "weaviate-client", "elasticsearch", "docker",
)  # fmt: skip

SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|auth", re.IGNORECASE)
REDACTED = "***"


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking key's value and URL password replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"(://[^:/@\s]+:)[^@/\s]+@", rf"\1{REDACTED}@", value)
    return value


def git_commit() -> dict[str, Any]:
    """Commit of the vdbbench source tree and whether it had uncommitted changes."""
    root = Path(vdbbench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
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
            capture_output=True, text=True, timeout=10,
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


def collect(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Provenance for one sweep: stored with each of its results."""
    return {
        "vdbbench": vdbbench.__version__,
        "git": git_commit(),
        "packages": package_versions(),
        "host": host_info(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": redact(config) if config is not None else None,
    }
