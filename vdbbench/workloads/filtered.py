"""Filtered k-NN: the plain k-NN points again under each metadata filter of the dataset.

Each filter's view of the dataset carries exact neighbours among the rows that pass it (computed
once and cached, see ``Dataset.filtered``), so recall is the same tie-aware recall against the
filtered truth; an answer holding a row that fails the filter counts it as a miss
(``filter_violations``), and an answer shorter than min(k, passing rows) is counted in
``short_answers``, never padded. The store filters natively: ``Store.set_filter`` translates the
filter into the engine's own once, before the timed loop.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vdbbench.charts.fields import is_number, params_text
from vdbbench.charts.plots import Series, new_figure, plot_style, plot_text, png_data_uri, qps_tick, series_key
from vdbbench.charts.ranking import best_at
from vdbbench.config import DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.data.datasets import Dataset
from vdbbench.execution.points import PointId, describe_error
from vdbbench.workloads import BuildRun, Workload
from vdbbench.workloads.base import SweepContext
from vdbbench.workloads.knn import measure_view, view_lines, view_points


class Filtered(Workload):
    name = "filtered"
    order = 20

    def applies(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig) -> bool:
        return dc.filters is not None

    def points(self, sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict) -> list[PointId]:
        return [p for view in sweep.views[ds.name] for p in view_points(sweep, view, s, build, self.name)]

    def run(self, run: BuildRun) -> bool:
        healthy = True
        for view in run.sweep.views[run.ds.name]:
            pending = [p for p in view_points(run.sweep, view, run.s, run.build, self.name) if p.key not in run.done]
            if not pending:
                continue
            if not run.worker.alive:
                stopped = "not measured: the store's process was stopped at an earlier point"
                run.sweep.fail_points(run.s, run.build, pending, stopped, **run.build_fields)
                continue
            try:
                run.worker.call("set_filter", view.filter, timeout=600)
            except Exception as e:  # noqa: BLE001 - the engine refused this filter: its points fail, the rest go on
                error = f"filter refused: {describe_error(e)}"
                run.sweep.fail_points(run.s, run.build, pending, error, **run.build_fields)
                healthy = False
                continue
            healthy &= measure_view(run, view)
            try:  # the next filter's points, and the next build's plain points, must not run under this filter
                if run.worker.alive:
                    run.worker.call("set_filter", None, timeout=600)
            except Exception:  # noqa: BLE001 - the engine is unusable: the runner restarts it for the next build
                healthy = False
        return healthy

    def report_section(self, records: list[dict[str, Any]], series: dict, targets: tuple[float, ...]) -> dict | None:
        """Recall and QPS against selectivity per store, and a table per store × filter (see the template)."""
        failed = [r for r in records if r.get("workload") == self.name and r.get("status") != "ok"]
        bar = min(targets)
        rows = filtered_rows(records, series, bar)
        if not rows and not failed:
            return None
        k = next((r.get("k") for r in records), None)
        return {"rows": rows, "bar": bar, "plot": selectivity_plot(rows, bar, k), "failed": failed}

    def plan_lines(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig, plan: StorePlan,
                   shape: tuple[int | None, int | None, int | None], head: str) -> list[str]:  # fmt: skip
        filters = dc.filter_list(shape[0])
        if not filters:  # generated filters need the train size, known once the data is prepared
            return [f"{head} · filters: one per selectivity {dc.filters.selectivity} (column filter_rank)"]
        return [line for f in filters for line in view_lines(s, plan, shape[2], f"{head} · filter {f.text()}")]


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
