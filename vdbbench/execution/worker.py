"""A store adapter hosted in a child process, so a hung or crashed engine can be stopped.

The parent sends one request at a time over a pipe and waits at most the step's time
limit; past it, the child and every process it started (servers included) are killed.
The timed query loop runs inside the child, so the pipe adds nothing to measured time.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from vdbbench.core.provenance import redact, redact_logs
from vdbbench.stores.servers import remove_server_files

log = logging.getLogger(__name__)


class WorkerTimeout(TimeoutError):
    """A step ran past its time limit; the worker was killed."""


class WorkerCrashed(RuntimeError):
    """The worker process died (engine crash, kill); its engine state is gone."""


class RemoteError(RuntimeError):
    """The adapter raised inside the worker; the message carries type, text and location."""


class RefusedCall(ValueError):
    """A call the store's process does not serve: it runs only the calls of its allow-list."""

    def __init__(self, method: str) -> None:
        super().__init__(f"the store's process has no call {method!r}: it serves only {', '.join(sorted(CALLS))}")


# The calls the store's process serves, and nothing else: this host's timed loops and query set, and the
# Store methods (vdbbench.stores.base) the harness uses.
HOST_CALLS = frozenset({
    "set_queries", "answers", "scored_answers", "timed_insert", "timed_insert_rows", "timed_build_index",
    "timed_passes", "timed_batch", "timed_churn", "timed_closed_loop", "timed_noop_passes",
})  # fmt: skip
STORE_CALLS = frozenset({
    "open", "create", "attach", "insert", "search", "search_scored", "set_texts", "set_search_params", "set_filter",
    "set_hybrid",
    "effective_config", "resources", "engine_version", "build_threads", "engine_identity", "client_handle",
    "compose_service", "owned_processes", "owned_paths", "drop", "close",
})  # fmt: skip
CALLS = HOST_CALLS | STORE_CALLS


def describe(e: BaseException) -> str:
    """``Type: message (at file:line)`` for the innermost frame, secrets removed."""

    last = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(e).__name__}: {redact(str(e))}{where}"


def load_adapter(target: str) -> type:
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


@dataclass(frozen=True)
class TimedPass:
    """One timed pass over the queries, one query at a time."""

    wall_s: float  # the whole pass
    latencies: np.ndarray  # seconds, one per query
    answers: list[Any]  # one id array per query


@dataclass(frozen=True)
class ClientLoop:
    """One client's closed loop of the concurrent workload."""

    latencies: np.ndarray  # seconds, one per query it completed
    cpu_s: float  # CPU seconds its process spent (to tell a busy client)
    elapsed_s: float  # from the common start until its last query finished


def timed_passes(store: Any, queries: list[np.ndarray], k: int, runs: int, warmup: int) -> list[TimedPass]:
    """Warm-up, then ``runs`` passes of one query at a time."""
    search = store.search
    for q in queries[: min(warmup, len(queries))]:
        search(q, k)
    clock = time.perf_counter
    passes = []
    for _ in range(runs):
        latencies = np.empty(len(queries))
        answers: list[Any] = [None] * len(queries)
        start = clock()
        for i, q in enumerate(queries):
            t0 = clock()
            answers[i] = search(q, k)
            latencies[i] = clock() - t0
        passes.append(TimedPass(clock() - start, latencies, answers))
    return passes


def timed_batch(store: Any, queries: np.ndarray, k: int, runs: int, batch_size: int) -> tuple[list[float], list]:
    """``runs`` passes through ``search_batch`` in batches: (wall seconds per pass, answers of the last)."""
    walls, answers = [], []
    for _ in range(runs):
        answers = []
        start = time.perf_counter()
        for b in range(0, len(queries), batch_size):
            answers.extend(store.search_batch(queries[b : b + batch_size], k))
        walls.append(time.perf_counter() - start)
    return walls, answers


