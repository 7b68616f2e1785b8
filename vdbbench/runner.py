"""The sweep: for each dataset × store × build parameters, build once, then measure every search setting.

Each point's record is written the moment it is measured. A store that fails is recorded
as failed and the sweep moves on; a re-run into the same directory skips measured points.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vdbbench.config import ConfigError, DatasetConfig, StoreConfig, SweepConfig
from vdbbench.datasets import Dataset, DatasetError, load_hdf5, prepare, save_hdf5, subsample, synthetic
from vdbbench.metrics import latency_summary, recall_at_k
from vdbbench.provenance import collect, redact
from vdbbench.results import ResultsFile, point_key
from vdbbench.stores import BuildSpec, Store, get_store_class

log = logging.getLogger(__name__)


def resolve_dataset(dc: DatasetConfig) -> Dataset:
    """Load (preparing on first use) the dataset a config entry names, subsampled as asked."""
    from vdbbench.datasets import data_dir

    if dc.synthetic is not None:
        s = dc.synthetic
        path = data_dir() / "synthetic" / (
            f"{dc.name}-n{s.n}-d{s.dim}-q{s.queries}-{s.metric}-c{s.clusters}-s{s.seed}-dup{s.duplicates}.hdf5"
        )
        if not path.exists():
            train, test = synthetic(s.n, s.dim, s.queries, s.metric, s.clusters, s.seed, s.duplicates)
            save_hdf5(path, train, test, s.metric, attrs={"source": "vdbbench synthetic", **s.model_dump()})
    else:
        path = Path(dc.path) if dc.path else prepare(dc.name)
    ds = load_hdf5(path, dc.name)
    return subsample(ds, dc.train_size, dc.test_size)


def check_compatibility(cfg: SweepConfig, datasets: dict[str, Dataset]) -> None:
    """Reject store × dataset combinations no engine could run (metric, dimension, k)."""
    problems = []
    for ds in datasets.values():
        if ds.neighbors.shape[1] < min(cfg.k, ds.train.shape[0]):
            problems.append(
                f"k: {cfg.k} exceeds the {ds.neighbors.shape[1]} true neighbours stored for {ds.name!r}; "
                f"lower k or re-prepare the dataset"
            )
        for i, s in enumerate(cfg.stores):
            cls = get_store_class(s.store)
            fam = cls.families[s.index]
            if ds.metric not in fam.metrics:
                problems.append(
                    f"stores[{i}]: {s.store} {s.index} cannot search with metric {ds.metric!r} "
                    f"(dataset {ds.name!r}); it supports {', '.join(fam.metrics)}"
                )
            max_dim = fam.max_dim or cls.max_dim
            if max_dim is not None and ds.dim > max_dim:
                problems.append(
                    f"stores[{i}]: {s.store} {s.index} takes at most {max_dim} dimensions; "
                    f"dataset {ds.name!r} has {ds.dim}"
                )
    if problems:
        raise ConfigError("config does not fit the data:\n  " + "\n  ".join(problems))


@dataclass
class PointResult:
    """The measured part of one record."""

    recall: float
    qps: float
    qps_runs: list[float]
    latency: dict[str, float]
    recall_detail: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)


def measure_search(store: Store, ds: Dataset, queries: list[np.ndarray], k: int, runs: int, warmup: int) -> PointResult:
    """Warm up, then ``runs`` timed passes of one query at a time; the median pass is reported."""
    search = store.search
    for q in queries[: min(warmup, len(queries))]:
        search(q, k)
    passes = []
    clock = time.perf_counter
    for _ in range(runs):
        latencies = np.empty(len(queries))
        answers: list[Any] = [None] * len(queries)
        start = clock()
        for i, q in enumerate(queries):
            t0 = clock()
            answers[i] = search(q, k)
            latencies[i] = clock() - t0
        passes.append((clock() - start, latencies, answers))
    walls = [p[0] for p in passes]
    median = passes[int(np.argsort(walls)[len(walls) // 2])]
    report = recall_at_k(median[2], ds.test, ds.train, ds.neighbors, k, ds.metric)
    return PointResult(
        recall=report.recall,
        qps=len(queries) / median[0],
        qps_runs=[len(queries) / w for w in walls],
        latency=latency_summary(median[1]),
        recall_detail={
            "duplicate_answers": report.duplicate_answers,
            "short_answers": report.short_answers,
            "invalid_ids": report.invalid_ids,
        },
    )


def config_mismatches(family: str, asked: dict[str, Any], effective: dict[str, Any]) -> list[str]:
    """Differences between what was asked and what the engine reports it built."""
    out = []
    served = effective.get("family")
    if served and served != family:
        out.append(f"family: asked {family}, engine serves {served}")
    reported = effective.get("params") or {}
    for name, value in asked.items():
        if name in reported and reported[name] is not None and reported[name] != value:
            out.append(f"{name}: asked {value!r}, engine reports {reported[name]!r}")
    return out


class Sweep:
    """Runs one validated config into one output directory."""

    def __init__(
        self,
        cfg: SweepConfig,
        out_dir: str | Path,
        *,
        raw_config: dict[str, Any] | None = None,
        console: Console | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.console = console or Console(stderr=True)
        self.results = ResultsFile(self.out_dir)
        self.provenance = collect(raw_config if raw_config is not None else cfg.model_dump())
        self.on_record = on_record
        self.counts = {"ok": 0, "failed": 0, "skipped": 0, "resumed": 0}

    # -- records -------------------------------------------------------------------
    def _record(self, ds: Dataset, s: StoreConfig, build: dict, search: dict, **fields: Any) -> None:
        record = {
            "key": self._key(ds, s, build, search),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "dataset": ds.name,
            "store": s.store,
            "label": s.display_name,
            "index": s.index,
            "metric": ds.metric,
            "build": build,
            "search": search,
            "k": self.cfg.k,
            "runs": self.cfg.runs,
            "options": redact(s.options),
            **fields,
            "dataset_info": ds.summary(),
            "provenance": self.provenance,
        }
        self.results.append(record)
        self.counts[record["status"]] += 1
        if self.on_record:
            self.on_record(record)

    def _key(self, ds: Dataset, s: StoreConfig, build: dict, search: dict) -> str:
        return point_key(ds.summary(), s.display_name, s.index, build, search, self.cfg.k)

    def _fail_points(self, ds, s, build, searches, done, error: str, **fields) -> None:
        for sp in searches:
            if self._key(ds, s, build, sp) not in done:
                self._record(ds, s, build, sp, status="failed", error=error, **fields)

    # -- sweep ---------------------------------------------------------------------
    def prepare_datasets(self) -> dict[str, Dataset]:
        datasets = {}
        for i, dc in enumerate(self.cfg.datasets):
            try:
                datasets[dc.name] = resolve_dataset(dc)
            except DatasetError as e:
                raise ConfigError(f"datasets[{i}] ({dc.name}): {e}") from None
        check_compatibility(self.cfg, datasets)
        return datasets

    def run(self) -> dict[str, int]:
        datasets = self.prepare_datasets()  # everything is checked before any engine starts
        done = self.results.measured_keys()
        for ds in datasets.values():
            queries = [np.ascontiguousarray(q) for q in ds.test]
            for s in self.cfg.stores:
                self._run_store(ds, queries, s, done)
        return self.counts

    def _run_store(self, ds: Dataset, queries: list[np.ndarray], s: StoreConfig, done: set[str]) -> None:
        builds, searches = self.cfg.build_grid(s), self.cfg.search_grid(s)
        todo = {
            i: [sp for sp in searches if self._key(ds, s, b, sp) not in done]
            for i, b in enumerate(builds)
        }
        pending = [b for i, b in enumerate(builds) if todo[i]]
        self.counts["resumed"] += len(builds) * len(searches) - sum(len(v) for v in todo.values())
        if not pending:
            return
        workdir = self.out_dir / "work" / f"{s.display_name}-{s.index}"
        workdir.mkdir(parents=True, exist_ok=True)
        store = get_store_class(s.store)(workdir, s.options)
        self.console.print(f"[bold]{ds.name}[/] · {s.display_name} {s.index}: {len(pending)} build(s)")
        try:
            try:
                store.open()
            except Exception as e:  # noqa: BLE001 - any engine failure is recorded, not fatal
                for b in pending:
                    self._fail_points(ds, s, b, searches, done, f"open failed: {_describe(e)}")
                return
            for build in pending:
                self._run_build(store, ds, queries, s, build, searches, done)
        finally:
            try:
                store.close()
            except Exception as e:  # noqa: BLE001
                log.warning("closing %s failed: %s", s.display_name, e)

    def _run_build(self, store, ds, queries, s, build, searches, done) -> None:
        spec = BuildSpec(family=s.index, metric=ds.metric, dim=ds.dim, params=build, count=ds.train.shape[0])
        build_fields: dict[str, Any] = {}
        try:
            insert_s, index_s = self._build(store, ds, spec, s)
            effective = store.effective_config()
            build_fields = {
                "insert_s": insert_s,
                "index_s": index_s,
                "build_s": insert_s + index_s,
                "effective": effective,
                "resources": store.resources(),
                "engine_version": store.engine_version(),
            }
        except Exception as e:  # noqa: BLE001
            self._fail_points(ds, s, build, searches, done, f"build failed: {_describe(e)}", **build_fields)
            self._drop(store, s)
            return
        for sp in searches:
            if self._key(ds, s, build, sp) in done:
                continue
            try:
                store.set_search_params(sp)
                point = measure_search(store, ds, queries, self.cfg.k, self.cfg.runs, self.cfg.warmup)
                effective = store.effective_config()
            except Exception as e:  # noqa: BLE001
                self._record(ds, s, build, sp, status="failed", error=f"search failed: {_describe(e)}",
                             **build_fields)
                continue
            mismatches = config_mismatches(s.index, {**build, **sp}, effective)
            self._record(
                ds, s, build, sp,
                status="ok", error=None,
                recall=point.recall, qps=point.qps, qps_runs=point.qps_runs, **point.latency,
                **point.recall_detail, **{**build_fields, "effective": effective},
                config_mismatch=mismatches,
            )  # fmt: skip
            self.console.print(
                f"  {_params(build)} {_params(sp)} recall={point.recall:.4f} qps={point.qps:,.0f}"
                + (f" [red]MISMATCH {mismatches}[/]" if mismatches else "")
            )
        self._drop(store, s)

    def _build(self, store: Store, ds: Dataset, spec: BuildSpec, s: StoreConfig) -> tuple[float, float]:
        """Create, insert in batches (timed as insert), then finish (timed as index until searchable)."""
        store.create(spec)
        n, batch = ds.train.shape[0], self.cfg.insert_batch
        insert_s = 0.0
        with Progress(
            TextColumn(f"  insert {s.display_name} {_params(spec.params)}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=self.console, transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task("insert", total=n)
            for start in range(0, n, batch):
                ids = np.arange(start, min(start + batch, n), dtype=np.int64)
                t0 = time.perf_counter()
                store.insert(ids, ds.train[start : start + batch])
                insert_s += time.perf_counter() - t0
                progress.update(task, advance=len(ids))
        t0 = time.perf_counter()
        store.finish()
        return insert_s, time.perf_counter() - t0

    def _drop(self, store: Store, s: StoreConfig) -> None:
        try:
            store.drop()
        except Exception as e:  # noqa: BLE001
            log.warning("dropping %s failed: %s", s.display_name, e)


def _describe(e: BaseException) -> str:
    last = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(e).__name__}: {redact(str(e))}{where}"


def _params(p: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in p.items())
