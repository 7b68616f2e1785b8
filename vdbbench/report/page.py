"""The self-contained HTML report: one file with inline plots, styles and script, nothing fetched.

It is meant to be attached to an email and opened offline by someone who did not run the
sweep, so it starts with plain-sentence findings, then the headline table, then a section
per dataset (recall/QPS plot with Pareto frontiers, build times, sizes, latencies, every
point's asked vs reported configuration), then failures and provenance. All text from
configs and engines goes through jinja2 autoescaping.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from vdbbench.charts.fields import (
    all_params,
    compact_json,
    fmt_bytes,
    fmt_num,
    fmt_resource,
    is_number,
    params_text,
    qps_range,
    short_params,
)
from vdbbench.charts.plots import (
    Series,
    build_label,
    build_series,
    databases,
    new_figure,
    plot_style,
    png_data_uri,
    qps_tick,
    series_key,
)
from vdbbench.charts.ranking import Ranking, chosen, host_price, memory_bytes, rank, recall_targets, recall_text
from vdbbench.core.results import load_results
from vdbbench.report.compare import Comparison, compare_records
from vdbbench.report.export import write_points
from vdbbench.report.quality import quality_sections
from vdbbench.report.quality_summary import quality_findings
from vdbbench.stores import ADAPTERS, get_store_class
from vdbbench.stores.identity import record_identity, stand_in_warning
from vdbbench.workloads import is_ranked, workload_of, workloads

# Share of a store's points at or above the highest target beyond which recall no longer separates stores.
SATURATED_SHARE = 0.5
# Further measurement columns per table, so the per-point tables never outgrow the page.
EXTRA_COLUMNS = 7

# Fields the report shows in their own place; any other numeric field is shown as an extra column.
KNOWN_FIELDS = frozenset({
    "key", "time", "dataset", "store", "label", "index", "metric", "build", "search", "k", "runs", "options",
    "status", "error", "recall", "qps", "qps_runs", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "duplicate_answers",
    "short_answers", "invalid_ids", "insert_s", "index_s", "build_s", "effective", "resources", "engine_version",
    "config_mismatch", "dataset_info", "provenance", "engine", "host", "settings", "settings_note", "param_source",
    "schema", "workload", "filter", "selectivity", "filter_violations", "attributes",
})  # fmt: skip


def is_apart(record: dict[str, Any]) -> bool:
    """A record its workload counts apart from the points (``Workload.counted_apart``: it holds several
    measurements, as a concurrent-client record does), not a recall/QPS point."""
    return workload_of(record).counted_apart is not None


def is_ok(record: dict[str, Any]) -> bool:
    return record.get("status") == "ok" and is_number(record.get("recall")) and is_number(record.get("qps"))


def pareto_frontier(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points no other point beats on both recall and QPS, ordered by recall."""
    ordered = sorted(points, key=lambda r: (-r["recall"], -r["qps"]))
    frontier, best_qps = [], -math.inf
    for r in ordered:
        if r["qps"] > best_qps:
            frontier.append(r)
            best_qps = r["qps"]
    return frontier[::-1]


def setting_text(record: dict[str, Any]) -> str:
    """Search parameters first (what moves recall at a target), then the build's: cut text still shows the knob."""
    search, build = params_text(record.get("search")), params_text(record.get("build"))
    parts = [search if record.get("search") else "", f"build {build}" if record.get("build") else ""]
    return " · ".join(x for x in parts if x) or "defaults"


def recall_qps_plot(points: list[dict[str, Any]], series: dict[tuple[str, str], Series], k: Any,
                    targets: tuple[float, ...]) -> str:  # fmt: skip
    """Recall@k vs QPS (log) per series: frontier joined by a line, dominated points faint."""
    with plot_style():
        return _recall_qps_plot(points, series, k, targets)


