"""Which database to choose: per recall target, the databases ranked by QPS, baselines kept apart.

A database's entry at a target is the point recall-target tuning chose for it (``target_recall``
records, measured on the evaluation queries) where the sweep ran tuning; otherwise the fastest
explicitly measured setting that reaches the target. One rule says what reaches a target, for every
reader (ranking, summary sentence, the "QPS at recall ≥" table, the concurrency finding): the point's
95% recall interval reaches it (``reaches``: ``recall_ci95[1] >= target``; a record older than the
interval: its recall). A database whose interval lies wholly below a target is never listed under
it: it is shown as not reaching it, with the best it reached. Baselines (the stores that declare
themselves reference implementations, ``Store.baseline``) are ranked the same way but only as
reference rows: they are libraries, not candidates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vdbbench.charts.fields import is_number, qps_range
from vdbbench.stores.identity import record_identity

DEFAULT_TARGETS = (0.90, 0.95, 0.99)

# Memory of a point, most specific first: peak RSS while searching, after the build, then what the engine reports.
MEMORY_FIELDS = ("rss_peak_query_bytes", "rss_after_build_bytes", "memory_bytes", "used_memory")


def is_point(record: dict[str, Any], ranked: Callable[[dict[str, Any]], bool]) -> bool:
    """A successful single-client, unfiltered recall/QPS point, not a failure: ``ranked`` says whether the
    record's workload measures such points (the caller asks the workload registry, which sits above charts)."""
    return (ranked(record) and record.get("status") == "ok"
            and is_number(record.get("recall")) and is_number(record.get("qps")))  # fmt: skip


def memory_bytes(record: dict[str, Any]) -> float | None:
    resources = record.get("resources") or {}
    return next((resources[f] for f in MEMORY_FIELDS if is_number(resources.get(f))), None)


