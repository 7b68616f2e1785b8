"""``vdbbench rescore OUT``: every point's figures recomputed from its saved answers and the dataset's truth.

A sweep saves the answers each point was scored on (``answers/<key>.npz``, vdbbench.core.answers) and, on
labelled data, a TREC run file. This recomputes, with the harness's own scoring functions, every figure a
record derives from them: tie-aware recall (and ``recall_ci95`` where the record has it) against the exact
(filtered) neighbours, the answer counts, churn's ``recall_live`` at each checkpoint on the rows live then,
and nDCG@10 & co. from the run file against the dataset's labels; then reports per field the largest
difference from the records. The datasets are the files the records name (``dataset_info.path``), checked
against the sha256 the sweep recorded, with the filters of the sweep's config (provenance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.charts.fields import params_text
from vdbbench.config import DatasetConfig
from vdbbench.core.answers import Answers, load_answers
from vdbbench.core.filters import parse_filter
from vdbbench.core.metrics import RecallReport, recall_at_k, recall_ci95
from vdbbench.core.results import load_results
from vdbbench.data.datasets import Dataset, DatasetError
from vdbbench.execution import quality
from vdbbench.sweep.plan import resolve_dataset
from vdbbench.workloads.churn import churn_plan
from vdbbench.workloads.knn import query_subset

TOLERANCE = 1e-9
COUNTS = ("duplicate_answers", "short_answers", "filter_violations")


class RescoreError(ValueError):
    """The results directory cannot be rescored; the message names what is missing and what to do."""


@dataclass
class Check:
    """One figure of one point: as recorded, and as recomputed."""

    field: str
    key: str
    point: str  # words naming the point for a reader
    recorded: Any
    rescored: Any

    @property
    def difference(self) -> float:
        """Largest absolute difference (over both ends of an interval); inf where one side is missing."""
        a, b = np.atleast_1d(np.asarray(self.recorded, dtype=float)), np.atleast_1d(np.asarray(self.rescored, float))
        if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
            return float("inf")
        return float(np.abs(a - b).max()) if a.size else 0.0


@dataclass
class Rescored:
    """Every check of one results directory."""

    checks: list[Check] = field(default_factory=list)

    def largest(self) -> dict[str, tuple[int, Check]]:
        """Per field: how many points were checked, and the check with the largest difference."""
        out: dict[str, tuple[int, Check]] = {}
        for c in self.checks:
            n, worst = out.get(c.field, (0, c))
            out[c.field] = (n + 1, c if c.difference > worst.difference else worst)
        return out

    def over(self, tolerance: float = TOLERANCE) -> list[Check]:
        return [c for c in self.checks if c.difference > tolerance]


def point_words(r: dict[str, Any]) -> str:
    """``dataset label index build search [filter]`` of a record."""
    flt = f" filter {r['filter']}" if r.get("filter") else ""
    return (f"{r.get('dataset')} {r.get('label')} {r.get('index')} {params_text(r.get('build'), '')} "
            f"{params_text(r.get('search'), '')}{flt}").replace("  ", " ").strip()  # fmt: skip


def rescore(out_dir: Path) -> Rescored:
    """Recompute every point of ``out_dir`` from its saved answers; RescoreError when something is missing."""
    out_dir = Path(out_dir)
    try:
        records = load_results(out_dir)
    except FileNotFoundError as e:
        raise RescoreError(str(e)) from None
    points = [r for r in records if r.get("status") == "ok" and (saved(r) or r.get("run_file"))]
    if not points:
        raise RescoreError(f"{out_dir / 'results.jsonl'}: no measured point names an answers_file or run_file; "
                           "sweep into a new directory with this vdbbench to keep answers")  # fmt: skip
    missing = sorted({f for r in points for f in saved(r) + [r.get("run_file")] if f and not (out_dir / f).exists()})
    if missing:
        raise RescoreError(f"{out_dir}: answer file(s) missing: {', '.join(missing[:5])}"
                           + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                           + "; restore them, or sweep again into a new directory")  # fmt: skip
    data = Datasets(points)
    result = Rescored()
    for r in points:
        ds = data.get(r)
        for check in point_checks(r, ds, out_dir, data.view):
            result.checks.append(check)
    return result


def saved(r: dict[str, Any]) -> list[str]:
    """The answers files a record names: its own, and each churn checkpoint's."""
    files = [cp.get("answers_file") for cp in (r.get("churn") or {}).get("checkpoints", [])]
    return [f for f in [r.get("answers_file"), *files] if f]