def _recall_qps_plot(points: list[dict[str, Any]], series: dict[tuple[str, str], Series], k: Any,
                     targets: tuple[float, ...]) -> str:  # fmt: skip
    from matplotlib.ticker import FuncFormatter

    fig = new_figure(9, 5.4 + 0.16 * len({series_key(r) for r in points}))
    ax = fig.add_subplot()
    by_series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in points:
        by_series[series_key(r)].append(r)
    for key, pts in by_series.items():
        s = series[key]
        front = pareto_frontier(pts)
        front_ids = {id(r) for r in front}
        dominated = [r for r in pts if id(r) not in front_ids]
        ax.plot([r["recall"] for r in front], [r["qps"] for r in front], color=s.color, marker=s.marker,
                markersize=6, linewidth=1.8, linestyle="--" if s.baseline else "-", label=s.plot_name())  # fmt: skip
        if dominated:
            ax.scatter([r["recall"] for r in dominated], [r["qps"] for r in dominated], color=s.color,
                       marker=s.marker, s=30, alpha=0.3, linewidths=0)  # fmt: skip
    for bar in targets:
        ax.axvline(bar, color="#999999", linestyle=":", linewidth=0.9)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(qps_tick))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: qps_tick(v, _) if str(v)[0] in "25" else ""))
    low = min(r["recall"] for r in points)
    ax.set_xlim(max(0.0, min(low, 0.9) - 0.02), 1.01)
    ax.set_xlabel(f"recall@{k}")
    ax.set_ylabel("queries per second (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)  # below: never hides a point
    return png_data_uri(fig)


def build_time_plot(builds: list[dict[str, Any]]) -> str | None:
    """Horizontal stacked bars, one per build: insert time then index time (until searchable)."""
    timed = [b for b in builds if is_number(b.get("insert_s")) or is_number(b.get("index_s"))]
    if not timed:
        return None
    with plot_style():
        return _build_time_plot(timed)


def _build_time_plot(timed: list[dict[str, Any]]) -> str:
    from matplotlib.patches import Patch

    fig = new_figure(9, 1.2 + 0.32 * len(timed))
    ax = fig.add_subplot()
    labels = [build_label(b["series"], b["build"]) for b in timed]  # tag + parameters; names in the HTML legend
    insert = [b.get("insert_s") or 0.0 for b in timed]
    index = [b.get("index_s") or 0.0 for b in timed]
    colors = [b["series"].color for b in timed]
    y = list(range(len(timed)))[::-1]
    ax.barh(y, insert, color=colors)
    ax.barh(y, index, left=insert, color=colors, alpha=0.45, hatch="//")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("seconds")
    legend = [Patch(color="#777777", label="insert"),
              Patch(facecolor="#bbbbbb", hatch="//", label="index (until searchable)")]  # fmt: skip
    ax.legend(handles=legend, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, fontsize=8, frameon=False)
    ax.grid(True, axis="x", alpha=0.3)
    return png_data_uri(fig)


# -- sections ----------------------------------------------------------------------------
def point_row(r: dict[str, Any], series: Series, frontier_ids: set[int], extra_keys: list[str]) -> dict[str, Any]:
    effective = r.get("effective") or {}
    spread = qps_range(r) if is_ok(r) else None
    issues = {k: r.get(k) for k in ("duplicate_answers", "short_answers", "invalid_ids") if r.get(k)}
    flat = extra_measurements(r)
    others = {k: v for k, v in r.items() if k not in KNOWN_FIELDS and k not in flat and v is not None
              and not (isinstance(v, dict) and all(_scalar_or_numbers(x) for x in v.values()))}  # fmt: skip
    return {
        "r": r,
        "series": series,
        "build_text": params_text(r.get("build")),
        "search_text": params_text(r.get("search")),
        "ok": is_ok(r),
        "frontier": id(r) in frontier_ids,
        "qps_min": spread[0] if spread else None,
        "qps_max": spread[1] if spread else None,
        "effective_family": effective.get("family"),
        "effective_params": params_text(effective.get("params")) if effective else "",
        "effective_engine": compact_json(effective.get("engine"), 2000) if effective.get("engine") else "",
        "mismatches": r.get("config_mismatch") or [],
        "issues": ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in issues.items()),
        "extras": {k: flat.get(k) for k in extra_keys},
        "others": compact_json(others) if others else "",
    }