def host_price(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The host's price (``host: {price_per_hour, currency}``) from the records, else from the recorded config."""
    for r in records:
        host = r.get("host") if isinstance(r.get("host"), dict) else None
        if host is None:
            host = ((r.get("provenance") or {}).get("config") or {}).get("host")
        if isinstance(host, dict) and is_number(host.get("price_per_hour")) and host["price_per_hour"] > 0:
            return {"price_per_hour": float(host["price_per_hour"]), "currency": str(host.get("currency") or "")}
    return None


def cost_per_million(qps: float, host: dict[str, Any] | None) -> float | None:
    """What a million queries cost on the host at ``qps``: price_per_hour / (qps × 3600) × 1e6."""
    if host is None or not is_number(qps) or qps <= 0:
        return None
    return host["price_per_hour"] / (qps * 3600) * 1e6


def recall_targets(records: list[dict[str, Any]]) -> tuple[float, ...]:
    """Targets the sweep tuned for (records, or ``recall_targets`` in the recorded config), else 0.90/0.95/0.99."""
    found = {float(r["target_recall"]) for r in records if is_number(r.get("target_recall"))}
    for r in records:
        cfg = (r.get("provenance") or {}).get("config") or {}
        for entry in [cfg, *(cfg.get("stores") or [])]:
            targets = entry.get("recall_targets") if isinstance(entry, dict) else None
            found |= {float(t) for t in (targets or []) if is_number(t)}
    return tuple(sorted(found)) or DEFAULT_TARGETS


@dataclass
class Entry:
    """One database (or baseline) at one recall target: its chosen point, or its best recall when it missed."""

    label: str
    store: str
    engine: dict[str, Any]
    point: dict[str, Any] | None
    best_recall: float
    best: dict[str, Any]  # its most accurate point: what it reached where it missed the target
    tuned: bool  # chosen by recall-target tuning rather than picked from the sweep's explicit settings
    cost: float | None = None
    ratio: float | None = None  # QPS of the entry ranked above / this one's
    tied_with_above: bool = False

    @property
    def reached(self) -> bool:
        return self.point is not None

    @property
    def name(self) -> str:
        """The engine measured, with the config's label where the user named the entry."""
        return self.engine["label"] if self.label == self.store else f"{self.label} ({self.engine['label']})"


@dataclass
class Ranking:
    """The ranking at one recall target."""

    target: float
    databases: list[Entry] = field(default_factory=list)  # reached, fastest first
    missed: list[Entry] = field(default_factory=list)  # did not reach, best recall first
    baselines: list[Entry] = field(default_factory=list)  # reference rows, reached first

    @property
    def winner(self) -> Entry | None:
        return self.databases[0] if self.databases else None


def interval(record: dict[str, Any]) -> tuple[float, float]:
    """A point's 95% recall interval (``recall_ci95``); [recall, recall] for a record written before it existed."""
    ci = record.get("recall_ci95")
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(is_number(x) for x in ci):
        return float(ci[0]), float(ci[1])
    return float(record["recall"]), float(record["recall"])


def reaches(record: dict[str, Any], target: float) -> bool:
    """Whether a point counts at recall ≥ ``target``: its interval reaches it (the same rule as ``target_reached``)."""
    return interval(record)[1] >= target


def recall_text(record: dict[str, Any]) -> str:
    """Recall with its interval, ``0.9120 (0.8990–0.9250)``; the recall alone where no interval was recorded."""
    low, high = interval(record)
    return f"{record['recall']:.4f}" + (f" ({low:.4f}–{high:.4f})" if record.get("recall_ci95") else "")


def best_at(points: list[dict[str, Any]], bar: float) -> dict[str, Any] | None:
    """The fastest of ``points`` that reach ``bar`` (``reaches``); None when none does."""
    meeting = [r for r in points if reaches(r, bar)]
    return max(meeting, key=lambda r: r["qps"]) if meeting else None


def chosen(points: list[dict[str, Any]], target: float) -> tuple[dict[str, Any] | None, bool]:
    """The point one database (or store · family) is listed with at ``target``, and whether tuning chose it: its
    point tuned for this target where the sweep tuned, else its fastest explicit setting; None where it does not
    reach the target. The ranking, the summary sentence and the "QPS at recall ≥" table all ask this."""
    tuned = [r for r in points if is_number(r.get("target_recall")) and abs(r["target_recall"] - target) < 1e-9]
    if tuned:
        return best_at(tuned, target), True
    return best_at([r for r in points if r.get("target_recall") is None], target), False


def _entry(label: str, points: list[dict[str, Any]], target: float, host: dict[str, Any] | None) -> Entry:
    best, tuned = chosen(points, target)
    engine = record_identity(best or points[0])
    cost = cost_per_million(best["qps"], host) if best else None
    top = max(points, key=lambda r: (r["recall"], r["qps"]))
    return Entry(label, str(points[0].get("store")), engine, best, top["recall"], top, tuned, cost)


def rank(records: list[dict[str, Any]], targets: tuple[float, ...] | None = None, *,
         ranked: Callable[[dict[str, Any]], bool]) -> list[Ranking]:  # fmt: skip
    """Per target: databases ranked by QPS (ties within run-to-run spread marked), misses, and baselines, on the
    successful points of the records ``ranked`` accepts (``is_point``)."""
    points = [r for r in records if is_point(r, ranked)]
    targets = targets or recall_targets(records)
    host = host_price(records)
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in points:
        by_label[str(r.get("label"))].append(r)
    out = []
    for target in targets:
        ranking = Ranking(target)
        for label, pts in by_label.items():
            entry = _entry(label, pts, target, host)
            if entry.engine.get("baseline"):
                ranking.baselines.append(entry)
            elif entry.reached:
                ranking.databases.append(entry)
            else:
                ranking.missed.append(entry)
        ranking.databases.sort(key=lambda e: -e.point["qps"])
        ranking.missed.sort(key=lambda e: -e.best_recall)
        ranking.baselines.sort(key=lambda e: (not e.reached, -(e.point or {}).get("qps", 0)))
        for above, entry in zip(ranking.databases, ranking.databases[1:], strict=False):
            entry.ratio = above.point["qps"] / entry.point["qps"]
            a, b = qps_range(above.point), qps_range(entry.point)
            entry.tied_with_above = bool(a and b and b[1] >= a[0])
        out.append(ranking)
    return out
