"""The conformance suite's cases, drawn from the store registry and each store's own ``conformance`` declaration
(vdbbench.stores.base.Conformance), and the one opened instance per store that the suite's tests share.

Nothing here names a store: a store folder added under vdbbench/stores/ gets every test its flags call for.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from storekit import BuildOutcome, SmallData, build_and_search, small_data

from vdbbench.data.datasets import synthetic
from vdbbench.data.groundtruth import exact_knn
from vdbbench.stores import Store, get_store_class, store_names
from vdbbench.stores.base import Case, Knob

K = 10


def default_cases(cls: type[Store]) -> tuple[Case, ...]:
    """The store's declared cases; for a store declaring none, each family at its defaults."""
    return cls.conformance.cases or tuple(
        Case(family, floor=1.0 if spec.exact else 0.9) for family, spec in cls.families.items()
    )


def first_of_each_family(cases: tuple[Case, ...]) -> tuple[Case, ...]:
    return tuple({c.family: c for c in reversed(cases)}.values())[::-1]


def filter_cases(cls: type[Store]) -> tuple[Case, ...]:
    declared = cls.conformance.filters
    return first_of_each_family(default_cases(cls)) if declared is None else declared


def delete_cases(cls: type[Store]) -> tuple[Case, ...]:
    declared = cls.conformance.deletes
    return first_of_each_family(default_cases(cls)) if declared is None else declared


def writes_case(cls: type[Store]) -> Case:
    return cls.conformance.writes or default_cases(cls)[0]


def k_beyond_case(cls: type[Store]) -> Case:
    return cls.conformance.k_beyond or default_cases(cls)[0]


def knobs(cls: type[Store]) -> tuple[Knob, ...]:
    return cls.conformance.knobs


def why_not_here(cls: type[Store]) -> str | None:
    """Why this host cannot run the store's conformance tests (they are skipped with it); None when it can."""
    c = cls.conformance
    if cls.input != "vectors":
        return f"{cls.name} indexes {cls.input}, and the conformance data are vectors"
    if c.server_env and not os.environ.get(c.server_env):
        return f"set {c.server_env} (a server's URL) to run the {cls.name} conformance tests"
    return c.unavailable() if c.unavailable else None


def params(rows: Callable[[type[Store]], list[tuple[tuple[Any, ...], str]]], engine: bool = True) -> list[Any]:
    """pytest params over every registered store: ``rows(cls)`` gives (values, id suffix) per test; each is
    ``(store name, *values)``, with the id ``<store>-<suffix>``, skipped with the reason where the store cannot
    run here (unless the test needs no ``engine``)."""
    out = []
    for name in store_names():
        cls = get_store_class(name)
        reason = why_not_here(cls) if engine else None
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        for values, suffix in rows(cls):
            out.append(pytest.param(name, *values, id="-".join(filter(None, [name, suffix])), marks=marks))
    return out


# -- data ----------------------------------------------------------------------------------------------------
@cache
def hard_data() -> SmallData:
    """5000 × 32 unclustered (one Gaussian), angular, 100 queries: HNSW at ef = k misses ~1 in 3 neighbours,
    so recall moves with a search knob (the contract data is easy enough for most settings to score 1.0)."""
    train, test = synthetic(n=5000, dim=32, queries=100, metric="angular", clusters=1, seed=7)
    neighbors, _ = exact_knn(train, test, "angular", 100)
    return SmallData(train, test, neighbors, "angular")


