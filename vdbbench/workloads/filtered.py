"""Filtered k-NN: the plain k-NN points again under each metadata filter of the dataset.

Each filter's view of the dataset carries exact neighbours among the rows that pass it (computed
once and cached, see ``Dataset.filtered``), so recall is the same tie-aware recall against the
filtered truth; an answer holding a row that fails the filter counts it as a miss
(``filter_violations``), and an answer shorter than min(k, passing rows) is counted in
``short_answers``, never padded. The store filters natively: ``Store.set_filter`` translates the
filter into the engine's own once, before the timed loop.
"""

from __future__ import annotations

from vdbbench.config import DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.datasets import Dataset
from vdbbench.runner import PointId, Sweep, describe_error
from vdbbench.workloads import BuildRun, Workload
from vdbbench.workloads.knn import measure_view, view_lines, view_points


class Filtered(Workload):
    name = "filtered"

    def applies(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig) -> bool:
        return dc.filters is not None

    def points(self, sweep: Sweep, ds: Dataset, s: StoreConfig, build: dict) -> list[PointId]:
        return [p for view in sweep.views[ds.name] for p in view_points(sweep, view, s, build)]

    def run(self, run: BuildRun) -> bool:
        healthy = True
        for view in run.sweep.views[run.ds.name]:
            pending = [p for p in view_points(run.sweep, view, run.s, run.build) if p.key not in run.done]
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

    def plan_lines(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig, plan: StorePlan,
                   shape: tuple[int | None, int | None, int | None], head: str) -> list[str]:  # fmt: skip
        filters = dc.filter_list(shape[0])
        if not filters:  # generated filters need the train size, known once the data is prepared
            return [f"{head} · filters: one per selectivity {dc.filters.selectivity} (column filter_rank)"]
        return [line for f in filters for line in view_lines(s, plan, shape[2], f"{head} · filter {f.text()}")]