def _scalar_or_numbers(value: Any) -> bool:
    """Shown as a column already (number, yes/no, empty) or not worth a cell of its own (a list of run figures)."""
    if value is None or is_number(value) or isinstance(value, bool):
        return True
    return isinstance(value, list) and all(is_number(x) for x in value)


def extra_measurements(record: dict[str, Any]) -> dict[str, Any]:
    """Fields the report does not know by name that hold numbers (or yes/no), one level of nesting flattened.

    New measurements (``batch: {qps, recall}``, ``client: {cpu_share}``...) get a column without a code change.
    """
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in KNOWN_FIELDS:
            continue
        if is_number(value) or isinstance(value, bool):
            out[key] = value
        elif isinstance(value, dict):
            for sub, v in value.items():
                if is_number(v) or isinstance(v, bool):
                    out[f"{key}.{sub}"] = v
    return out


def build_rows(records: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> list[dict[str, Any]]:
    """One row per build (store × family × build parameters): its timing, and the largest size/memory reported."""
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        key = json.dumps([series_key(r), r.get("build")], sort_keys=True, default=str)
        row = rows.setdefault(key, {
            "series": series[series_key(r)],
            "build": r.get("build") or {},
            "build_text": params_text(r.get("build")),
            "insert_s": None,
            "index_s": None,
            "build_s": None,
            "resources": {},
            "memory": None,
        })  # fmt: skip
        if row["insert_s"] is None and r.get("insert_s") is not None:
            row.update(insert_s=r.get("insert_s"), index_s=r.get("index_s"), build_s=r.get("build_s"))
        if is_number(memory := memory_bytes(r)):
            row["memory"] = max(row["memory"] or 0, memory)
        for name, value in (r.get("resources") or {}).items():
            known = row["resources"].get(name)
            if is_number(value) and is_number(known):
                row["resources"][name] = max(known, value)  # peaks differ per search point: keep the largest
            elif known is None:
                row["resources"][name] = value
    return list(rows.values())


def headline(points: list[dict[str, Any]], series: dict[tuple[str, str], Series],
             targets: tuple[float, ...]) -> list[dict[str, Any]]:  # fmt: skip
    """Per store · family: the point the ranking lists at each target (``chosen``: one rule for both); databases
    first, baselines last."""
    by_series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in points:
        by_series[series_key(r)].append(r)
    rows = []
    for key, s in sorted(series.items(), key=lambda kv: kv[1].baseline):
        if key not in by_series:
            continue
        pts = by_series[key]
        rows.append({
            "series": s,
            "cells": [chosen(pts, bar)[0] for bar in targets],
            "max_recall": max(r["recall"] for r in pts),
        })  # fmt: skip
    return rows


def entry_sentence(rk: Ranking, host: dict[str, Any] | None, targets: list[float] | None = None) -> Markup:
    """One plain sentence for a target (or several ``targets`` with the same answer): the fastest database, by how
    much, and at what setting."""
    bar = _and([f"{t:.2f}" for t in targets or [rk.target]])
    best = rk.winner
    if best is None:
        if not rk.missed:
            return Markup("Recall ≥ {}: no database was measured successfully.").format(bar)
        top = rk.missed[0]
        return Markup("No database reached recall ≥ {}; the closest was <strong>{}</strong> at recall {}.").format(
            bar, top.name, recall_text(top.best)
        )
    p = best.point
    sentence = Markup("At recall ≥ {}, the fastest database was <strong>{}</strong> with {} QPS (p99 {} ms, recall {}, "
                      "{} {})").format(bar, best.name, fmt_num(p["qps"]), fmt_num(p.get("p99_ms")),
                                       recall_text(p), p.get("index"),
                                       params_text(p.get("search")) if p.get("search") else "defaults")  # fmt: skip
    if best.cost is not None and host:
        sentence += Markup(", {} {} per million queries").format(fmt_num(best.cost), host["currency"])
    if len(rk.databases) > 1:
        second = rk.databases[1]
        sentence += Markup("; the next, {}, served {} QPS ({}× slower{})").format(
            second.name, fmt_num(second.point["qps"]), fmt_num(second.ratio, 2),
            ", within the run-to-run spread, so treat them as tied" if second.tied_with_above else "",
        )  # fmt: skip
    else:
        sentence += Markup("; no other database reached this recall")
    if rk.missed:
        sentence += Markup(". Not reached by {}").format(", ".join(e.name for e in rk.missed))
    return sentence + Markup(".")


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def _answer(rk: Ranking) -> tuple[Any, ...]:
    """What a target's sentence says: the same for two targets means one sentence covers both."""
    second = rk.databases[1] if len(rk.databases) > 1 else None
    return (id(rk.winner.point) if rk.winner else None, id(second.point) if second else None,
            second.tied_with_above if second else None, tuple((e.label, e.best_recall) for e in rk.missed))  # fmt: skip


def ranking_sentences(rankings: list[Ranking], host: dict[str, Any] | None) -> list[Markup]:
    """One sentence per distinct answer: targets the same database wins at the same point share a sentence."""
    groups: list[list[Ranking]] = []
    for rk in rankings:
        if groups and _answer(groups[-1][0]) == _answer(rk):
            groups[-1].append(rk)
        else:
            groups.append([rk])
    return [entry_sentence(g[0], host, [rk.target for rk in g]) for g in groups]


def ranking_rows(rk: Ranking) -> list[dict[str, Any]]:
    """Table rows of one target: ranked databases, then those that missed it, then baselines as reference."""
    rows = []
    for group, entries in (("db", rk.databases), ("missed", rk.missed), ("baseline", rk.baselines)):
        for i, e in enumerate(entries):
            rows.append({"group": group, "rank": i + 1 if group == "db" else None, "e": e, "p": e.point,
                         "setting": setting_text(e.point) if e.point else "",
                         "memory": memory_bytes(e.point) if e.point else None})  # fmt: skip
    return rows


def saturation_warning(points: list[dict[str, Any]], targets: tuple[float, ...], names: dict[str, str]) -> str | None:
    """A warning when recall hardly separates the databases: most ranked points of every database at or above the
    top target. It counts the points it speaks of, per database (``names``: label → engine), baselines apart."""
    top = max(targets)
    by_store: dict[str, list[float]] = defaultdict(list)
    for r in points:
        if is_ranked(r) and not record_identity(r).get("baseline"):
            by_store[str(r.get("label"))].append(r["recall"])
    if not by_store:
        return None
    shares = {label: sum(x >= top for x in recalls) / len(recalls) for label, recalls in by_store.items()}
    if min(shares.values()) <= SATURATED_SHARE:
        return None
    counts = _and([f"{names.get(label, label)}: {sum(x >= top for x in v)} of {len(v)}"
                   for label, v in by_store.items()])  # fmt: skip
    return (f"Recall saturates on this dataset: on every database most settings reach recall ≥ {top:.2f} "
            f"({counts} settings; baselines not counted), so the targets hardly separate the databases and the "
            "comparison is mostly about speed at near-perfect recall. Use harder data (your own embeddings, more "
            "vectors) or lower search settings (smaller ef / nprobe) to see the trade-off.")  # fmt: skip


def cheap_targets(rankings: list[Ranking], points: list[dict[str, Any]]) -> list[str]:
    """Targets every database met with its cheapest measured setting: the ranking there stops at the grid's edge."""
    lowest: dict[str, float] = {}
    for r in points:
        if r.get("target_recall") is None and not record_identity(r).get("baseline"):
            label = str(r.get("label"))
            lowest[label] = min(lowest.get(label, 1.0), r["recall"])
    out = []
    for rk in rankings:
        if lowest and rk.databases and not rk.missed and all(x >= rk.target for x in lowest.values()):
            out.append(f"{rk.target:.2f}")
    return out


def missing_figures(records: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> list[str]:
    """Which databases lack a workload's figures (``Workload.missing_figures``) or batch figures, and why (from the
    records' reasons)."""
    out = [line for w in workloads() for line in w.missing_figures(records, series)]
    config = next(((r.get("provenance") or {}).get("config") for r in records if r.get("provenance")), None) or {}
    points = [r for r in records if not is_apart(r) and r.get("status") == "ok"]
    if config.get("batch_size") == 0:
        out.append("No batch figures: batch search was switched off (batch_size: 0).")
        return out
    for label, who in databases(records, series).items():
        mine = [r for r in points if str(r.get("label")) == label]
        if not mine or any(isinstance(r.get("batch"), dict) for r in mine):
            continue
        store = str(mine[0].get("store"))
        adapter = get_store_class(store) if store in ADAPTERS else None
        why = ("its adapter has no batch search call" if adapter is not None and not adapter.supports_batch_search
               else "the sweep recorded no batch measurement for it")  # fmt: skip
        out.append(f"No batch figures for {who}: {why}.")
    return out


def decision(records: list[dict[str, Any]], series: dict[tuple[str, str], Series], targets: tuple[float, ...],
             quality: list[Markup] | None = None) -> dict[str, Any]:  # fmt: skip
    """The first screen of one dataset: its ``quality`` sentences first where it has labels, then the ranking per
    target where it separates databases, the sentences, and what the figures cannot say."""
    points = [r for r in records if not is_apart(r) and is_ok(r)]
    rankings = rank(records, targets, ranked=is_ranked) if points else []
    host = host_price(records)
    names = databases(records, series)  # every database asked, measured or not
    ranked = {e.label for e in rankings[0].databases + rankings[0].missed} if rankings else set()
    sentences, warnings = list(quality or []), []
    if not points:
        sentences.append(Markup("No point was measured successfully on this dataset."))
    elif not ranked and names:
        sentences.append(Markup("No database was measured successfully on this dataset ({}); see <a href=\"#problems\">"
                                "Failed and skipped points</a>.").format(_and(list(names.values()))))  # fmt: skip
    elif not ranked and not quality and rankings and rankings[0].baselines:
        sentences.append(Markup("This sweep asked for no database on this dataset, only baselines ({}): the tables "
                                "below show them for reference, never ranked.").format(
                                    _and([e.name for e in rankings[0].baselines])))  # fmt: skip
    if quality and len(ranked) < 2:  # quality answers; a ranking of one database would only repeat its speed
        if len(ranked) == 1:
            sentences.append(Markup("No recall-target ranking: {} is the only database measured here, so recall "
                                    "separates nothing; its recall and QPS per setting are in the dataset section."
                                    ).format(names[next(iter(ranked))]))  # fmt: skip
        rankings = []
    elif ranked:
        sentences += ranking_sentences(rankings, host)
    if ranked and rankings:
        warnings += [w for w in [saturation_warning(points, targets, names)] if w]
    if ranked and (cheap := cheap_targets(rankings, points)):
        warnings.append(f"At recall ≥ {' and '.join(cheap)} every database's cheapest setting already qualifies, "
                        "so that ranking only compares the lowest settings tried; add lower ones (smaller ef / nprobe) "
                        "to find each database's true speed there.")  # fmt: skip
    return {
        "rankings": [
            {
                "target": rk.target,
                "sentence": entry_sentence(rk, host),
                "rows": ranking_rows(rk),
                "tuned": any(e.tuned for e in rk.databases + rk.missed + rk.baselines),
            }
            for rk in rankings
        ],  # fmt: skip
        "sentences": sentences,
        "warnings": warnings,
        "missing": missing_figures(records, series),
        "host": host,
        "ndcg": any(is_number(r.get("ndcg@10")) for r in points),
    }


def stand_in_warnings(series: dict[tuple[str, str], Series]) -> str | None:
    """One sentence naming every embedded engine that stands in for a server product, or None."""
    out: list[str] = []
    for s in series.values():
        warning = stand_in_warning(s.engine)
        if warning and warning not in out:
            out.append(warning)
    text = "; ".join(out)
    return text[:1].upper() + text[1:] + "." if out else None


def provenance_runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Distinct sweeps that contributed records (a resumed sweep adds one), oldest first."""
    runs: dict[str, dict[str, Any]] = {}
    for r in records:
        p = r.get("provenance") or {}
        key = json.dumps([p.get("started"), p.get("git"), (p.get("host") or {}).get("hostname")], default=str)
        if key not in runs:
            runs[key] = {"p": p, "host": p.get("host") or {}, "git": p.get("git") or {}, "points": 0}
        runs[key]["points"] += 1
    return sorted(runs.values(), key=lambda x: str(x["p"].get("started")))


def package_table(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    versions: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        for name, v in (run["p"].get("packages") or {}).items():
            if v not in versions[name]:
                versions[name].append(str(v))
    return sorted((name, " / ".join(vs)) for name, vs in versions.items())


def config_texts(runs: list[dict[str, Any]]) -> list[str]:
    texts = []
    for run in runs:
        cfg = run["p"].get("config")
        if cfg is None:
            continue
        text = yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False, default_flow_style=None)
        if text not in texts:
            texts.append(text)
    return texts


def dataset_section(number: int, name: str, records: list[dict[str, Any]], series: dict[tuple[str, str], Series],
                    targets: tuple[float, ...], quality: list[Markup] | None = None) -> dict[str, Any]:  # fmt: skip

    everything, records = records, [r for r in records if is_ranked(r)]
    ok = [r for r in records if is_ok(r)]
    frontier_ids = set()
    by_series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        by_series[series_key(r)].append(r)
    for pts in by_series.values():
        frontier_ids |= {id(r) for r in pareto_frontier(pts)}
    extra_keys = sorted({k for r in records for k in extra_measurements(r)})
    builds = build_rows([r for r in everything if not workload_of(r).own_build], series)  # the shared builds
    info = next((r.get("dataset_info") for r in everything if r.get("dataset_info")), None) or {}
    k = everything[0].get("k")
    used = [s for key, s in series.items() if any(series_key(r) == key for r in everything)]
    return {
        "number": number,
        "anchor": f"dataset-{number}",
        "name": name,
        "info": info,
        "k": k,
        "series": used,
        "plotted": {series[series_key(r)].tag for r in ok},
        "unjudged": unjudged(records, series),
        "counts": _status_counts(records),
        "decision": decision(everything, series, targets, quality),
        "findings": [sentence for w in workloads() for sentence in w.findings(everything, series)],
        "headline": headline(ok, series, targets),
        "plot": recall_qps_plot(ok, series, k, targets) if ok else None,
        "build_plot": build_time_plot(builds),
        "builds": builds,
        "extra_keys": extra_keys,
        "extra_groups": [extra_keys[i : i + EXTRA_COLUMNS] for i in range(0, len(extra_keys), EXTRA_COLUMNS)],
        "points": [point_row(r, series[series_key(r)], frontier_ids, extra_keys) for r in _sorted(records)],
        "workload_sections": [
            {"workload": w.name, "template": f"workloads/{w.name}.html.j2", **section}
            for w in workloads()
            if (section := w.report_section(everything, series, targets))
        ],  # fmt: skip
    }


def unjudged(records: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> dict[str, str]:
    """Series tag → legend note, for series whose successful points have no recall by design (bm25 answers text, so
    it has no vector neighbours to be judged against): they are absent from the recall plot without having failed."""
    out = {}
    for r in records:
        if r.get("status") == "ok" and not is_number(r.get("recall")):
            text = r.get("retrieval") not in (None, "dense")
            out[series[series_key(r)].tag] = "not judged by recall" + (" (text search)" if text else "")
    return out


def _series_of(record: dict[str, Any]) -> Series:
    """A stand-alone series for a record of another sweep (a baseline comparison), to name it."""
    return build_series([record])[series_key(record)]


def _sorted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (str(r.get("label")), str(r.get("index")), -(r.get("recall") or 0)))


def _status_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[str(r.get("status"))] += 1
    return dict(counts)


def comparison_context(comp: Comparison, series: dict[tuple[str, str], Series]) -> dict[str, Any]:
    return {
        "counts": comp.counts(),
        "changes": sorted(
            comp.changes,
            key=lambda c: (
                str(c.new.get("dataset")),
                str(c.new.get("label")),
                str(c.new.get("index")),
                all_params(c.new),
            ),
        ),  # fmt: skip
        "only_old": comp.only_old,
        "only_new": comp.only_new,
    }


def build_context(records: list[dict[str, Any]], baseline: list[dict[str, Any]] | None = None,
                  title: str = "vdbbench report", baseline_name: str | None = None,
                  results_dir: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything the template shows, computed from the records (run files read from ``results_dir``)."""

    quality = quality_sections(records, results_dir)
    said = quality_findings(quality)
    series = build_series(records)
    targets = recall_targets(records)
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_dataset[str(r.get("dataset"))].append(r)
    datasets = [
        dataset_section(i + 1, name, recs, series, targets, said.get(name))
        for i, (name, recs) in enumerate(by_dataset.items())
    ]
    runs = provenance_runs(records)
    times = sorted(str(r["time"]) for r in records if r.get("time"))
    engine_versions: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r.get("engine_version"):
            engine_versions[series[series_key(r)].who].add(str(r["engine_version"]))
    points = [r for r in records if not is_apart(r)]
    apart: dict[str, int] = defaultdict(int)  # noun → records counted apart from the points
    for r in records:
        if noun := workload_of(r).counted_apart:
            apart[noun] += 1
    return {
        "title": title,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": points,
        "counts": _status_counts(points),
        "apart": sorted(apart.items()),
        "series": list(series.values()),
        "datasets": datasets,
        "bars": targets,
        "name_of": lambda r: (series.get(series_key(r)) or _series_of(r)).name,
        "stand_ins": stand_in_warnings(series),
        "first_time": times[0] if times else None,
        "last_time": times[-1] if times else None,
        "k_values": sorted({r.get("k") for r in records if r.get("k") is not None}),
        "runs_values": sorted({r.get("runs") for r in records if r.get("runs") is not None}),
        "problems": [r for r in _sorted(records) if r.get("status") != "ok"],
        "mismatched": [r for r in records if r.get("config_mismatch")],
        "runs": runs,
        "packages": package_table(runs),
        "engine_versions": sorted((name, ", ".join(sorted(v))) for name, v in engine_versions.items()),
        "configs": config_texts(runs),
        "comparison": comparison_context(compare_records(baseline, records), series) if baseline is not None else None,
        "baseline_name": baseline_name,
        "quality": quality,
        "quality_models": [q["model_row"] for q in quality],
    }


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("vdbbench.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_num, bytes=fmt_bytes, resource=fmt_resource, params=params_text, json=compact_json,
                       short=short_params, recall=recall_text)  # fmt: skip
    env.globals.update(is_number=is_number, all_params=all_params, setting=setting_text,
                       setting_note=lambda r: workload_of(r).setting_note)  # fmt: skip
    return env


def render_report(records: list[dict[str, Any]], baseline: list[dict[str, Any]] | None = None,
                  title: str = "vdbbench report", baseline_name: str | None = None,
                  results_dir: Path | None = None) -> str:  # fmt: skip
    """The report as one HTML string."""
    context = build_context(records, baseline, title, baseline_name, results_dir)
    return _environment().get_template("report.html.j2").render(**context)


def write_report(results_dir: Path, target: Path | None = None, baseline: Path | None = None) -> Path:
    """Write the report for ``results_dir`` (default ``<results_dir>/report.html``) and return its path."""
    results_dir = Path(results_dir)
    records = load_results(results_dir)
    old = load_results(baseline) if baseline is not None else None
    name = results_dir.resolve().name
    html = render_report(records, old, title=f"vdbbench report: {name}",
                         baseline_name=str(baseline) if baseline is not None else None,
                         results_dir=results_dir)  # fmt: skip
    target = Path(target) if target is not None else results_dir / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    write_points(records, target.parent)  # the raw numbers next to the report, for pandas or a spreadsheet
    return target
