"""The self-contained HTML report: one file with inline plots, styles and script, nothing fetched.

It is meant to be attached to an email and opened offline by someone who did not run the
sweep, so it starts with plain-sentence findings, then the headline table, then a section
per dataset (recall/QPS plot with Pareto frontiers, build times, sizes, latencies, every
point's asked vs reported configuration), then failures and provenance. All text from
configs and engines goes through jinja2 autoescaping.
"""

from __future__ import annotations

import base64
import io
import json
import math
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from vdbbench.compare import Comparison, compare_records, params_text, qps_range
from vdbbench.results import load_results

RECALL_BARS = (0.90, 0.95, 0.99)

# Fields the report shows in their own place; any other numeric field is shown as an extra column.
KNOWN_FIELDS = frozenset({
    "key", "time", "dataset", "store", "label", "index", "metric", "build", "search", "k", "runs", "options",
    "status", "error", "recall", "qps", "qps_runs", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "duplicate_answers",
    "short_answers", "invalid_ids", "insert_s", "index_s", "build_s", "effective", "resources", "engine_version",
    "config_mismatch", "dataset_info", "provenance",
})  # fmt: skip

# Fields of a concurrency record, shown in its own table.
LOAD_FIELDS = frozenset({"kind", "chosen_by", "chosen_recall", "chosen_qps", "concurrency"})

CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "Source Han Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic",
             "VL Gothic", "Hiragino Sans", "Yu Gothic", "Meiryo")  # fmt: skip

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
          "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")  # fmt: skip
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")


