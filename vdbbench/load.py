"""Concurrent load: N client processes, each with its own connection, in a closed loop.

All clients warm up first, then start at one instant and query back to back for a fixed
duration. Throughput is the sum of each client's completed queries over its own elapsed
time; latency percentiles come from every query's latency merged across clients, never
from per-client percentiles.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.metrics import latency_summary
from vdbbench.worker import StoreWorker

CLIENT_BOUND_SHARE = 0.9  # a client process busy this share of the wall time limits QPS itself


class LoadFailed(RuntimeError):
    """One client count failed; ``levels`` keeps the client counts measured before it."""

    def __init__(self, clients: int, cause: BaseException, levels: list[dict[str, Any]]) -> None:
        super().__init__(f"failed at {clients} clients: {cause}")
        self.clients, self.cause, self.levels = clients, cause, levels


def client_bound(kind: str, cpu_share: float) -> bool | None:
    """Whether the client, not the store, limits QPS; None where the store runs inside the client."""
    if kind != "server":
        return None  # embedded/in-process: the search itself runs in the client process
    return cpu_share >= CLIENT_BOUND_SHARE


def start_client(
    target: str, workdir: Path, options: dict[str, Any], handle: dict[str, Any], queries: np.ndarray,
    search_params: dict[str, Any],
) -> StoreWorker:
    """A new process with a fresh adapter attached to an index another process built, ready to search."""
    worker = StoreWorker(target, workdir, options)
    try:
        worker.call("attach", handle, timeout=300)
        worker.call("set_queries", queries)
        worker.call("set_search_params", search_params, timeout=60)
    except BaseException:
        worker.close()
        raise
    return worker


def measure_concurrency(
    target: str,
    workdir: Path,
    options: dict[str, Any],
    handle: dict[str, Any],
    queries: np.ndarray,
    search_params: dict[str, Any],
    k: int,
    clients: list[int],
    duration_s: float,
    warmup: int,
    kind: str,
) -> list[dict[str, Any]]:
    """Throughput and merged latency percentiles for each client count in ``clients``."""
    workers: list[StoreWorker] = []
    try:
        for _ in range(max(clients)):
            workers.append(start_client(target, workdir, options, handle, queries, search_params))
            workers[-1].call("timed_passes", k, 0, warmup, timeout=300)  # warm-up only: no timed pass
        levels = []
        for n in sorted(set(clients)):
            start_at = time.monotonic() + 0.5  # every client is waiting before it
            try:
                for w in workers[:n]:
                    w.send("timed_closed_loop", k, start_at, duration_s)
                answers = [w.receive(timeout=duration_s + 120) for w in workers[:n]]
            except Exception as e:
                raise LoadFailed(n, e, levels) from e
            latencies = np.concatenate([a[0] for a in answers])
            qps = sum(len(a[0]) / a[2] for a in answers if a[2] > 0)
            cpu_share = sum(a[1] for a in answers) / sum(a[2] for a in answers)
            levels.append({
                "clients": n,
                "qps": qps,
                "queries": int(latencies.size),
                **latency_summary(latencies),
                "client_cpu_share": round(cpu_share, 3),
                "client_bound": client_bound(kind, cpu_share),
            })  # fmt: skip
        return levels
    finally:
        for w in workers:
            w.close()
