"""The contract data and checks the conformance suite (tests/conformance) and the store test files share.

The data is small, seeded and clustered, so every engine builds it in seconds and the recall floors each
store declares (Store.conformance) are properties of the engine, not of luck.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.metrics import recall_at_k
from vdbbench.data.datasets import synthetic
from vdbbench.data.groundtruth import exact_knn
from vdbbench.execution.points import config_mismatches
from vdbbench.stores import BuildSpec, Store, get_store_class


@dataclass
class SmallData:
    train: np.ndarray
    test: np.ndarray
    neighbors: np.ndarray
    metric: str


@cache
def small_data(metric: str = "euclidean", n: int = 2000, dim: int = 32, queries: int = 50) -> SmallData:
    """The fixed contract dataset: 2000 × 32, 50 queries, 20 clusters, seed 7."""
    train, test = synthetic(n=n, dim=dim, queries=queries, metric=metric, clusters=20, seed=7)
    if metric == "ip":  # unequal norms, so inner product differs from cosine
        scale = np.random.default_rng(7).uniform(0.5, 2.0, size=(n, 1)).astype(np.float32)
        train = train * scale
    neighbors, _ = exact_knn(train, test, metric, 100)
    return SmallData(train, test, neighbors, metric)


@dataclass
class BuildOutcome:
    recall: float
    answers: list[np.ndarray]
    effective: dict[str, Any]
    mismatches: list[str]
    resources: dict[str, Any]


def build_and_search(
    store: Store,
    family: str,
    metric: str = "euclidean",
    build: dict[str, Any] | None = None,
    search: dict[str, Any] | None = None,
    k: int = 10,
    data: SmallData | None = None,
    batch: int = 500,
) -> BuildOutcome:
    """Build ``family`` on the contract data in an opened ``store``, search every query, score it."""
    data = data or small_data(metric)
    fam = type(store).families[family]
    # engine spellings (M, ef_search, ...) are accepted as in a config, and renamed to the portable names
    build_params = {p.name: p.default for p in fam.build} | fam.portable_params(build or {})
    search_params = {p.name: p.default for p in fam.search} | fam.portable_params(search or {}, "search")
    store.create(BuildSpec(family, metric, data.train.shape[1], build_params, count=data.train.shape[0]))
    for start in range(0, data.train.shape[0], batch):
        ids = np.arange(start, min(start + batch, data.train.shape[0]), dtype=np.int64)
        store.insert(ids, data.train[start : start + batch])
    store.build_index()
    store.set_search_params(search_params)
    answers = [np.asarray(store.search(q, k)) for q in data.test]
    effective = store.effective_config()
    report = recall_at_k(answers, data.test, data.train, data.neighbors, k, metric)
    return BuildOutcome(
        report.recall,
        answers,
        effective,
        config_mismatches(family, build_params | search_params, effective),
        store.resources(),
    )


def assert_answers_valid(outcome: BuildOutcome, k: int, n: int) -> None:
    for ans in outcome.answers:
        assert ans.dtype.kind == "i", f"ids must be integers, got {ans.dtype}"
        assert len(ans) == min(k, n), f"expected {min(k, n)} ids, got {len(ans)}"
        assert len(set(ans.tolist())) == len(ans), "an answer repeats an id"
        assert ans.min() >= 0 and ans.max() < n, "an id is outside the dataset's row numbers"


def open_store(name: str, workdir: Path, options: dict[str, Any] | None = None) -> Store:
    store = get_store_class(name)(workdir, options or {})
    store.open()
    return store


def files_left(workdir: Path) -> list[str]:
    """Files under a store's workdir after drop() and close(): should be none of the engine's data."""
    return sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*") if p.is_file())


class FailingStore(Store):
    """The exact store, made to raise at a chosen step: tests how the runner records failures.

    Not a stand-in for any engine: real-engine failures are tested with the engines themselves.
    """

    name = "failing"
    mode = "in-process"
    families = {"flat": get_store_class("exact").families["flat"]}
    filter_ops = get_store_class("exact").filter_ops
    options_help = {
        "fail_at": "step that raises", "hang_at": "step that hangs", "crash_at": "step that kills the process",
        "password": "a secret that must never reach results", "url": "a URL whose password must never reach results",
        "crash_client": "number of the concurrent client process that dies", "seed_note": "changes nothing",
    }  # fmt: skip

    def __init__(self, workdir, options=None):
        super().__init__(workdir, options)
        self._inner = get_store_class("exact")(workdir, options)
        self._fail_at = self.options.get("fail_at") or os.environ.get("FAILING_STORE_FAIL_AT")
        self._client_number: int | None = None
        self._searches = 0

    def _maybe_fail(self, step: str) -> None:
        if self._fail_at == step:
            raise RuntimeError(f"engine refused {step}")
        if self.options.get("hang_at") == step:
            time.sleep(3600)  # a hung engine: only the time limit can stop it
        if self.options.get("crash_at") == step:
            os._exit(3)  # an engine that dies hard, as a segfaulting client would

    def open(self):
        self._maybe_fail("open")

    def create(self, spec):
        self._maybe_fail("create")
        self._inner.create(spec)

    def insert(self, ids, vectors, attributes=None):
        self._maybe_fail("insert")
        self._inner.insert(ids, vectors, attributes)

    def set_filter(self, flt):
        if flt is not None:
            self._maybe_fail("set_filter")
        super().set_filter(flt)
        self._inner.set_filter(flt)

    def build_index(self):
        self._maybe_fail("build_index")
        self._inner.build_index()

    def search(self, query, k):
        self._maybe_fail("search")
        if self._client_number is not None and self._client_number == self.options.get("crash_client"):
            self._searches += 1
            if self._searches > 20:  # past the warm-up: dies inside the timed closed loop
                os._exit(3)
        return self._inner.search(query, k)

    def client_handle(self):
        """Shared readers only when a test asks for a crashing client (option crash_client: its number)."""
        if "crash_client" not in self.options:
            return None
        return {"inner": self._inner.client_handle(), "spec": self.spec}

    def attach(self, handle):
        self._inner.attach(handle["inner"])
        self.spec = handle["spec"]
        self._client_number = len(list(self.workdir.glob("client-*"))) + 1  # clients attach one after another
        (self.workdir / f"client-{self._client_number}").touch()

    def effective_config(self):
        return self._inner.effective_config()

    def drop(self):
        self._inner.drop()


# -- filters and deletes: the contract every store with filter_ops / supports_delete meets -----------------
FILTERS = {  # expression → what it exercises; selectivities on the contract data are printed by filter_cases()
    "eq-str": {"kind": "a"},
    "in-str": {"kind": {"in": ["b", "c"]}},
    "range-int": {"year": {"gte": 2010, "lt": 2015}},
    "range-float": {"score": {"gt": 0.2, "lte": 0.7}},
    "eq-int": {"year": 2003},
    "and": {"kind": "d", "year": {"gte": 2020}},
    "none-pass": {"year": {"gt": 3000}},
}


@cache
def contract_attributes(n: int = 2000) -> dict[str, np.ndarray]:
    """Seeded attribute columns of the contract data: a string label, an int year, a float score."""
    rng = np.random.default_rng(11)
    return {
        "kind": rng.choice(np.array(["a", "b", "c", "d"]), size=n, p=[0.4, 0.3, 0.2, 0.1]),
        "year": rng.integers(2000, 2024, size=n).astype(np.int64),
        "score": rng.random(n),
    }


@dataclass
class FilterOutcome:
    recall: float
    selectivity: float
    violations: int  # returned ids that fail the filter
    short: int  # answers shorter than min(k, passing rows)
    answers: list[np.ndarray]


def build_with_attributes(store: Store, family: str, build=None, search=None, data=None, rows=None,
                          batch: int = 500) -> SmallData:  # fmt: skip
    """Build ``family`` over the contract data (rows ``rows``, default all) with its attribute columns."""
    data = data or small_data("euclidean")
    attrs = contract_attributes(data.train.shape[0])
    fam = type(store).families[family]
    build_params = {p.name: p.default for p in fam.build} | fam.portable_params(build or {})
    search_params = {p.name: p.default for p in fam.search} | fam.portable_params(search or {}, "search")
    rows = np.arange(data.train.shape[0]) if rows is None else np.asarray(rows)
    kinds = {"kind": "str", "year": "int", "score": "float"}
    store.create(BuildSpec(family, data.metric, data.train.shape[1], build_params, count=len(rows), attributes=kinds))
    for start in range(0, len(rows), batch):
        ids = rows[start : start + batch].astype(np.int64)
        store.insert(ids, data.train[ids], {name: col[ids] for name, col in attrs.items()})
    store.build_index()
    store.set_search_params(search_params)
    return data


def filtered_search(store: Store, expression: dict, data: SmallData, k: int = 10, batch: bool = False) -> FilterOutcome:
    """Search every contract query under ``expression`` (in one ``search_batch`` call with ``batch``); score against
    exact filtered neighbours."""
    from vdbbench.core.filters import mask, parse_filter

    flt = parse_filter(expression)
    allowed = mask(flt, contract_attributes(data.train.shape[0]))
    store.set_filter(flt)
    try:
        found = store.search_batch(data.test, k) if batch else [store.search(q, k) for q in data.test]
        answers = [np.asarray(a, dtype=np.int64) for a in found]
    finally:
        store.set_filter(None)
    return score_restricted(answers, data, allowed, k)


def score_restricted(answers: list[np.ndarray], data: SmallData, allowed: np.ndarray, k: int) -> FilterOutcome:
    """Recall of ``answers`` against exact neighbours among the ``allowed`` rows only."""
    ids = np.flatnonzero(allowed)
    if ids.size:
        pos, _ = exact_knn(data.train[ids], data.test, data.metric, 100)
        truth = ids[pos]
    else:
        truth = np.empty((len(data.test), 0), dtype=np.int64)
    report = recall_at_k(answers, data.test, data.train, truth, k, data.metric, allowed=allowed)
    expected = min(k, int(allowed.sum()))
    short = sum(len(set(a.tolist())) < expected for a in answers)
    return FilterOutcome(report.recall, float(allowed.mean()), report.filter_violations, short, answers)


def check_filters(store: Store, family: str, floor: float, build=None, search=None, k: int = 10,
                  cases: dict | None = None) -> dict[str, FilterOutcome]:  # fmt: skip
    """Every contract filter on a fresh build: no answer may hold a row that fails the filter, recall against
    exact filtered neighbours reaches ``floor`` (the empty filter must answer nothing), and the engine's
    effective config names an index (or "none") for every attribute column."""
    data = build_with_attributes(store, family, build, search)
    effective = store.effective_config()
    assert set(effective.get("attribute_indexes") or {}) == {"kind", "year", "score"}, effective
    out = {}
    for name, expression in (cases or FILTERS).items():
        got = filtered_search(store, expression, data, k)
        assert got.violations == 0, f"{name}: {got.violations} returned ids fail the filter {expression}"
        if got.selectivity == 0:
            assert all(len(a) == 0 for a in got.answers), f"{name}: nothing passes, yet ids were returned"
        assert got.recall >= floor, f"{name} ({got.selectivity:.3f} pass): recall {got.recall:.4f} < {floor}"
        out[name] = got
    unfiltered = [np.asarray(store.search(q, k)) for q in data.test]
    assert recall_at_k(unfiltered, data.test, data.train, data.neighbors, k, data.metric).recall >= floor, (
        "set_filter(None) must make searches unfiltered again"
    )
    return out


def check_delete_and_insert(store: Store, family: str, floor: float, build=None, search=None, k: int = 10,
                            settle_s: float = 30.0) -> dict[str, Any]:  # fmt: skip
    """Build on 90% of the contract data, delete 10% of the built rows (chosen among the queries' true
    neighbours, so a lingering one would show), insert the held-back 10%: no deleted id may come back, an
    inserted row must be found by searching for itself, and recall against the live rows reaches ``floor``."""
    data = small_data("euclidean")
    n = data.train.shape[0]
    built = np.arange(n - n // 10)
    build_with_attributes(store, family, build, search, rows=built)
    near = np.unique(data.neighbors[:, :3])
    deleted = near[near < built.size][: n // 10]
    store.delete(deleted)
    attrs = contract_attributes(n)
    fresh = np.arange(built.size, n, dtype=np.int64)
    store.insert(fresh, data.train[fresh], {name: col[fresh] for name, col in attrs.items()})
    live = np.zeros(n, dtype=bool)
    live[built] = True
    live[deleted] = False
    live[fresh] = True
    start, found = time.monotonic(), False
    while not found and time.monotonic() - start < settle_s:  # freshness: engines may index inserts in the background
        found = int(fresh[-1]) in np.asarray(store.search(data.train[fresh[-1]], k)).tolist()
        if not found:
            time.sleep(0.05)
    answers = [np.asarray(store.search(q, k), dtype=np.int64) for q in data.test]
    got = score_restricted(answers, data, live, k)
    returned = sum(bool(np.isin(a, deleted).any()) for a in answers)
    assert returned == 0, f"{returned} answers hold a deleted id"
    assert found, f"an inserted row was not searchable {settle_s:.0f} s after its insert returned"
    assert got.recall >= floor, f"recall on the live rows {got.recall:.4f} < {floor}"
    return {"recall_live": got.recall, "deleted": len(deleted), "freshness_s": time.monotonic() - start}


def check_searches_beside_writes(store: Store, family: str, build=None, search=None, k: int = 10) -> int:
    """For stores declaring ``concurrent_writes``: one thread deletes and inserts through the adapter while this
    one searches without pause; no call may fail, every answer must be whole, and once the writer is done no
    deleted id may come back. Returns how many searches ran while the writer was at work."""
    import threading

    data = small_data("euclidean")
    n = data.train.shape[0]
    built = np.arange(n - n // 10)
    build_with_attributes(store, family, build, search, rows=built)
    deleted = np.unique(data.neighbors[:, :3])
    deleted = deleted[deleted < built.size][:100]
    fresh = np.arange(built.size, n, dtype=np.int64)
    attrs = contract_attributes(n)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for part in np.array_split(fresh, 5):
                store.insert(part, data.train[part], {name: col[part] for name, col in attrs.items()})
            store.delete(deleted)
        except BaseException as e:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    beside = 0
    while writer.is_alive():
        answer = store.search(data.test[beside % len(data.test)], k)
        assert len(answer) == k, f"a search beside the writes answered {len(answer)} ids"
        beside += 1
    writer.join()
    assert not errors, f"the writing thread failed: {errors[0]!r}"
    answers = [np.asarray(store.search(q, k)) for q in data.test]
    assert not any(np.isin(a, deleted).any() for a in answers), "a deleted id came back after the writes"
    return beside
