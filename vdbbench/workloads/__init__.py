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

from vdbbench.workloads.base import BuildRun, SweepContext, Workload

__all__ = ["BuildRun", "SweepContext", "Workload", "workload_named", "workloads"]


def workload_named(name: str) -> Workload:
    """The workload of that name (a record's ``workload``)."""
    found = next((w for w in workloads() if w.name == name), None)
    if found is None:
        raise KeyError(f"unknown workload {name!r}: known workloads are {', '.join(w.name for w in workloads())}")
    return found


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