# -- numbers and names -------------------------------------------------------------------
def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def fmt_num(value: Any, digits: int = 3) -> str:
    """Readable number: thousands separators for large values, ``digits`` significant digits for small ones."""
    if not is_number(value):
        return "" if value is None else str(value)
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def fmt_bytes(value: Any) -> str:
    if not is_number(value):
        return "" if value is None else str(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(value)


def fmt_resource(key: str, value: Any) -> str:
    return fmt_bytes(value) if "bytes" in key else fmt_num(value)


def compact_json(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """A Japanese-capable font matplotlib can use, registering system fonts its cache has not seen."""
    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in CJK_FONTS if n in names), None)

    if found := known():
        return found
    try:  # matplotlib's font cache predates fonts installed later; ask fontconfig
        out = subprocess.run(["fc-list", ":lang=ja", "file"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        path = line.split(":", 1)[0].strip()
        if path:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    return known()


def plot_text(text: str) -> str | None:
    """``text`` made safe for a matplotlib label, or None when it would render as empty boxes."""
    if any(ord(c) >= 0x2000 and c not in "–—…" for c in text) and cjk_font() is None:
        return None  # DejaVu Sans covers Latin, Greek and Cyrillic; CJK needs a CJK font
    text = text.replace("$", r"\$")  # a lone $ would start mathtext
    return "\u200b" + text if text.startswith("_") else text  # legend hides labels starting with _


# -- model -------------------------------------------------------------------------------
@dataclass
class Series:
    """One store configuration × index family: a line on the recall/QPS plot."""

    tag: str
    label: str
    store: str
    index: str
    color: str
    marker: str

    @property
    def name(self) -> str:
        who = self.label if self.label == self.store else f"{self.label} ({self.store})"
        return f"{who} · {self.index}"

    def plot_name(self) -> str:
        return f"{self.tag} {plot_text(self.name) or ''}".strip()


def series_key(record: dict[str, Any]) -> tuple[str, str]:
    return str(record.get("label")), str(record.get("index"))


def build_series(records: list[dict[str, Any]]) -> dict[tuple[str, str], Series]:
    out: dict[tuple[str, str], Series] = {}
    for r in records:
        key = series_key(r)
        if key not in out:
            i = len(out)
            out[key] = Series(f"S{i + 1}", key[0], str(r.get("store")), key[1], COLORS[i % len(COLORS)],
                              MARKERS[i % len(MARKERS)])  # fmt: skip
    return out


def is_load(record: dict[str, Any]) -> bool:
    """A concurrency measurement (several clients at one search setting), not a recall/QPS point."""
    return record.get("kind") == "concurrency"


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


def all_params(record: dict[str, Any]) -> str:
    return params_text({**(record.get("build") or {}), **(record.get("search") or {})})


def best_at(points: list[dict[str, Any]], bar: float) -> dict[str, Any] | None:
    meeting = [r for r in points if r["recall"] >= bar]
    return max(meeting, key=lambda r: r["qps"]) if meeting else None


# -- plots -------------------------------------------------------------------------------
def _plot_style():
    """Matplotlib settings for one plot, not leaking into the caller's: CJK glyph fallback where available."""
    import matplotlib

    font = cjk_font()
    return matplotlib.rc_context({"font.family": ["DejaVu Sans", font]} if font else {})


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _qps_tick(value: float, _pos: Any = None) -> str:
    """Axis label such as 500, 2k, 50k, 1.2M instead of matplotlib's 5×10^4."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= div:
            return f"{value / div:g}{suffix}"
    return f"{value:g}"


def build_label(s: Series, build: dict[str, Any] | None, with_name: bool = False) -> str:
    """Plot label of one build: tag, (name,) build parameters; ASCII-safe parts only when glyphs are missing."""
    params = params_text(build) if build else ""
    name = plot_text(s.name) if with_name or not params else None
    return " ".join(x for x in (s.tag, name, plot_text(params) if params else None) if x)


def _png_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def recall_qps_plot(points: list[dict[str, Any]], series: dict[tuple[str, str], Series], k: Any) -> str:
    """Recall@k vs QPS (log) per series: frontier joined by a line, dominated points faint."""
    with _plot_style():
        return _recall_qps_plot(points, series, k)


def _recall_qps_plot(points: list[dict[str, Any]], series: dict[tuple[str, str], Series], k: Any) -> str:
    from matplotlib.ticker import FuncFormatter

    fig = _figure(9, 5.4)
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
                markersize=6, linewidth=1.8, label=s.plot_name())  # fmt: skip
        if dominated:
            ax.scatter([r["recall"] for r in dominated], [r["qps"] for r in dominated], color=s.color,
                       marker=s.marker, s=30, alpha=0.3, linewidths=0)  # fmt: skip
    for bar in RECALL_BARS:
        ax.axvline(bar, color="#999999", linestyle=":", linewidth=0.9)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_qps_tick))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: _qps_tick(v, _) if str(v)[0] in "25" else ""))
    low = min(r["recall"] for r in points)
    ax.set_xlim(max(0.0, min(low, 0.9) - 0.02), 1.01)
    ax.set_xlabel(f"recall@{k}")
    ax.set_ylabel("queries per second (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.legend(loc="best", fontsize=8, frameon=True)
    return _png_data_uri(fig)


def build_time_plot(builds: list[dict[str, Any]]) -> str | None:
    """Horizontal stacked bars, one per build: insert time then index time (until searchable)."""
    timed = [b for b in builds if is_number(b.get("insert_s")) or is_number(b.get("index_s"))]
    if not timed:
        return None
    with _plot_style():
        return _build_time_plot(timed)


def _build_time_plot(timed: list[dict[str, Any]]) -> str:
    from matplotlib.patches import Patch

    fig = _figure(9, 1.2 + 0.32 * len(timed))
    ax = fig.add_subplot()
    labels = [build_label(b["series"], b["build"], with_name=True) for b in timed]
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
    return _png_data_uri(fig)


def load_plot(loads: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> str | None:
    """QPS against the number of concurrent clients, one line per measured build."""
    measured = [r for r in loads if r.get("status") == "ok" and (r.get("concurrency") or {}).get("levels")]
    if not measured:
        return None
    with _plot_style():
        fig = _figure(9, 4.2)
        ax = fig.add_subplot()
        seen: dict[str, int] = defaultdict(int)
        for r in measured:
            s = series[series_key(r)]
            levels = sorted(r["concurrency"]["levels"], key=lambda lv: lv.get("clients", 0))
            style = LINESTYLES[seen[s.tag] % len(LINESTYLES)]  # builds of one store: same colour, own line style
            seen[s.tag] += 1
            ax.plot([lv.get("clients") for lv in levels], [lv.get("qps") for lv in levels], color=s.color,
                    marker=s.marker, linestyle=style, linewidth=1.6, label=build_label(s, r.get("build")))  # fmt: skip
        clients = sorted({lv.get("clients") for r in measured for lv in r["concurrency"]["levels"]})
        ax.set_xscale("log", base=2)
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("queries per second (all clients)")
        ax.yaxis.set_major_formatter(_tick_formatter())
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        return _png_data_uri(fig)


def _tick_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(_qps_tick)


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
        if key in KNOWN_FIELDS or key in LOAD_FIELDS:
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
            "engine_version": None,
        })  # fmt: skip
        if row["insert_s"] is None and r.get("insert_s") is not None:
            row.update(insert_s=r.get("insert_s"), index_s=r.get("index_s"), build_s=r.get("build_s"))
        row["engine_version"] = row["engine_version"] or r.get("engine_version")
        for name, value in (r.get("resources") or {}).items():
            known = row["resources"].get(name)
            if is_number(value) and is_number(known):
                row["resources"][name] = max(known, value)  # peaks differ per search point: keep the largest
            elif known is None:
                row["resources"][name] = value
    return list(rows.values())


def load_rows(loads: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> list[dict[str, Any]]:
    """One row per client count of each concurrency measurement."""
    rows = []
    for r in loads:
        info = r.get("concurrency") or {}
        for level in info.get("levels") or [{}]:
            rows.append({"r": r, "series": series[series_key(r)], "build_text": params_text(r.get("build")),
                         "search_text": params_text(r.get("search")), "level": level, "note": info.get("note"),
                         "duration_s": info.get("duration_s")})  # fmt: skip
    return rows


def load_findings(loads: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> list[Markup]:
    """Which store served the most queries per second at the largest client count measured."""
    levels = [(r, lv) for r in loads if r.get("status") == "ok"
              for lv in (r.get("concurrency") or {}).get("levels") or [] if is_number(lv.get("qps"))]  # fmt: skip
    if not levels:
        return []
    most = max(lv.get("clients", 0) for _, lv in levels)
    r, lv = max(((r, lv) for r, lv in levels if lv.get("clients") == most), key=lambda x: x[1]["qps"])
    sentence = Markup("With {} concurrent clients, <strong>{}</strong> served the most: {} QPS, p99 {} ms")
    sentence += Markup(" ({}, recall {})")
    sentence = sentence.format(most, series[series_key(r)].name, fmt_num(lv["qps"]), fmt_num(lv.get("p99_ms")),
                               all_params(r) or "defaults", fmt_num(r.get("chosen_recall"), 4))  # fmt: skip
    if lv.get("client_bound"):
        sentence += Markup(", limited by the load-generating clients rather than the engine")
    return [sentence + Markup(".")]


def headline(points: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> list[dict[str, Any]]:
    by_series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in points:
        by_series[series_key(r)].append(r)
    rows = []
    for key, s in series.items():
        if key not in by_series:
            continue
        pts = by_series[key]
        rows.append({
            "series": s,
            "cells": [best_at(pts, bar) for bar in RECALL_BARS],
            "max_recall": max(r["recall"] for r in pts),
        })  # fmt: skip
    return rows


def findings(points: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> list[Markup]:
    """Plain sentences: the fastest store at each recall bar, and how far the next store is behind."""
    out = []
    if not points:
        return [Markup("No point was measured successfully on this dataset.")]
    for bar in RECALL_BARS:
        per_store: dict[str, dict[str, Any]] = {}
        for r in points:
            if r["recall"] >= bar and (r["label"] not in per_store or r["qps"] > per_store[r["label"]]["qps"]):
                per_store[r["label"]] = r
        ranked = sorted(per_store.values(), key=lambda r: -r["qps"])
        if not ranked:
            top = max(points, key=lambda r: (r["recall"], r["qps"]))
            out.append(
                Markup("No store reached recall ≥ {}; the highest was {} by <strong>{}</strong> ({}).").format(
                    f"{bar:.2f}", f"{top['recall']:.4f}", series[series_key(top)].name, all_params(top) or "defaults"
                )
            )
            continue
        best = ranked[0]
        sentence = Markup("At recall ≥ {}, the fastest was <strong>{}</strong> with {} QPS (recall {}, {})").format(
            f"{bar:.2f}",
            series[series_key(best)].name,
            fmt_num(best["qps"]),
            f"{best['recall']:.4f}",
            all_params(best) or "defaults",
        )
        if len(ranked) > 1:
            second = ranked[1]
            a, b = qps_range(best), qps_range(second)
            tied = a and b and b[1] >= a[0]
            sentence += Markup("; the next store, {}, reached {} QPS ({}× slower{})").format(
                series[series_key(second)].name,
                fmt_num(second["qps"]),
                fmt_num(best["qps"] / second["qps"], 2),
                ", within the run-to-run spread, so treat them as tied" if tied else "",
            )
        else:
            sentence += Markup("; no other store reached this recall")
        out.append(sentence + Markup("."))
    return out


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


def dataset_section(number: int, name: str, records: list[dict[str, Any]],
                    series: dict[tuple[str, str], Series]) -> dict[str, Any]:  # fmt: skip
    loads = [r for r in records if is_load(r)]
    everything, records = records, [r for r in records if not is_load(r)]
    ok = [r for r in records if is_ok(r)]
    frontier_ids = set()
    by_series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        by_series[series_key(r)].append(r)
    for pts in by_series.values():
        frontier_ids |= {id(r) for r in pareto_frontier(pts)}
    extra_keys = sorted({k for r in records for k in extra_measurements(r)})
    builds = build_rows(everything, series)
    resource_keys = sorted({k for b in builds for k in b["resources"]})
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
        "counts": _status_counts(records),
        "findings": findings(ok, series) + load_findings(loads, series),
        "headline": headline(ok, series),
        "plot": recall_qps_plot(ok, series, k) if ok else None,
        "build_plot": build_time_plot(builds),
        "builds": builds,
        "resource_keys": resource_keys,
        "extra_keys": extra_keys,
        "points": [point_row(r, series[series_key(r)], frontier_ids, extra_keys) for r in _sorted(records)],
        "loads": load_rows(loads, series),
        "load_plot": load_plot(loads, series),
    }


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
    from vdbbench.quality_report import quality_sections

    quality = quality_sections(records, results_dir)
    series = build_series(records)
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_dataset[str(r.get("dataset"))].append(r)
    datasets = [dataset_section(i + 1, name, recs, series) for i, (name, recs) in enumerate(by_dataset.items())]
    runs = provenance_runs(records)
    times = sorted(str(r["time"]) for r in records if r.get("time"))
    engine_versions: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r.get("engine_version"):
            engine_versions[series[series_key(r)].name].add(str(r["engine_version"]))
    points = [r for r in records if not is_load(r)]
    loads = [r for r in records if is_load(r)]
    return {
        "title": title,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": points,
        "counts": _status_counts(points),
        "loads": loads,
        "series": list(series.values()),
        "datasets": datasets,
        "bars": RECALL_BARS,
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
        loader=PackageLoader("vdbbench", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_num, bytes=fmt_bytes, resource=fmt_resource, params=params_text, json=compact_json)
    env.globals.update(is_number=is_number, all_params=all_params)
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
    return target
