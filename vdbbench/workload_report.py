"""The report's filtered-search and churn sections of one dataset, from their records.

Filtered: per store, recall and QPS against the fraction of rows a filter passes (log x axis), so a
manager sees where a store's filtering breaks down (short answers at 1%, QPS collapsing at 50%...).
Each store's point under a filter is the fastest one that reaches the lowest recall target, and its
most accurate point shows whether the target is reachable at all.

Churn: per store, QPS and latency while writing, freshness, recall on the live rows and deleted ids
returned, with the checkpoints behind them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vdbbench.compare import params_text
from vdbbench.ranking import best_at, is_number
from vdbbench.report import Series, new_figure, plot_style, plot_text, png_data_uri, qps_tick, series_key


def filtered_points(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The successful filtered points, with recall and QPS."""
    return [r for r in records if r.get("workload") == "filtered" and r.get("status") == "ok"
            and is_number(r.get("recall")) and is_number(r.get("qps"))]  # fmt: skip


def filtered_rows(records: list[dict[str, Any]], series: dict[tuple[str, str], Series], bar: float) -> list[dict]:
    """One row per store × filter: most accurate point, fastest point reaching ``bar``, short answers, violations."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in filtered_points(records):
        groups[(series_key(r), params_text(r.get("build")), str(r.get("filter")))].append(r)
    rows = []
    for (key, build, _), pts in groups.items():
        best = max(pts, key=lambda r: (r["recall"], r["qps"]))
        fast = best_at(pts, bar)
        effective = best.get("effective") or {}
        rows.append({"series": series[key], "build": build, "filter": best.get("filter"),
                     "selectivity": best.get("selectivity"), "best": best, "fast": fast,
                     "short": max(int(r.get("short_answers") or 0) for r in pts),
                     "violations": max(int(r.get("filter_violations") or 0) for r in pts),
                     "indexes": effective.get("attribute_indexes"),
                     "queries": (best.get("dataset_info") or {}).get("test")})  # fmt: skip
    return sorted(rows, key=lambda x: (x["series"].tag, x["build"], x["selectivity"] or 0))


def selectivity_plot(rows: list[dict[str, Any]], bar: float, k: Any) -> str | None:
    """Two panels against selectivity (log): the most accurate recall, and QPS of the fastest point reaching ``bar``."""
    if not rows:
        return None
    from matplotlib.ticker import FuncFormatter

    with plot_style():
        fig = new_figure(9, 4.4 + 0.16 * len({r["series"].tag for r in rows}))
        recall_ax, qps_ax = fig.subplots(1, 2)
        lines: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            lines[(row["series"].tag, row["build"])].append(row)
        for (_, build), pts in lines.items():
            s = pts[0]["series"]
            pts = sorted(pts, key=lambda r: r["selectivity"])
            style = {"color": s.color, "marker": s.marker, "linestyle": "--" if s.baseline else "-"}
            shown = plot_text(build) if build != "—" and len({b for _, b in lines}) > 1 else None
            label = " ".join(x for x in (s.tag, plot_text(s.name), shown) if x)
            recall_ax.plot([r["selectivity"] for r in pts], [r["best"]["recall"] for r in pts], label=label, **style)
            reached = [r for r in pts if r["fast"] is not None]
            qps_ax.plot([r["selectivity"] for r in reached], [r["fast"]["qps"] for r in reached], **style)
        for ax in (recall_ax, qps_ax):
            ax.set_xscale("log")
            ax.set_xlabel("fraction of rows passing the filter (log scale)")
            ax.grid(True, which="major", alpha=0.3)
        recall_ax.set_ylabel(f"recall@{k}, most accurate setting")
        recall_ax.axhline(bar, color="#999999", linestyle=":", linewidth=0.9)
        qps_ax.set_yscale("log")
        qps_ax.yaxis.set_major_formatter(FuncFormatter(qps_tick))
        qps_ax.set_ylabel(f"QPS, fastest setting with recall ≥ {bar:.2f}")
        fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
        return png_data_uri(fig)


def churn_rows(records: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> list[dict[str, Any]]:
    """One row per churn record, with its writes per second (inserted + deleted rows over write seconds)."""
    out = []
    for r in records:
        if r.get("workload") != "churn":
            continue
        c = r.get("churn") or {}
        writes = (c.get("insert_s") or 0) + (c.get("delete_s") or 0)
        rate = ((c.get("inserted") or 0) + (c.get("deleted") or 0)) / writes if writes > 0 else None
        out.append({"r": r, "series": series[series_key(r)], "c": c, "write_rate": rate,
                    "build": params_text(r.get("build")), "search": params_text(r.get("search"))})  # fmt: skip
    return out


def workload_sections(records: list[dict[str, Any]], series: dict[tuple[str, str], Series],
                      targets: tuple[float, ...]) -> dict[str, Any]:  # fmt: skip
    """The filtered and churn parts of one dataset's section (empty when the sweep measured neither)."""
    bar = min(targets)
    rows = filtered_rows(records, series, bar)
    k = next((r.get("k") for r in records), None)
    return {
        "filtered": rows,
        "filtered_bar": bar,
        "filtered_plot": selectivity_plot(rows, bar, k),
        "filtered_failed": [r for r in records if r.get("workload") == "filtered" and r.get("status") != "ok"],
        "churn": churn_rows(records, series),
    }
