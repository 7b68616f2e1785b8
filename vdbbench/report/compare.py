"""Compare two results directories point by point: what got better, what got worse, what is noise.

Points are matched by dataset, store label, index family, build and search parameters and k.
A QPS change counts only when the two runs' measured ranges (min–max of ``qps_runs``) do not
overlap; a recall change counts only when it is at least one hit over the whole query set,
that is 1 / (queries × k). Everything smaller is marked as noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from vdbbench.charts.fields import params_text, qps_range
from vdbbench.core.results import load_results
from vdbbench.core.schema import workload_name
from vdbbench.workloads import is_ranked, workload_of

BETTER, WORSE, NOISE, UNKNOWN = "better", "worse", "noise", "n/a"


def match_key(record: dict[str, Any]) -> str:
    """Identity of a point across two sweeps (the dataset's name, not its file path, is matched): workload and
    filter included, so a filtered point is compared with the same filter's point only; the rest is the
    workload's to say (``Workload.match_fields``: the search setting, unless it says otherwise)."""
    ident = [record.get("dataset"), record.get("label"), record.get("index"), record.get("build"), record.get("k"),
             workload_name(record), record.get("filter"), record.get("attributes") or {}]  # fmt: skip
    ident += workload_of(record).match_fields(record)
    return json.dumps(ident, sort_keys=True, default=str, ensure_ascii=False)


def recall_resolution(record: dict[str, Any]) -> float | None:
    """Smallest recall step the point's query set can show: one hit out of queries × k."""
    queries = (record.get("dataset_info") or {}).get("test")
    k = record.get("k")
    if not queries or not k:
        return None
    return 1.0 / (int(queries) * int(k))


@dataclass
class Change:
    """One point measured in both sweeps."""

    old: dict[str, Any]
    new: dict[str, Any]
    recall_delta: float | None = None
    recall_verdict: str = UNKNOWN
    qps_ratio: float | None = None  # new / old
    qps_verdict: str = UNKNOWN
    notes: list[str] = field(default_factory=list)
    correctness: list[str] = field(default_factory=list)  # wrong answers that were not there before

    @property
    def significant(self) -> bool:
        return self.recall_verdict in (BETTER, WORSE) or self.qps_verdict in (BETTER, WORSE)

    @property
    def regression(self) -> bool:
        return (self.recall_verdict == WORSE or self.qps_verdict == WORSE or self.status_change == "ok → failed"
                or bool(self.correctness))  # fmt: skip

    @property
    def status_change(self) -> str | None:
        a, b = self.old.get("status"), self.new.get("status")
        return None if a == b else f"{a} → {b}"


@dataclass
class Comparison:
    changes: list[Change]
    only_old: list[dict[str, Any]]
    only_new: list[dict[str, Any]]

    def counts(self) -> dict[str, int]:
        return {
            "matched": len(self.changes),
            "significant": sum(c.significant for c in self.changes),
            "regressions": sum(c.regression for c in self.changes),
            "only_old": len(self.only_old),
            "only_new": len(self.only_new),
        }


# Counts of wrong answers a point records, whatever its workload: more of any is a correctness regression.
WRONG_ANSWERS = ("deleted_returned", "filter_violations", "short_answers", "duplicate_answers", "invalid_ids")
# Recalls that must not drop by more than one hit of the point's query set.
RECALLS = ("recall", "recall_live")


def correctness_regressions(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What the new point answers wrongly that the old did not: more wrong answers of any kind, or a recall
    lower by more than one hit (queries × k); timing noise does not enter, so any of these fails a CI gate."""
    out = [f"{name} {old[name]} → {new[name]}" for name in WRONG_ANSWERS
           if isinstance(old.get(name), int) and isinstance(new.get(name), int) and new[name] > old[name]]  # fmt: skip
    step = max([r for r in (recall_resolution(old), recall_resolution(new)) if r] or [0.0])
    for name in RECALLS:
        a, b = old.get(name), new.get(name)
        if isinstance(a, int | float) and isinstance(b, int | float) and a - b > step * (1 + 1e-6) + 1e-12:
            out.append(f"{name} {a:.4f} → {b:.4f}")
    return out


def compare_points(old: dict[str, Any], new: dict[str, Any]) -> Change:
    """Recall and QPS change of one point, each judged against its noise; wrong answers added are regressions."""
    change = Change(old, new)
    if old.get("status") != "ok" or new.get("status") != "ok":
        change.notes.append(f"status {old.get('status')} → {new.get('status')}")
        return change
    change.correctness = correctness_regressions(old, new)
    change.notes += [f"correctness regression: {c}" for c in change.correctness]
    notes = workload_of(old).compare_notes(old, new)
    if notes is not None:  # a workload judged by its own measures, not recall and QPS verdicts
        change.notes.extend(notes)
        return change
    if old.get("recall") is None or new.get("recall") is None:  # bm25 / hybrid points: judged by labels only
        change.notes.append("no recall against exact neighbours (text or hybrid retrieval)")
        return change
    delta = float(new["recall"]) - float(old["recall"])
    change.recall_delta = delta
    resolutions = [r for r in (recall_resolution(old), recall_resolution(new)) if r]
    step = max(resolutions) if resolutions else 0.0
    if abs(delta) < step * (1 - 1e-6) or abs(delta) < 1e-12:
        change.recall_verdict = NOISE
    else:
        change.recall_verdict = BETTER if delta > 0 else WORSE
    old_range, new_range = qps_range(old), qps_range(new)
    if old_range and new_range and old_range[0] > 0:
        change.qps_ratio = float(new["qps"]) / float(old["qps"])
        if new_range[0] <= old_range[1] and old_range[0] <= new_range[1]:
            change.qps_verdict = NOISE
        else:
            change.qps_verdict = BETTER if new_range[0] > old_range[1] else WORSE
        if len(old.get("qps_runs") or []) < 2 or len(new.get("qps_runs") or []) < 2:
            change.notes.append("one timed run: no spread measured, QPS verdict is unreliable (use runs ≥ 3)")
    old_sha = (old.get("dataset_info") or {}).get("sha256")
    new_sha = (new.get("dataset_info") or {}).get("sha256")
    if old_sha and new_sha and old_sha != new_sha:
        change.notes.append("dataset file differs (sha256)")
    if old.get("engine_version") != new.get("engine_version"):
        change.notes.append(f"engine {old.get('engine_version')} → {new.get('engine_version')}")
    return change


def compare_records(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> Comparison:
    """Match two sets of records; points present on one side only are listed, not dropped."""
    old_by = {match_key(r): r for r in old}
    new_by = {match_key(r): r for r in new}
    changes = [compare_points(old_by[k], new_by[k]) for k in new_by if k in old_by]
    return Comparison(
        changes=changes,
        only_old=[r for k, r in old_by.items() if k not in new_by],
        only_new=[r for k, r in new_by.items() if k not in old_by],
    )


def compare_dirs(old_dir: str | Path, new_dir: str | Path) -> Comparison:
    return compare_records(load_results(old_dir), load_results(new_dir))


def _names(r: dict[str, Any]) -> list[str]:
    """The identifying cells of a point, escaped so names like ``[red]`` print literally; the search cell names
    the workload and filter where the point is not a ranked one (``Workload.ranked``: plain k-NN)."""
    cells = [r.get("dataset"), r.get("label"), r.get("index")]
    search = params_text(r.get("search"))
    if not is_ranked(r):
        search += f" · {workload_name(r)}"
        search += f" {json.dumps(r['filter'], ensure_ascii=False)}" if r.get("filter") else ""
    return [escape(str(c)) for c in cells] + [escape(params_text(r.get("build"))), escape(search)]


def _verdict_style(verdict: str) -> str:
    return {BETTER: "green", WORSE: "red", NOISE: "dim"}.get(verdict, "")


def comparison_table(comp: Comparison) -> Table:
    """Console table of matched points: old → new recall and QPS with their verdicts."""
    table = Table(title="vdbbench compare (old → new)", show_lines=False)
    for col in ("dataset", "store", "index", "build", "search", "recall old → new", "Δ recall",
                "QPS old → new", "Δ QPS", "notes"):  # fmt: skip
        table.add_column(col, justify="right" if col.startswith(("Δ", "recall", "QPS")) else "left")
    for c in comp.changes:
        r = c.new
        if c.recall_delta is None:
            recall = qps = d_recall = d_qps = ""
        else:
            recall = f"{c.old['recall']:.4f} → {c.new['recall']:.4f}"
            rs = _verdict_style(c.recall_verdict)
            d_recall = f"[{rs}]{c.recall_delta:+.4f} {c.recall_verdict}[/]" if rs else f"{c.recall_delta:+.4f}"
            qps = f"{c.old['qps']:,.0f} → {c.new['qps']:,.0f}"
            if c.qps_ratio is None:
                d_qps = ""
            else:
                qs = _verdict_style(c.qps_verdict)
                text = f"{(c.qps_ratio - 1) * 100:+.1f}% {c.qps_verdict}"
                d_qps = f"[{qs}]{text}[/]" if qs else text
        table.add_row(
            *_names(r), recall, d_recall, qps, d_qps, escape("; ".join(c.notes)),
        )  # fmt: skip
    return table


def one_sided_table(records: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("dataset", "store", "index", "build", "search", "status"):
        table.add_column(col)
    for r in records:
        table.add_row(*_names(r), escape(str(r.get("status"))))
    return table
