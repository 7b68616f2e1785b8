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

from vdbbench.config import DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.data.datasets import Dataset
from vdbbench.execution.points import PointId
from vdbbench.execution.process import StoreProcess

if TYPE_CHECKING:
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

    def record(self, ds: Dataset, s: StoreConfig, build: dict, search: dict, key_override: str | None = None,
               **fields: Any) -> dict[str, Any]: ...  # fmt: skip

    def key(self, ds: Dataset, s: StoreConfig, build: dict, search: dict, workload: str) -> str: ...

    def fail_points(self, s: StoreConfig, build: dict, points: list[PointId], error: str, **fields: Any) -> None: ...

    def bm25_leg(self, ds: Dataset) -> Leg: ...

    def insert_columns(self, ds: Dataset) -> dict[str, np.ndarray]: ...


@dataclass
class BuildRun:
    """One built index of one store entry on one dataset, as the workloads measure it."""

    sweep: SweepContext
    engine: StoreProcess
    ds: Dataset
    s: StoreConfig
    build: dict[str, Any]
    build_fields: dict[str, Any]
    done: set[str]
    # (search setting, fields) of the plain k-NN points of this build: the concurrent workload picks from them
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
    """One kind of measurement on a built index."""

    name: ClassVar[str]
    own_build: ClassVar[bool] = False  # builds its own index rather than measuring the shared one
    order: ClassVar[int] = 50  # where it runs on a build: lower first (knn 10, filtered 20, concurrent 30, churn 40)

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
        """Measure and record every pending point; False when something failed (the engine restarts)."""
        raise NotImplementedError

    def console_table(self, records: list[dict[str, Any]]) -> Table | None:
        """The sweep's closing console table of this workload's records; None when the summary table shows them."""
        return None

    def compare_notes(self, old: dict[str, Any], new: dict[str, Any]) -> list[str] | None:
        """How one point changed between two sweeps, where recall/QPS verdicts do not apply; None: they do."""
        return None

    def report_section(self, records: list[dict[str, Any]], series: dict, targets: tuple[float, ...]) -> dict | None:
        """The context of this workload's part of a dataset's report section (its template is
        ``templates/workloads/<name>.html.j2``); None when the workload has none or nothing to show."""
        return None

    def plan_lines(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig, plan: StorePlan,
                   shape: tuple[int | None, int | None, int | None], head: str) -> list[str]:  # fmt: skip
        """What a dry run lists for this workload on one build (``head`` names dataset, store and build)."""
        raise NotImplementedError