class Datasets:
    """The datasets the records were measured on, loaded once each from the files they name."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self._loaded: dict[str, Dataset] = {}
        self._views: dict[tuple[str, str], Dataset] = {}
        self._entries: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for r in records:
            self._entries.setdefault(r["dataset"], (r.get("dataset_info") or {}, r.get("provenance") or {}))
        gone = [f"{name} ({info.get('path')})" for name, (info, _) in self._entries.items()
                if not info.get("path") or not Path(info["path"]).exists()]  # fmt: skip
        if gone:
            raise RescoreError(f"dataset file(s) missing: {', '.join(gone)}; rescore reads the files the sweep "
                               "measured on (dataset_info.path of its records): restore them, or prepare them again "
                               "by running the sweep's config")  # fmt: skip

    def get(self, r: dict[str, Any]) -> Dataset:
        name = r["dataset"]
        if name not in self._loaded:
            info, provenance = self._entries[name]
            entry = next((d for d in ((provenance.get("config") or {}).get("datasets") or [])
                          if isinstance(d, dict) and d.get("name") == name), {})  # fmt: skip
            dc = DatasetConfig(name=name, path=info["path"], test_size=info.get("test"), filters=entry.get("filters"))
            try:
                ds = resolve_dataset(dc)
            except DatasetError as e:
                raise RescoreError(f"dataset {name}: {e}") from None
            if info.get("sha256") and ds.sha256 != info["sha256"]:
                raise RescoreError(f"dataset {name}: {info['path']} changed since the sweep (sha256 "
                                   f"{ds.sha256[:12]}…, the records say {info['sha256'][:12]}…); restore the file "
                                   "the sweep measured on")  # fmt: skip
            self._loaded[name] = ds
        return self._loaded[name]

    def view(self, ds: Dataset, expression: dict[str, Any] | None) -> Dataset:
        """``ds`` under a record's filter (its exact filtered neighbours, cached as the sweep cached them)."""
        if expression is None:
            return ds
        key = (ds.name, repr(expression))
        if key not in self._views:
            self._views[key] = ds.filtered(parse_filter(expression))
        return self._views[key]


def point_checks(r: dict[str, Any], ds: Dataset, out_dir: Path,
                 view: Callable[[Dataset, dict | None], Dataset]) -> list[Check]:  # fmt: skip
    """Every figure of record ``r`` recomputed: recall and its interval and counts, churn checkpoints, quality."""
    checks: list[Check] = []
    key, words, k = r["key"], point_words(r), r["k"]

    def add(name: str, recorded: Any, rescored: Any) -> None:
        checks.append(Check(name, key, words, recorded, rescored))

    if r.get("answers_file") and r.get("recall") is not None:
        answers = load_answers(out_dir / r["answers_file"])
        report = recall_of(answers, view(ds, r.get("filter")), k)
        add("recall", r["recall"], report.recall)
        if r.get("recall_ci95") is not None:
            add("recall_ci95", r["recall_ci95"], recall_ci95(report.per_query))
        for name in COUNTS:
            if r.get(name) is not None:
                add(name, r[name], getattr(report, name))
    churn = r.get("churn") or {}
    if r.get("workload") == "churn" and churn.get("checkpoints"):
        lives = live_rows(ds.train.shape[0], churn)
        for cp in churn["checkpoints"]:
            if cp.get("answers_file"):
                answers = load_answers(out_dir / cp["answers_file"])
                report = recall_of(answers, ds.restricted(lives[cp["batch"] - 1]), k)
                add("churn.checkpoints.recall_live", cp["recall_live"], report.recall)
                if cp is churn["checkpoints"][-1] and r.get("recall_live") is not None:
                    add("recall_live", r["recall_live"], report.recall)
    if r.get("run_file") and ds.text is not None and ds.text.labelled:
        scored = quality.evaluate(quality.judged(ds), quality.read_run(out_dir / r["run_file"]), k)
        for name, value in scored.items():
            if r.get(name) is not None:
                add(name, r[name], round(value, 6))  # records keep 6 decimals (quality.score_point)
    return checks


def recall_of(answers: Answers, view: Dataset, k: int) -> RecallReport:
    """Tie-aware recall of saved answers against ``view``'s exact neighbours, on the queries they answered."""
    rows = answers.queries
    sub = view if np.array_equal(rows, np.arange(view.test.shape[0])) else query_subset(view, rows)
    return recall_at_k(answers.lists(), sub.test, sub.train, sub.neighbors, k, sub.metric, allowed=sub.allowed)


def live_rows(n: int, churn: dict[str, Any]) -> list[np.ndarray]:
    """The live-row mask after each batch of a churn record, replayed from its spec (vdbbench.workloads.churn)."""
    built, ranges, deletes = churn_plan(n, churn["insert"], churn["delete"], churn["batches"], churn["seed"])
    live = np.zeros(n, dtype=bool)
    live[:built] = True
    out = []
    for (lo, hi), doomed in zip(ranges, deletes, strict=True):
        live[lo:hi] = True
        live[doomed] = False
        out.append(live.copy())
    return out
