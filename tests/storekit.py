"""Shared store contract checks: every adapter's test file calls these on the same fixed data.

The data is small, seeded and clustered, so every engine builds it in seconds and the
recall floors below are properties of the engine, not of luck.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.datasets import synthetic
from vdbbench.groundtruth import exact_knn
from vdbbench.metrics import recall_at_k
from vdbbench.runner import config_mismatches
from vdbbench.stores import BuildSpec, Store, get_store_class

BASELINES = Path(__file__).with_name("recall_baselines.json")
BASELINE_TOLERANCE = 0.02  # recall may drop this much below the recorded baseline before the test fails
FLOORS = {"flat": 1.0, "hnsw": 0.95, "ivf": 0.99}  # PQ floors are set per store, with a reason


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
    store.finish()
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


def check_baseline(store: str, family: str, metric: str, recall: float) -> None:
    """Fail when recall falls below the recorded baseline by more than the tolerance.

    Set VDBBENCH_UPDATE_BASELINES=1 to record the current value (after checking it is right).
    """
    key = f"{store}/{family}/{metric}"
    baselines = json.loads(BASELINES.read_text()) if BASELINES.exists() else {}
    if os.environ.get("VDBBENCH_UPDATE_BASELINES") == "1":
        baselines[key] = round(recall, 4)
        BASELINES.write_text(json.dumps(dict(sorted(baselines.items())), indent=2) + "\n")
        return
    assert key in baselines, f"no recall baseline for {key}; record one with VDBBENCH_UPDATE_BASELINES=1"
    assert recall >= baselines[key] - BASELINE_TOLERANCE, (
        f"{key}: recall {recall:.4f} fell below baseline {baselines[key]:.4f} - {BASELINE_TOLERANCE}"
    )


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
    kind = "in-process"
    families = {"flat": get_store_class("exact").families["flat"]}
    options_help = {
        "fail_at": "step that raises", "hang_at": "step that hangs", "crash_at": "step that kills the process",
        "password": "a secret that must never reach results", "url": "a URL whose password must never reach results",
        "crash_client": "number of the concurrent client process that dies",
    }  # fmt: skip

    def __init__(self, workdir, options=None):
        super().__init__(workdir, options)
        self._inner = get_store_class("exact")(workdir, options)
        self._fail_at = self.options.get("fail_at")
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

    def insert(self, ids, vectors):
        self._maybe_fail("insert")
        self._inner.insert(ids, vectors)

    def finish(self):
        self._maybe_fail("finish")
        self._inner.finish()

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
