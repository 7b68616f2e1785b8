"""One measured point: the timed passes' scoring, the checks on what the engine served, and the point's identity."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.config import StoreConfig
from vdbbench.core.answers import save_answers
from vdbbench.core.metrics import latency_summary, recall_at_k, recall_ci95
from vdbbench.data.datasets import Dataset
from vdbbench.execution.worker import (
    RemoteError,
    StoreWorker,
    TimedPass,
    WorkerCrashed,
    WorkerTimeout,
    describe,
    timed_passes,
)
from vdbbench.stores import get_store_class
from vdbbench.stores.base import Store


def store_inputs(s: StoreConfig, ds: Dataset) -> tuple[Any, Any]:
    """What the store indexes and is asked: vectors, or for a text store (bm25) the passage and query texts."""
    if get_store_class(s.store).input == "text":
        return ds.text.passages, ds.text.queries
    return ds.train, ds.test


@dataclass
class PointResult:
    """The measured part of one record."""

    recall: float
    qps: float
    qps_runs: list[float]
    latency: dict[str, float]
    recall_detail: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)
    recall_ci95: list[float] | None = None  # [low, high] over the queries (vdbbench.core.metrics.recall_ci95)


def score_passes(passes: list[TimedPass], ds: Dataset, k: int, vectors: bool = True) -> PointResult:
    """Median pass by wall time → QPS and latency; recall of that pass's answers with its 95% interval over the
    queries (vector stores only: a text store's answers are not judged against exact vector neighbours)."""
    walls = [p.wall_s for p in passes]
    median = passes[int(np.argsort(walls)[len(walls) // 2])]
    if vectors:
        report = recall_at_k(median.answers, ds.test, ds.train, ds.neighbors, k, ds.metric, allowed=ds.allowed)
        recall, ci95 = report.recall, recall_ci95(report.per_query)
        detail = (report.duplicate_answers, report.short_answers, report.invalid_ids, report.filter_violations)
    else:
        recall, ci95, detail = None, None, (None, None, None, None)
    return PointResult(
        recall=recall,
        qps=len(median.answers) / median.wall_s,
        qps_runs=[len(median.answers) / w for w in walls],
        latency=latency_summary(median.latencies),
        recall_detail=dict(
            zip(("duplicate_answers", "short_answers", "invalid_ids", "filter_violations"), detail, strict=True)
        ),  # fmt: skip
        extra={"answers": median.answers, "latencies": median.latencies},
        recall_ci95=ci95,
    )


def measure_search(store: Store, ds: Dataset, queries: list[np.ndarray], k: int, runs: int, warmup: int) -> PointResult:
    """In-process measurement of one search setting (the runner does the same inside the store's process)."""
    return score_passes(timed_passes(store, queries, k, runs, warmup), ds, k)


def keep_answers(out_dir: Path, key: str, point: PointResult, queries: np.ndarray, k: int, worker: StoreWorker,
                 store: str, timeout: float | None) -> str:  # fmt: skip
    """Save the answers of the timed pass ``point`` was scored on (``queries``: the test rows asked); returns the
    record's ``answers_file``.

    The timed loop keeps ids only, so nothing is added to it. Where the store returns its engine's scores
    (``search_scored``), the queries are asked once more, untimed, and a query's scores are kept only when that
    repeat returned exactly the timed pass's ids (NaN otherwise); for the other stores the scores are NaN.
    ``point.extra["scored"]`` keeps the repeat's (ids, scores) for the run file of a text store.
    """
    answers, scores = point.extra["answers"], None
    if hasattr(get_store_class(store), "search_scored"):
        scored = worker.call("scored_answers", k, timeout=timeout)
        point.extra["scored"] = scored
        scores = [sc if np.array_equal(np.asarray(ids), np.asarray(a)) else None
                  for a, (ids, sc) in zip(answers, scored, strict=True)]  # fmt: skip
    return save_answers(out_dir, key, answers, queries, k, scores)


def answers_digest(answers: list) -> str:
    """One hash of a list of answers, to tell whether two search settings answered identically."""
    h = hashlib.sha1()
    for a in answers:
        h.update(np.asarray(a, dtype=np.int64).tobytes() + b"|")
    return h.hexdigest()


def param_sources(asked: dict[str, Any], effective: dict[str, Any] | None) -> dict[str, str]:
    """``engine`` for each parameter the engine itself reported, else ``sent`` (the harness only sent it)."""
    reported = (effective or {}).get("params") or {}
    return {name: "engine" if reported.get(name) is not None else "sent" for name in asked}


def search_ignored(observations: dict[str, dict[str, tuple[str, float]]]) -> bool:
    """True when, on some query set, two or more search settings gave identical answers, all with recall < 1."""
    for seen in observations.values():
        seen = {k: v for k, v in seen.items() if v[1] is not None}  # text stores have no recall
        if len(seen) >= 2 and len({d for d, _ in seen.values()}) == 1 and max(r for _, r in seen.values()) < 1.0:
            return True
    return False


def config_mismatches(family: str, asked: dict[str, Any], effective: dict[str, Any]) -> list[str]:
    """Differences between what was asked and what the engine reports it built or searches with.

    A parameter the engine does not report is not a mismatch: ``param_sources`` records it as sent.
    """
    out = []
    served = effective.get("family")
    if served and served != family:
        out.append(f"family: asked {family}, engine serves {served}")
    reported = effective.get("params") or {}
    for name, value in asked.items():
        if name in reported and reported[name] is not None and reported[name] != value:
            out.append(f"{name}: asked {value!r}, engine reports {reported[name]!r}")
    return out


@dataclass
class PointId:
    """One point a workload will record: its key, the dataset view it is scored on, its search setting, the
    workload recording it, and the other identifying fields a failure record needs too (target)."""

    key: str
    ds: Dataset
    search: dict[str, Any]
    workload: str
    fields: dict[str, Any] = field(default_factory=dict)


class Deadline:
    """Seconds left of an optional time limit, for each step of a build or search point."""

    def __init__(self, limit: float | None) -> None:
        self.end = None if limit is None else time.monotonic() + limit
        self.limit = limit

    def left(self) -> float | None:
        return None if self.end is None else max(0.001, self.end - time.monotonic())


def describe_error(e: BaseException) -> str:
    """What went wrong, for a failed record: the worker's own text, else ``Type: message (at file:line)``."""
    if isinstance(e, RemoteError | WorkerTimeout | WorkerCrashed):
        return str(e) if isinstance(e, RemoteError) else f"{type(e).__name__}: {e}"
    return describe(e)