# filter expressions by the one operator each exercises, on the contract attributes (storekit.contract_attributes:
# kind in a..d with 40/30/20/10%, year uniform in 2000..2023, score uniform in [0, 1)): equality and membership on a
# string and an int column, each range operator on one numeric column (the joined ranges below take both)
OPERATOR_FILTERS: dict[str, dict[str, dict]] = {
    "eq": {"str": {"kind": "a"}, "int": {"year": 2003}},
    "in": {"str": {"kind": {"in": ["b", "c"]}}, "int": {"year": {"in": [2001, 2003, 2005]}}},
    "gt": {"float": {"score": {"gt": 0.7}}},
    "gte": {"int": {"year": {"gte": 2010}}},
    "lt": {"float": {"score": {"lt": 0.3}}},
    "lte": {"int": {"year": {"lte": 2010}}},
}
# expressions joining operators: each runs where the store declares all of its operators
JOINED_FILTERS: dict[str, dict] = {
    "and": {"kind": "d", "year": {"gte": 2020}},  # 1.5% of the rows pass
    "range-int": {"year": {"gte": 2010, "lt": 2015}},
    "range-float": {"score": {"gt": 0.2, "lte": 0.7}},
    "none-pass": {"year": {"gt": 3000}},
}


def operators(expression: dict) -> set[str]:
    from vdbbench.core.filters import parse_filter

    return set(parse_filter(expression).ops)


# -- one opened instance per store -----------------------------------------------------------------------------
@contextmanager
def environment_without(names: tuple[str, ...]) -> Iterator[None]:
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def new_workdir() -> Path:
    """Outside pytest's basetemp: a store whose server runs as another user (PostgreSQL, run as root) needs search
    permission on the workdir's parents, which pytest strips from /tmp/pytest-of-<user>."""
    return Path(tempfile.mkdtemp(prefix="vdbbench-conformance-"))


def open_instance(name: str, workdir: Path) -> Store:
    """The store as its conformance declaration says to open it (``options``, ``unset_env`` cleared)."""
    cls = get_store_class(name)
    with environment_without(cls.conformance.unset_env):
        store = cls(workdir, dict(cls.conformance.options))
        store.open()
    return store


class Pool:
    """One opened instance of a store, shared by the suite's tests, and the build it currently holds.

    The suite's tests run store by store (conftest orders them), so asking for another store closes the one
    open: one store's servers run at a time, and each starts once. A test asks for its build by a key; the build
    is made again only when the store holds another (a test that changes the build calls ``spoil``).
    """

    def __init__(self) -> None:
        self.name: str | None = None
        self.store: Store | None = None
        self.workdir: Path | None = None
        self.key: Any = None
        self.value: Any = None

    def get(self, name: str) -> Store:
        if self.name != name:
            self.close()
            self.workdir = new_workdir()
            self.store = open_instance(name, self.workdir)
            self.name = name
        return self.store

    def build(self, name: str, key: Any, make: Callable[[Store], Any]) -> Any:
        """``make(store)``'s result, made once while the store keeps that build."""
        store = self.get(name)
        if self.key != key:
            self.key = None
            self.value = make(store)
            self.key = key
        return self.value

    def spoil(self) -> None:
        self.key = self.value = None

    def close(self) -> None:
        store, workdir = self.store, self.workdir
        self.name = self.store = self.workdir = None
        self.spoil()
        try:
            if store is not None:
                store.close()
        finally:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)


# -- builds the tests share ------------------------------------------------------------------------------------
def contract_build(pool: Pool, name: str, case: Case, metric: str) -> tuple[SmallData, BuildOutcome]:
    """``case`` built on the contract data of ``metric`` and every query searched once (shared while it stands)."""
    out = pool.build(name, ("contract", case, metric),
                     lambda store: build_and_search(store, case.family, metric, case.build, case.search))  # fmt: skip
    return small_data(metric), out


def any_contract_build(pool: Pool, name: str) -> tuple[SmallData, BuildOutcome]:
    """The contract build the store holds now, else its first case on euclidean data."""
    if pool.name == name and pool.key is not None and pool.key[0] == "contract":
        _, case, metric = pool.key
        return small_data(metric), pool.value
    return contract_build(pool, name, default_cases(get_store_class(name))[0], "euclidean")


def asked_params(cls: type[Store], family: str, build: dict, search: dict) -> dict[str, Any]:
    """Every parameter a build and search send, by its portable name (defaults for those not given)."""
    fam = cls.families[family]
    return ({p.name: p.default for p in fam.build} | fam.portable_params(build)
            | {p.name: p.default for p in fam.search} | fam.portable_params(search, "search"))  # fmt: skip