class _Host:
    """The child side: holds the store and the queries, answers requests."""

    def __init__(self, target: str, workdir: str, options: dict[str, Any]) -> None:
        self.store = load_adapter(target)(Path(workdir), options)
        self.queries: list[np.ndarray] = []
        self._files: dict[str, Any] = {}  # dataset files opened for reading insert batches

    def set_queries(self, queries: np.ndarray) -> None:
        # vectors as contiguous rows; texts (bm25) and (vector, text) pairs (native hybrid) as they come
        self.queries = [np.ascontiguousarray(q) if isinstance(q, np.ndarray) else q for q in queries]

    def _insert(self, ids: np.ndarray, vectors: Any, attributes: dict[str, np.ndarray] | None) -> None:
        if attributes:
            self.store.insert(ids, vectors, attributes)
        else:  # a dataset without attributes: the plain two-argument call every adapter takes
            self.store.insert(ids, vectors)

    def timed_insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: dict | None = None) -> float:
        t0 = time.perf_counter()
        self._insert(ids, vectors, attributes)
        return time.perf_counter() - t0

    def _rows(self, path: str, key: str, start: int, stop: int) -> np.ndarray:
        import h5py

        if path not in self._files:
            self._files[path] = h5py.File(path, "r")
        return np.asarray(self._files[path][key][start:stop], dtype=np.float32)

    def timed_insert_rows(self, path: str, key: str, start: int, stop: int,
                          attributes: dict | None = None) -> tuple[float, int]:  # fmt: skip
        """Read rows ``start:stop`` of ``key`` from the dataset file here, then insert them (ids = row numbers).

        The parent sends only the file, the row range and the rows' attribute values, so it never holds
        the train set and no vectors cross the pipe. The read is not timed. Returns (insert seconds, rows read).
        """
        vectors = self._rows(path, key, start, stop)
        ids = np.arange(start, start + len(vectors), dtype=np.int64)
        return self.timed_insert(ids, vectors, attributes), len(vectors)

    def timed_churn(self, path: str, start: int, stop: int, delete_ids: np.ndarray, attributes: dict | None,
                    k: int, settle_s: float) -> dict[str, Any]:  # fmt: skip
        """One churn batch: insert train rows ``start:stop`` then delete ``delete_ids``, while this process
        searches the queries back to back: from a second thread where the adapter allows concurrent writes
        (``mode: concurrent``; every search, freshness probes included, stays on this thread), else right after
        the writes (``interleaved``). Freshness: from the insert's return until a search for the last inserted
        vector returns its id (None: not within ``settle_s``); probes are not counted as timed searches."""
        vectors = self._rows(path, "train", start, stop)
        ids = np.arange(start, stop, dtype=np.int64)
        store, clock, out = self.store, time.perf_counter, {}
        concurrent = bool(getattr(store, "concurrent_writes", False))

        def fresh() -> bool:
            """Probe once; True once the freshness is known (found, or past ``settle_s``)."""
            if "inserted_at" not in out or "freshness_s" in out:
                return "freshness_s" in out or not len(ids)
            p0 = clock()
            waited = p0 - out["inserted_at"]
            if int(ids[-1]) in np.asarray(store.search(vectors[-1], k)).tolist():
                out["freshness_s"] = clock() - out["inserted_at"]
            elif waited > settle_s:
                out["freshness_s"] = None
            out["probe_s"] = out.get("probe_s", 0.0) + clock() - p0
            return "freshness_s" in out

        def write() -> None:
            try:
                t0 = clock()
                if len(ids):
                    self._insert(ids, vectors, attributes)
                    out["inserted_at"] = clock()
                    out["insert_s"] = out["inserted_at"] - t0
                while not concurrent and not fresh():  # interleaved: freshness before the deletes, one thread
                    time.sleep(0.002)
                t2 = clock()
                if len(delete_ids):
                    store.delete(np.asarray(delete_ids, dtype=np.int64))
                out["delete_s"] = clock() - t2
            except BaseException as e:  # noqa: BLE001 - re-raised in the searching thread
                out["error"] = e

        latencies: list[float] = []
        search, queries = store.search, self.queries
        writer = threading.Thread(target=write, daemon=True)
        if concurrent:
            writer.start()
        else:
            write()
        t0, i = clock(), 0
        try:
            while (writer.is_alive() or i == 0) if concurrent else i < len(queries):
                q0 = clock()
                search(queries[i % len(queries)], k)
                latencies.append(clock() - q0)
                i += 1
                if concurrent:
                    fresh()
        finally:  # a failed search must not leave the writer working on a store that is about to be dropped
            if concurrent:
                writer.join()
        wall = clock() - t0 - (out.get("probe_s", 0.0) if concurrent else 0.0)  # probes are not timed searches
        if concurrent:
            while "error" not in out and not fresh():
                time.sleep(0.002)
        if "error" in out:
            raise out["error"]
        out.pop("inserted_at", None)
        out.pop("probe_s", None)
        return {**out, "mode": "concurrent" if concurrent else "interleaved", "latencies": np.asarray(latencies),
                "search_wall_s": wall, "inserted": len(ids), "deleted": len(delete_ids)}  # fmt: skip

    def timed_build_index(self) -> float:
        t0 = time.perf_counter()
        self.store.build_index()
        return time.perf_counter() - t0

    def timed_passes(self, k: int, runs: int, warmup: int) -> tuple[list[TimedPass], float]:
        """The passes, and the CPU seconds this process spent in them (a busy client limits QPS)."""
        cpu0 = time.process_time()
        passes = timed_passes(self.store, self.queries, k, runs, warmup)
        return passes, time.process_time() - cpu0

    def timed_batch(self, k: int, runs: int, batch_size: int) -> tuple[list[float], list]:
        return timed_batch(self.store, np.asarray(self.queries), k, runs, batch_size)

    def timed_closed_loop(self, k: int, start_at: float, duration_s: float) -> ClientLoop:
        """One closed-loop client: wait for the common start, then query back to back until the end.

        ``start_at`` is wall-clock time (``time.time()``), so clients on other hosts of a Ray
        cluster (clocks kept in step by NTP) start together; the loop itself runs on the
        monotonic clock.
        """
        search, queries, clock = self.store.search, self.queries, time.monotonic
        start_at = clock() + (start_at - time.time())
        time.sleep(max(0.0, start_at - clock()))
        end = start_at + duration_s
        latencies: list[float] = []
        cpu0, i = time.process_time(), 0
        while (t0 := clock()) < end:
            search(queries[i % len(queries)], k)
            latencies.append(clock() - t0)
            i += 1
        return ClientLoop(np.asarray(latencies), time.process_time() - cpu0, clock() - start_at)

    def answers(self, k: int) -> list[np.ndarray]:
        """Untimed answers to every query at the current search setting (recall-target tuning)."""
        return [self.store.search(q, k) for q in self.queries]

    def scored_answers(self, k: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Untimed (ids, scores) for every query: the engine's own scores through the store's ``search_scored``
        where it has one, else (ids, None) from ``search``."""
        scored = getattr(self.store, "search_scored", None)
        if scored is None:
            return [(self.store.search(q, k), None) for q in self.queries]
        return [scored(q, k) for q in self.queries]

    def timed_noop_passes(self, k: int, runs: int) -> list[float]:
        """Seconds per query of the timed loop around a search that does nothing: the harness's own floor."""
        answer = np.arange(k, dtype=np.int64)
        noop = type("Noop", (), {"search": staticmethod(lambda q, k: answer)})()
        return [p.wall_s / len(self.queries) for p in timed_passes(noop, self.queries, k, runs, 0)]

    def handle(self, method: str, args: tuple) -> Any:
        """Run a call of the allow-list: this host's (``HOST_CALLS``) or the store's (``STORE_CALLS``)."""
        if method in HOST_CALLS:
            return getattr(self, method)(*args)
        if method in STORE_CALLS:
            return getattr(self.store, method)(*args)
        raise RefusedCall(method)


def _serve(conn: Any, target: str, workdir: str, options: dict[str, Any]) -> None:

    redact_logs()  # a spawned process has no logging set up: its warnings reach stderr through this filter
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this process stops
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    host = None
    try:
        host = _Host(target, workdir, options)
        conn.send(("ok", None))
        while True:
            try:
                method, args = conn.recv()
            except EOFError:
                break  # the parent is gone
            if method == "exit":
                host.store.close()
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", host.handle(method, args)))
            except Exception as e:  # noqa: BLE001 - reported to the parent, which records it
                conn.send(("error", describe(e)))
    except Exception as e:  # noqa: BLE001
        conn.send(("error", describe(e)))
    finally:
        if host is not None:
            try:
                host.store.close()
            except Exception:  # noqa: BLE001
                pass


class StoreWorker:
    """Parent-side handle: ``call(method, *args, timeout=)`` runs a store method in the child."""

    def __init__(self, target: str, workdir: Path, options: dict[str, Any], start_timeout: float = 120) -> None:
        ctx = mp.get_context("spawn")  # a clean interpreter: no inherited threads, locks or engine state
        self._conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child_conn, target, str(workdir), options), daemon=True)
        # The child gets the parent's sys.path, from which vdbbench/__init__ removed the source root: put it back
        # for the start, so the child imports this same vdbbench and not another installed copy (its own import
        # removes the root again).
        root = str(Path(__file__).resolve().parents[2])
        sys.path.insert(0, root)
        try:
            self.process.start()
        finally:
            sys.path.remove(root)
        child_conn.close()
        self.owned_pids: set[int] = set()
        self.owned_paths: set[str] = set()
        self._stopped_for: str | None = None  # why the harness itself stopped the process (a time limit)
        self._pending = "start"
        self._wait("start", start_timeout)

    def _wait(self, method: str, timeout: float | None) -> Any:
        if self._stopped_for:  # the harness stopped it for a time limit: whatever follows is no crash
            raise WorkerTimeout(self._stopped_for)
        if not self._conn.poll(timeout):
            self._stopped_for = f"{method} exceeded its time limit of {timeout:.0f} s and was stopped"
            self.kill()
            raise WorkerTimeout(self._stopped_for)
        try:
            status, value = self._conn.recv()
        except (EOFError, ConnectionResetError):
            self.process.join(5)
            code = self.process.exitcode
            self.kill()
            raise WorkerCrashed(f"the store's process died during {method} (exit code {code})") from None
        if status == "error":
            raise RemoteError(value)
        return value

    def send(self, method: str, *args: Any) -> None:
        """Start ``method`` (a call of the allow-list, ``CALLS``) in the worker without waiting; ``receive``
        collects its answer."""
        if method not in CALLS and method != "exit":
            raise RefusedCall(method)
        if self._stopped_for:
            raise WorkerTimeout(f"not run: the store's process was stopped earlier ({self._stopped_for})")
        if not self.alive:
            raise WorkerCrashed(f"the store's process is not running (exit code {self.process.exitcode})")
        try:
            self._conn.send((method, args))
        except (BrokenPipeError, OSError):
            self.kill()
            raise WorkerCrashed(f"the store's process died before {method}") from None
        self._pending = method

    def receive(self, timeout: float | None = None) -> Any:
        method = self._pending
        value = self._wait(method, timeout)
        if method in ("open", "create", "attach"):
            self._track_owned()
        return value

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Run ``method`` in the worker and return its result; kill the worker past ``timeout`` s."""
        self.send(method, *args)
        return self.receive(timeout)

    def _track_owned(self) -> None:
        """Remember the server processes the adapter started (which may not be our children) and the
        files and shared memory they write, so ``kill`` can stop and remove them without the adapter."""
        for method, owned in (("owned_processes", self.owned_pids), ("owned_paths", self.owned_paths)):
            try:
                self._conn.send((method, ()))
                owned.update(self._wait(method, 30) or [])
            except (RemoteError, AttributeError):
                pass

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        """Kill the worker, its children and every server it reported; wait for them to go."""
        procs = []
        try:
            parent = psutil.Process(self.process.pid)
            procs = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
        for pid in self.owned_pids:
            try:
                owned = psutil.Process(pid)
                procs += [owned, *owned.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(procs, timeout=10)
        self.process.join(5)
        for path in sorted(self.owned_paths):  # what those servers wrote: data, secrets, shared memory
            remove_server_files(Path(path))

    def close(self, grace: float = 30) -> None:
        """Ask the adapter to close (stopping its servers); kill whatever is left after ``grace`` s."""
        if self.alive:
            try:
                self.call("exit", timeout=grace)
            except (WorkerTimeout, WorkerCrashed, RemoteError) as e:
                log.warning("store process did not close cleanly: %s", e)
            self.process.join(grace)
        self.kill()
        self._conn.close()
