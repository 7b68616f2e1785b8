"""Workloads: what is measured on a built index, one module each, found by the registry below.

- ``knn``: plain k-nearest-neighbour search: the explicit search grid and the recall targets.
- ``filtered``: the same under each metadata filter of the dataset, scored on exact filtered neighbours.
- ``concurrent``: several clients at once at one chosen setting (the sweep's ``concurrency``).
- ``churn``: inserts and deletes while a client searches, on a build of its own (a store's ``churn``).

The runner builds each store's index once per build setting and hands it to every workload that
applies (``applies``), in ``order``; a workload with ``own_build`` builds its own. A new workload is one
module in this folder defining a ``Workload`` subclass (see ``base.py``); nothing else lists it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

from vdbbench.core.schema import workload_name
from vdbbench.workloads.base import BuildRun, SweepContext, Workload

__all__ = ["BuildRun", "SweepContext", "Workload", "is_ranked", "workload_named", "workload_of", "workloads"]


def workload_named(name: str) -> Workload:
    """The workload of that name (a record's ``workload``)."""
    found = _by_name().get(name)
    if found is None:
        raise KeyError(f"unknown workload {name!r}: known workloads are {', '.join(w.name for w in workloads())}")
    return found


def workload_of(record: dict[str, Any]) -> Workload:
    """The workload that wrote ``record``, whose hooks present it; for a name no module here defines (a record of
    another version), a plain ``Workload``: every hook's default."""
    return _by_name().get(workload_name(record)) or Workload()


def is_ranked(record: dict[str, Any]) -> bool:
    """Whether ``record`` is of a workload whose points are single-client recall/QPS points (``Workload.ranked``)."""
    return workload_of(record).ranked


@cache
def workloads() -> tuple[Workload, ...]:
    """Every workload module's workload, in the order they run on a build (``Workload.order``: plain k-NN first,
    since the concurrent one picks from its points). Stateless: made once per process."""
    found: list[Workload] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        defined = [obj for obj in vars(module).values() if isinstance(obj, type) and obj.__module__ == module.__name__]
        found += [obj() for obj in defined if issubclass(obj, Workload)]
    return tuple(sorted(found, key=lambda w: (w.order, w.name)))


@cache
def _by_name() -> dict[str, Workload]:
    return {w.name: w for w in workloads()}
