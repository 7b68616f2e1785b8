"""What a workload is, and the small protocol through which it talks to the sweep that runs it.

A workload reaches the sweep only through ``SweepContext`` (recording, keys, the prepared views, the console),
never through the sweep's class, so the workloads sit below the sweep and import nothing above them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
from rich.console import Console

from vdbbench.charts.fields import params_text
from vdbbench.charts.plots import series_key
from vdbbench.config import DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.data.datasets import Dataset
from vdbbench.execution.points import PointId
from vdbbench.execution.process import StoreProcess

if TYPE_CHECKING:
    from markupsafe import Markup
    from rich.table import Table

    from vdbbench.execution.quality import Leg
    from vdbbench.execution.worker import StoreWorker


class SweepContext(Protocol):
    """What a workload may use of the sweep running it."""

    cfg: SweepConfig
    plan: StorePlan | None  # of the store entry being run
    console: Console
    out_dir: Path
    previous: dict[str, dict[str, Any]]  # records already in the results file, by key (resume)
    views: dict[str, list[Dataset]]  # dataset name → one filtered view per filter
    written: list[dict[str, Any]]  # records of the build being run
    observations: dict[str, dict[str, tuple[str, float]]]  # for the search-parameter-ignored check

    def record(self, ds: Dataset, s: StoreConfig, build: dict, search: dict, key_override: str | None = None, *,
               workload: str, **fields: Any) -> dict[str, Any]: ...  # fmt: skip

    def key(self, ds: Dataset, s: StoreConfig, build: dict, search: dict, workload: str) -> str: ...

    def fail_points(self, s: StoreConfig, build: dict, points: list[PointId], error: str, **fields: Any) -> None: ...

    def bm25_leg(self, ds: Dataset) -> Leg: ...

    def insert_columns(self, ds: Dataset) -> dict[str, np.ndarray]: ...


@dataclass
class BuildRun:
    """One built index of one store entry on one dataset, as one workload measures it."""

    sweep: SweepContext
    engine: StoreProcess
    ds: Dataset
    s: StoreConfig
    build: dict[str, Any]
    build_fields: dict[str, Any]
    done: set[str]
    workload: str  # the name of the workload measuring: its records carry it
    # (search setting, fields) of the plain k-NN points of this build, shared by the workloads run on it: the
    # concurrent workload picks from them
    measured: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    @property
    def worker(self) -> StoreWorker:
        return self.engine.worker

    @property
    def cfg(self) -> SweepConfig:
        return self.sweep.cfg

    @property
    def plan(self) -> StorePlan:
        return self.sweep.plan


class Workload:
    """One kind of measurement on a built index.

    The hooks below the measuring ones present the workload's records (console, report, compare); each has a
    default, so a new workload module that defines only ``name``, ``applies``, ``points``, ``run`` and
    ``plan_lines`` is measured, listed by a dry run, shown in the report (a table of its records) and compared.
    """

    name: ClassVar[str]
    own_build: ClassVar[bool] = False  # builds its own index rather than measuring the shared one
    order: ClassVar[int] = 50  # where it runs on a build: lower first (knn 10, filtered 20, concurrent 30, churn 40)
    # Its points are single-client recall/QPS points of plain search: the report ranks the databases on them, plots
    # their Pareto frontiers and lists them in its per-point tables; the sweep checks them for ignored parameters.
    ranked: ClassVar[bool] = False
    # Its records are not points but each holds several measurements: the report counts them apart under this noun
    # ("concurrent-client measurement"), and the points export leaves them out. None: they are points.
    counted_apart: ClassVar[str | None] = None
    # Words before a record's search setting in the report's lists, where the setting is not a point of its own
    # ("concurrent clients at").
    setting_note: ClassVar[str] = ""

    # -- measuring -----------------------------------------------------------------
    def applies(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig) -> bool:
        """Whether this workload runs for store entry ``s`` on dataset entry ``dc``."""
        raise NotImplementedError

    def points(self, sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict[str, Any]) -> list[PointId]:
        """The points this workload records for one build: their keys (a resumed sweep skips those measured
        already) and what a failure record of each needs."""
        raise NotImplementedError

    def problems(self, s: StoreConfig, n: int) -> list[str]:
        """What makes this workload impossible for store entry ``s`` on ``n`` train rows (``"field: why; fix"``),
        checked before anything starts; [] when it can run."""
        return []

    def build_rows(self, s: StoreConfig, n: int) -> int:
        """How many of the ``n`` train rows the index is built on (the first ones): all, unless the workload
        inserts the rest itself."""
        return n

    def run(self, run: BuildRun) -> bool:
        """Measure and record (``workload=self.name``) every pending point; False when something failed (the
        engine restarts)."""
        raise NotImplementedError

    def plan_lines(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig, plan: StorePlan,
                   shape: tuple[int | None, int | None, int | None], head: str) -> list[str]:  # fmt: skip
        """What a dry run lists for this workload on one build (``head`` names dataset, store and build)."""
        raise NotImplementedError

    # -- presenting ----------------------------------------------------------------
    def mine(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records of this workload among ``records``."""
        return [r for r in records if r.get("workload") == self.name]

    def console_table(self, records: list[dict[str, Any]]) -> Table | None:
        """The sweep's closing console table of this workload's records; None when the summary table shows them."""
        return None

    def match_fields(self, record: dict[str, Any]) -> list[Any]:
        """What, besides dataset, store entry, family, build, k, workload, filter and attributes, makes one of this
        workload's records the same point in two sweeps (``compare``): its search setting."""
        return [record.get("search")]

    def compare_notes(self, old: dict[str, Any], new: dict[str, Any]) -> list[str] | None:
        """How one point changed between two sweeps, where recall/QPS verdicts do not apply; None: they do."""
        return None

    def findings(self, records: list[dict[str, Any]], series: dict) -> list[Markup]:
        """Sentences for the report's summary of one dataset (``records``: all of the dataset's), after the
        ranking's; HTML-safe (``Markup``)."""
        return []

    def missing_figures(self, records: list[dict[str, Any]], series: dict) -> list[str]:
        """For the report's "figures that do not exist" of one dataset: which of this workload's figures are
        missing, and why."""
        return []

    def report_section(self, records: list[dict[str, Any]], series: dict, targets: tuple[float, ...]) -> dict | None:
        """The context of this workload's part of a dataset's report section (``records``: all of the dataset's);
        None when the workload has none or nothing to show. Its template is ``templates/workloads/<name>.html.j2``
        unless the context names another (``template``). The default: a table of this workload's records
        (``templates/workloads/records.html.j2``)."""
        rows = [{"r": r, "series": series[series_key(r)], "build": params_text(r.get("build")),
                 "search": params_text(r.get("search"))} for r in self.mine(records)]  # fmt: skip
        if not rows:
            return None
        return {"template": "workloads/records.html.j2", "title": f"The {self.name} workload", "rows": rows}
