"""Concurrent clients: N clients, each with its own connection, in a closed loop (the concurrent workload).

All clients warm up first, then start at one instant and query back to back for a fixed
duration. Throughput is the sum of each client's completed queries over its own elapsed
time; latency percentiles come from every query's latency merged across clients, never
from per-client percentiles.

Clients are processes on this host (``engine: local``), or Ray actors (``engine: ray``) that
Ray places on the nodes of a cluster. Both host the same adapter host as the store's process
(``worker._Host``) and run the same timed loop (``_Host.timed_closed_loop``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.metrics import latency_summary
from vdbbench.execution.worker import ClientLoop, StoreWorker, _Host

CLIENT_BOUND_SHARE = 0.9  # a client process busy this share of the wall time limits QPS itself


class ConcurrentFailed(RuntimeError):
    """One client count failed; ``levels`` keeps the client counts measured before it."""

    def __init__(self, clients: int, cause: BaseException, levels: list[dict[str, Any]]) -> None:
        super().__init__(f"failed at {clients} clients: {cause}")
        self.clients, self.cause, self.levels = clients, cause, levels


def client_bound(kind: str, cpu_share: float) -> bool | None:
    """Whether the client, not the store, limits QPS; None where the store runs inside the client."""
    if kind != "server":
        return None  # embedded/in-process: the search itself runs in the client process
    return cpu_share >= CLIENT_BOUND_SHARE


class RayClient:
    """A Ray actor hosting ``worker._Host``, with the ``send``/``receive``/``call``/``close`` of a StoreWorker."""

    def __init__(self, target: str, workdir: Path, options: dict[str, Any]) -> None:
        import ray

        self._ray = ray
        # SPREAD: Ray places the clients over the cluster's nodes (one node: all here)
        self.actor = ray.remote(_Host).options(scheduling_strategy="SPREAD").remote(target, str(workdir), options)
        self._pending: Any = None

    def send(self, method: str, *args: Any) -> None:
        self._pending = self.actor.handle.remote(method, args)

    def receive(self, timeout: float | None = None) -> Any:
        return self._ray.get(self._pending, timeout=timeout)

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        self.send(method, *args)
        return self.receive(timeout)

    def close(self) -> None:
        try:
            self.call("close", timeout=30)
        finally:
            self._ray.kill(self.actor)


def connect_ray(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (auto: the running one; local: start one here) unless joined."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)


def start_client(
    target: str,
    workdir: Path,
    options: dict[str, Any],
    handle: dict[str, Any],
    queries: np.ndarray,
    search_params: dict[str, Any],
    engine: str = "local",
) -> StoreWorker | RayClient:
    """A new client with a fresh adapter attached to an index another process built, ready to search.

    ``engine``: local (a process on this host) or ray (an actor on the Ray cluster).
    """
    worker = RayClient(target, workdir, options) if engine == "ray" else StoreWorker(target, workdir, options)
    try:
        worker.call("attach", handle, timeout=300)
        worker.call("set_queries", queries, timeout=300)
        worker.call("set_search_params", search_params, timeout=60)
    except BaseException:
        worker.close()
        raise
    return worker


def merge_level(loops: list[ClientLoop], kind: str) -> dict[str, Any]:
    """One client count's figures from each client's closed loop.

    QPS adds each client's own rate; percentiles come from all latencies concatenated (a mean
    of per-client percentiles would be wrong for any skewed client).
    """
    latencies = np.concatenate([a.latencies for a in loops])
    cpu_share = sum(a.cpu_s for a in loops) / max(sum(a.elapsed_s for a in loops), 1e-9)
    return {
        "clients": len(loops),
        "qps": sum(len(a.latencies) / a.elapsed_s for a in loops if a.elapsed_s > 0),
        "queries": int(latencies.size),
        **latency_summary(latencies),
        "client_cpu_share": round(cpu_share, 3),
        "client_bound": client_bound(kind, cpu_share),
    }


def measure_concurrent(
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
    engine: str = "local",
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Throughput and merged latency percentiles for each client count in ``clients``.

    ``engine: ray`` runs the clients as Ray actors on the cluster at ``address``.
    """
    if engine == "ray":
        connect_ray(address)
    workers: list[StoreWorker | RayClient] = []
    try:
        for _ in range(max(clients)):
            workers.append(start_client(target, workdir, options, handle, queries, search_params, engine))
            workers[-1].call("timed_passes", k, 0, warmup, timeout=300)  # warm-up only: no timed pass
        levels = []
        for n in sorted(set(clients)):
            start_at = time.time() + (2.0 if engine == "ray" else 0.5)  # every client is waiting before it
            try:
                for w in workers[:n]:
                    w.send("timed_closed_loop", k, start_at, duration_s)
                loops = [w.receive(timeout=duration_s + 120) for w in workers[:n]]
            except Exception as e:
                raise ConcurrentFailed(n, e, levels) from e
            levels.append(merge_level(loops, kind))
        return levels
    finally:
        for w in workers:
            w.close()
