"""Workloads: what is measured on a built index, one module each.

- ``knn``: plain k-nearest-neighbour search: the explicit search grid and the recall targets.
- ``filtered``: the same under each metadata filter of the dataset, scored on exact filtered neighbours.
- ``concurrent``: several clients at once at one chosen setting (the sweep's ``concurrency``).
- ``churn``: inserts and deletes while a client searches, on a build of its own (a store's ``churn``).

The runner builds each store's index once per build setting and hands it to every workload that
applies (``applies``), in the order ``workloads()`` lists them; a workload with ``own_build`` builds its own.
A new workload is one module here plus, where it needs one, a Store method or two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from vdbbench.config import DatasetConfig, StoreConfig, StorePlan, SweepConfig

if TYPE_CHECKING:
    from rich.table import Table

    from vdbbench.datasets import Dataset
    from vdbbench.runner import Engine, PointId, Sweep
    from vdbbench.worker import StoreWorker


@dataclass
class BuildRun:
    """One built index of one store entry on one dataset, as the workloads measure it."""

    sweep: Sweep
    engine: Engine
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

    def applies(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig) -> bool:
        """Whether this workload runs for store entry ``s`` on dataset entry ``dc``."""
        raise NotImplementedError

    def points(self, sweep: Sweep, ds: Dataset, s: StoreConfig, build: dict[str, Any]) -> list[PointId]:
        """The points this workload records for one build: their keys (a resumed sweep skips those measured
        already) and what a failure record of each needs."""
        raise NotImplementedError

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


def workload_named(name: str) -> Workload:
    """The workload of that name (a record's ``workload``)."""
    return next(w for w in workloads() if w.name == name)


@cache
def workloads() -> tuple[Workload, ...]:
    """Every workload, in the order they run on a build (plain k-NN first: the concurrent one uses its points)."""
    from vdbbench.workloads.churn import Churn
    from vdbbench.workloads.concurrent import Concurrent
    from vdbbench.workloads.filtered import Filtered
    from vdbbench.workloads.knn import Knn

    return (Knn(), Filtered(), Concurrent(), Churn())  # stateless: made once per process
