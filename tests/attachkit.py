"""Searching an index from a second process, as the runner's concurrent clients do.

The builder stays in the test process; the client is a fresh adapter instance in its own
process (``StoreWorker``) that only calls ``attach(handle)`` and searches.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.execution.concurrent import start_client
from vdbbench.stores import ADAPTERS


def search_from_second_process(
    name: str,
    workdir: Path,
    options: dict[str, Any],
    handle: dict[str, Any],
    queries: np.ndarray,
    search: dict[str, Any],
    k: int = 10,
) -> list[np.ndarray]:
    """Attach to ``handle`` in a new process, search every query once, close it; return its answers."""
    worker = start_client(ADAPTERS[name], workdir, options, pickle.loads(pickle.dumps(handle)), queries, search)
    try:
        passes, _ = worker.call("timed_passes", k, 1, 0, timeout=300)
    finally:
        worker.close()
    assert not worker.alive
    return passes[0].answers


def assert_same_answers(attached: list[np.ndarray], builder: list[np.ndarray]) -> None:
    assert len(attached) == len(builder)
    for i, (a, b) in enumerate(zip(attached, builder, strict=True)):
        assert np.array_equal(np.asarray(a), np.asarray(b)), f"query {i}: attached {a} != builder {b}"


def assert_no_secret(handle: dict[str, Any], *secrets: str) -> None:
    """The handle travels to client processes: it must carry no credential, however it is printed."""
    text = repr(handle)
    for secret in secrets:
        assert secret not in text, f"the handle carries a secret: {text}"
