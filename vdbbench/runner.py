"""The sweep: for each dataset × store × build parameters, build once, then run every workload on it.

Data flows one way: config → plan (``SweepConfig.plan``) → datasets (prepared, filtered views with
their exact ground truth) → stores (one process each, see vdbbench.worker) → results (one JSON
record per point, written the moment it is measured; schema in vdbbench.schema) → report.

What is measured on a build is up to the workloads (vdbbench.workloads: plain k-NN with its
recall targets, filtered k-NN, concurrent load, churn on a build of its own). A store that fails
is recorded as failed and the sweep moves on; a re-run into the same directory skips measured points.

Behavioural check: when every search setting of one build returns the same answers (on the same
queries) while recall < 1, the engine ignored the search parameter; that build's records are
written again with ``search_param_ignored: true``.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vdbbench import quality
from vdbbench.config import GENERATED_COLUMN, ConfigError, DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.datasets import Dataset, DatasetError, load_hdf5, prepare, save_hdf5, subsample, synthetic
from vdbbench.filters import check_filter
from vdbbench.metrics import latency_summary, recall_at_k
from vdbbench.provenance import collect, redact
from vdbbench.resources import PeakSampler, dir_bytes, tree_rss
from vdbbench.results import ResultsFile, is_measured, point_key
from vdbbench.schema import SCHEMA_VERSION, validate_record
from vdbbench.stores import ADAPTERS, BuildSpec, Store, get_store_class
from vdbbench.stores.base import unnamable
from vdbbench.worker import RemoteError, StoreWorker, WorkerCrashed, WorkerTimeout, describe, timed_passes

log = logging.getLogger(__name__)


def resolve_dataset(dc: DatasetConfig) -> Dataset:
    """Load (preparing on first use) the dataset a config entry names, subsampled as asked."""
    from vdbbench.datasets import data_dir

    if dc.synthetic is not None:
        s = dc.synthetic
        path = (
            data_dir()
            / "synthetic"
            / (f"{dc.name}-n{s.n}-d{s.dim}-q{s.queries}-{s.metric}-c{s.clusters}-s{s.seed}-dup{s.duplicates}.hdf5")
        )
        if not path.exists():
            train, test = synthetic(s.n, s.dim, s.queries, s.metric, s.clusters, s.seed, s.duplicates)
            save_hdf5(path, train, test, s.metric, attrs={"source": "vdbbench synthetic", **s.model_dump()})
    elif dc.text is not None:
        from vdbbench.embed import build_text_dataset

        path = build_text_dataset(dc.name, **dc.text.model_dump())
    else:
        from vdbbench import downloads, embed  # noqa: F401  (they register the datasets they know by name)

        path = Path(dc.path) if dc.path else prepare(dc.name)
    ds = subsample(load_hdf5(path, dc.name), dc.train_size, dc.test_size)
    if dc.filters is not None and not isinstance(dc.filters, list):  # generated: a column whose ranks set the fraction
        if GENERATED_COLUMN in (ds.attributes or {}):
            raise DatasetError(
                f"filters: the dataset already has an attribute {GENERATED_COLUMN!r}, which the generated selectivity "
                "filters would replace; rename it, or list filter expressions"
            )
        rank = np.random.default_rng(dc.filters.seed).permutation(ds.train.shape[0]).astype(np.int64)
        ds.attributes = {**(ds.attributes or {}), GENERATED_COLUMN: rank}
    return ds


def known_shape(dc: DatasetConfig) -> tuple[int | None, int | None, int | None]:
    """(train rows, dimension, queries) of a dataset entry as far as known without preparing or embedding it."""
    from vdbbench.datasets import dataset_path

    n = dim = queries = None
    if dc.synthetic is not None:
        n, dim, queries = dc.synthetic.n, dc.synthetic.dim, dc.synthetic.queries
    elif dc.text is not None and dc.text.max_passages and dc.text.holdout:
        n, queries = dc.text.max_passages - dc.text.holdout, dc.text.holdout
    else:
        path = Path(dc.path) if dc.path else dataset_path(dc.name)
        if path.exists():  # prepared earlier: read the shapes only
            import h5py

            with h5py.File(path, "r") as f:
                (n, dim), queries = f["train"].shape, f["test"].shape[0]
    n = min(n, dc.train_size) if n and dc.train_size else (dc.train_size or n)
    queries = min(queries, dc.test_size) if queries and dc.test_size else (dc.test_size or queries)
    return n, dim, queries


def planned_points(cfg: SweepConfig) -> list[str]:
    """One line per point the sweep would measure (dataset, store, family, settings, build, workload, search or
    target), worked out from the config alone: no engine starts, nothing is embedded or prepared."""
    from vdbbench.workloads import workloads

    lines = []
    for dc in cfg.datasets:
        shape = known_shape(dc)
        n, dim, queries = shape
        size = f"{n or '?'} vectors" + (f" × {dim}" if dim else "") + (f", {queries} queries" if queries else "")
        lines.append(f"{dc.name} ({size})")
        for s in cfg.stores:
            plan = cfg.plan(s, n, dim)
            head = f"  {dc.name} · {s.display_name} ({s.store}) {s.index} · settings {plan.settings}"
            for build in plan.builds:
                for w in workloads():
                    if w.applies(cfg, dc, s):
                        lines += w.plan_lines(cfg, dc, s, plan, shape, f"{head} · build {params_line(build) or '-'}")
            lines += [f"{head} · note: {note}" for note in plan.notes]
    return lines


def check_compatibility(cfg: SweepConfig, datasets: dict[str, Dataset]) -> None:
    """Reject store × dataset combinations no engine could run (metric, dimension, k, filters, the engine's rules)."""
    from vdbbench.workloads.knn import MIN_SPLIT_QUERIES

    problems: list[str] = []
    entries = {dc.name: (j, dc) for j, dc in enumerate(cfg.datasets)}
    for ds in datasets.values():
        j, dc = entries[ds.name]
        if ds.neighbors.shape[1] < min(cfg.k, ds.train.shape[0]):
            problems.append(
                f"k: {cfg.k} exceeds the {ds.neighbors.shape[1]} true neighbours stored for {ds.name!r}; "
                f"lower k or re-prepare the dataset"
            )
        filters = dc.filter_list(ds.train.shape[0])
        for m, flt in enumerate(filters):
            problems += check_filter(flt, ds.attribute_kinds, f"datasets[{j}].filters[{m}]")
        fields = sorted({f for flt in filters for f in flt.fields})
        problems += [f"datasets[{j}].filters: {problem}" for problem in unnamable(fields)]
        for i, s in enumerate(cfg.stores):
            cls = get_store_class(s.store)
            fam = cls.families[s.index]
            if (cls.input == "text" or s.hybrid) and ds.text is None:
                problems.append(
                    f"stores[{i}]: {'hybrid search' if s.hybrid else s.store} needs the passages' text, and dataset "
                    f"{ds.name!r} has none; use a text dataset (datasets[].text with a corpus)"
                )
                continue
            problems += [f"stores[{i}]: {problem} (datasets[{j}].filters)" for problem in cls.reserved_clashes(fields)]
            for m, flt in enumerate(filters):
                if missing := sorted(flt.ops - cls.filter_ops):
                    able = [n for n in ADAPTERS if flt.ops <= get_store_class(n).filter_ops]
                    problems.append(f"stores[{i}]: {s.store} cannot filter with {missing} (datasets[{j}].filters[{m}]"
                                    f" = {flt.text()}); stores that can: {', '.join(sorted(able))}")  # fmt: skip
            n = ds.train.shape[0]
            plan = cfg.plan(s, n, ds.dim)
            if plan.targets and ds.test.shape[0] < 2 * MIN_SPLIT_QUERIES:
                problems.append(
                    f"stores[{i}].recall_targets: {ds.name!r} has {ds.test.shape[0]} queries; tuning and evaluation "
                    f"need at least {MIN_SPLIT_QUERIES} each (give more queries, or drop recall_targets)"
                )
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
            searches = plan.searches + ([plan.target_base] if plan.targets or s.churn else [])
            for build, search in itertools.product(plan.builds, searches):
                for rule in cls.check_point(s.index, build, search, ds.dim, cfg.k):
                    problem = f"stores[{i}].{rule} (dataset {ds.name!r}, dim {ds.dim}, k {cfg.k})"
                    if problem not in problems:
                        problems.append(problem)
    if problems:
        raise ConfigError("config does not fit the data:\n  " + "\n  ".join(problems))


def store_inputs(s: StoreConfig, ds: Dataset) -> tuple[Any, Any]:
    """What the store indexes and is asked: vectors, or for a text store (bm25) the passage and query texts."""
    if get_store_class(s.store).input == "text":
        return ds.text.passages, ds.text.queries
    return ds.train, ds.test


@dataclass
class PointResult:
    """The measured part of one record."""

    recall: float
    qps: float
    qps_runs: list[float]
    latency: dict[str, float]
    recall_detail: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)


def score_passes(passes: list[tuple], ds: Dataset, k: int, vectors: bool = True) -> PointResult:
    """Median pass by wall time → QPS and latency; recall of that pass's answers (vector stores only:
    a text store's answers are not judged against exact vector neighbours)."""
    walls = [p[0] for p in passes]
    median = passes[int(np.argsort(walls)[len(walls) // 2])]
    if vectors:
        report = recall_at_k(median[2], ds.test, ds.train, ds.neighbors, k, ds.metric, allowed=ds.allowed)
        recall = report.recall
        detail = (report.duplicate_answers, report.short_answers, report.invalid_ids, report.filter_violations)
    else:
        recall, detail = None, (None, None, None, None)
    return PointResult(
        recall=recall,
        qps=len(median[2]) / median[0],
        qps_runs=[len(median[2]) / w for w in walls],
        latency=latency_summary(median[1]),
        recall_detail=dict(
            zip(("duplicate_answers", "short_answers", "invalid_ids", "filter_violations"), detail, strict=True)
        ),  # fmt: skip
        extra={"answers": median[2], "latencies": median[1]},
    )


def measure_search(store: Store, ds: Dataset, queries: list[np.ndarray], k: int, runs: int, warmup: int) -> PointResult:
    """In-process measurement of one search setting (the runner does the same inside the store's process)."""
    return score_passes(timed_passes(store, queries, k, runs, warmup), ds, k)


def answers_digest(answers: list) -> str:
    """One hash of a list of answers, to tell whether two search settings answered identically."""
    h = hashlib.sha1()
    for a in answers:
        h.update(np.asarray(a, dtype=np.int64).tobytes() + b"|")
    return h.hexdigest()


def param_sources(asked: dict[str, Any], effective: dict[str, Any] | None) -> dict[str, str]:
    """``engine`` for each parameter the engine itself reported, else ``sent`` (the harness only sent it)."""
    reported = (effective or {}).get("params") or {}
    return {name: "engine" if reported.get(name) is not None else "sent" for name in asked}


def search_ignored(observations: dict[str, dict[str, tuple[str, float]]]) -> bool:
    """True when, on some query set, two or more search settings gave identical answers, all with recall < 1."""
    for seen in observations.values():
        seen = {k: v for k, v in seen.items() if v[1] is not None}  # text stores have no recall
        if len(seen) >= 2 and len({d for d, _ in seen.values()}) == 1 and max(r for _, r in seen.values()) < 1.0:
            return True
    return False


def config_mismatches(family: str, asked: dict[str, Any], effective: dict[str, Any]) -> list[str]:
    """Differences between what was asked and what the engine reports it built or searches with.

    A parameter the engine does not report is not a mismatch: ``param_sources`` records it as sent.
    """
    out = []
    served = effective.get("family")
    if served and served != family:
        out.append(f"family: asked {family}, engine serves {served}")
    reported = effective.get("params") or {}
    for name, value in asked.items():
        if name in reported and reported[name] is not None and reported[name] != value:
            out.append(f"{name}: asked {value!r}, engine reports {reported[name]!r}")
    return out


@dataclass
class PointId:
    """One point a workload will record: its key, the dataset view it is scored on, its search setting, and
    the identifying fields a failure record needs too (workload, target)."""

    key: str
    ds: Dataset
    search: dict[str, Any]
    fields: dict[str, Any]


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
        self.results: ResultsFile | None = None  # created by run(), once the config has passed every check
        self.provenance = collect(raw_config if raw_config is not None else cfg.model_dump())
        self.on_record = on_record
        self.counts = {"ok": 0, "failed": 0, "skipped": 0, "resumed": 0}
        self.done: set[str] = set()  # keys of points already measured (resume)
        self.previous: dict[str, dict[str, Any]] = {}  # records already in the results file, by key
        self.plan: StorePlan | None = None  # of the store entry being run
        self.views: dict[str, list[Dataset]] = {}  # dataset name → one view per filter, with its exact ground truth
        # dataset name → (columns, kinds) of the attributes its filters use, inserted and indexed with every build
        self._inserted: dict[str, tuple[dict[str, np.ndarray], dict[str, str]]] = {}
        self.written: list[dict[str, Any]] = []  # records of the build being run (for the behavioural check)
        self.observations: dict[str, dict[str, tuple[str, float]]] = {}  # query set → setting → (answers, recall)
        self._bm25_legs: dict[str, quality.Leg] = {}  # per dataset, for hybrid points

    # -- records -------------------------------------------------------------------
    def record(
        self, ds: Dataset, s: StoreConfig, build: dict, search: dict, key_override: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Write one point's record (``ds`` is the view it was scored on: its filter and selectivity go in)."""
        plan = self.plan
        fields.setdefault("param_source", param_sources({**build, **search}, fields.get("effective")))
        fields.setdefault("workload", "filtered" if ds.filter is not None else "knn")
        record = {
            "schema": SCHEMA_VERSION,
            "key": key_override or self.key(ds, s, build, search),
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
            "filter": ds.filter.expression() if ds.filter is not None else None,
            "selectivity": ds.selectivity,
            "attributes": self.inserted_kinds(ds),
            "settings": plan.settings if plan else s.settings or self.cfg.settings,
            "settings_note": plan.notes if plan else [],
            "search_param_ignored": False,
            "target_recall": None,
            "target_reached": None,
            "tuning_queries": None,
            "evaluation_queries": None,
            "build_threads": None,
            "host": self.cfg.host.model_dump() if self.cfg.host else None,
            **fields,
            "dataset_info": ds.summary(),
            "provenance": self.provenance,
        }
        validate_record(record)
        self.results.append(record)
        self.counts[record["status"]] += 1
        self.written.append(record)
        if self.on_record:
            self.on_record(record)
        return record

    def key(self, ds: Dataset, s: StoreConfig, build: dict, search: dict, workload: str | None = None) -> str:
        """The point's identity: dataset, store entry (label, family, options), build, search, k, workload, filter."""
        workload = workload or ("filtered" if ds.filter is not None else "knn")
        flt = f"{ds.filter.text()} rows {ds.rows_digest}" if ds.filter is not None else None  # same text, other rows
        return point_key(ds.summary(), s.display_name, s.index, build, search, self.cfg.k, workload=workload,
                         filter_text=flt, options=redact(s.options), attributes=self.inserted_kinds(ds))  # fmt: skip

    def fail_points(self, s: StoreConfig, build: dict, points: list[PointId], error: str, **fields: Any) -> None:
        """Record every point of ``points`` (of build ``build``) not measured yet as failed with ``error``."""
        for p in points:
            if p.key not in self.done and not any(r.get("key") == p.key for r in self.written):
                self.record(p.ds, s, build, p.search, key_override=p.key, status="failed", error=error,
                            **{**fields, **p.fields})  # fmt: skip

    def bm25_leg(self, ds: Dataset) -> quality.Leg:
        """The bm25 side of hybrid points on ``ds``, measured once per dataset."""
        if ds.name not in self._bm25_legs:
            self._bm25_legs[ds.name] = quality.bm25_leg(ds, self.cfg.k, self.cfg.warmup)
        return self._bm25_legs[ds.name]

    def insert_columns(self, ds: Dataset) -> dict[str, np.ndarray]:
        """The attribute columns the dataset's filters use: inserted with the vectors, indexed by the store."""
        return self._inserted.get(ds.name, ({}, {}))[0]

    def inserted_kinds(self, ds: Dataset) -> dict[str, str]:
        """Name → kind of the attribute columns every build of ``ds`` inserts and indexes (part of the build)."""
        return self._inserted.get(ds.name, ({}, {}))[1]

    # -- sweep ---------------------------------------------------------------------
    def prepare_datasets(self) -> dict[str, Dataset]:
        """Load every dataset and each filter's view (exact filtered ground truth, cached), then check them all
        against the stores: everything is refused before any engine starts or any output is written."""
        datasets = {}
        for i, dc in enumerate(self.cfg.datasets):
            try:
                with self.console.status(f"dataset {dc.name}: loading (prepared with ground truth on first use)"):
                    datasets[dc.name] = resolve_dataset(dc)
            except DatasetError as e:
                raise ConfigError(f"datasets[{i}] ({dc.name}): {e}") from None
        check_compatibility(self.cfg, datasets)
        for dc in self.cfg.datasets:
            ds = datasets[dc.name]
            with self.console.status(f"dataset {dc.name}: exact neighbours under each filter (cached)"):
                self.views[dc.name] = [ds.filtered(f) for f in dc.filter_list(ds.train.shape[0])]
            fields = sorted({f for view in self.views[dc.name] for f in view.filter.fields})
            kinds = ds.attribute_kinds
            self._inserted[dc.name] = ({f: ds.attributes[f] for f in fields}, {f: kinds[f] for f in fields})
            for view in self.views[dc.name]:
                self.console.print(f"{dc.name}: filter {view.filter.text()} passes {view.allowed.sum():,} of "
                                   f"{ds.train.shape[0]:,} rows ({view.selectivity:.3g})")  # fmt: skip
        return datasets

    def run(self) -> dict[str, int]:
        datasets = self.prepare_datasets()  # everything is checked before any engine starts or output is written
        self.results = ResultsFile(self.out_dir)
        self.previous = self.results.latest()
        self.done = {key for key, record in self.previous.items() if is_measured(record)}
        for dc in self.cfg.datasets:
            for s in self.cfg.stores:
                self._run_store(dc, datasets[dc.name], s)
        return self.counts

    def _run_store(self, dc: DatasetConfig, ds: Dataset, s: StoreConfig) -> None:
        """Every build of one store entry on one dataset: the shared build for the workloads measured on it, then
        a build of its own for each workload that needs one (churn)."""
        from vdbbench.workloads import workloads

        self.plan = plan = self.cfg.plan(s, ds.train.shape[0], ds.dim)
        active = [w for w in workloads() if w.applies(self.cfg, dc, s)]
        todo = []  # (build, workloads) that still have points to measure
        for build in plan.builds:
            keys = {w.name: [p.key for p in w.points(self, ds, s, build)] for w in active}
            pending = [w for w in active if any(key not in self.done for key in keys[w.name])]
            self.counts["resumed"] += sum(key in self.done for listed in keys.values() for key in listed)
            shared = [w for w in pending if not w.own_build]
            todo += [(build, shared)] if shared else []
            todo += [(build, [w]) for w in pending if w.own_build]
        if not todo:
            return
        workdir = self.out_dir / "work" / f"{s.display_name}-{s.index}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.console.print(f"[bold]{ds.name}[/] · {s.display_name} {s.index}: {len(todo)} build(s)")
        engine: Engine | None = None
        try:
            for build, group in todo:
                points = [p for w in group for p in w.points(self, ds, s, build)]
                if engine is None:  # first build, or the last one failed: start the engine afresh
                    try:
                        engine = Engine.start(s, workdir, ds, self.cfg)
                    except Exception as e:  # noqa: BLE001 - any engine failure is recorded, not fatal
                        self.fail_points(s, build, points, f"open failed: {describe_error(e)}")
                        continue
                if not self._run_build(engine, ds, s, build, group, points):
                    engine.close()
                    engine = None
        finally:
            if engine is not None:
                engine.close()

    def _run_build(self, engine: Engine, ds: Dataset, s: StoreConfig, build: dict, group: list,
                   points: list[PointId]) -> bool:  # fmt: skip
        """Build once (on the rows the group needs) and run the group's workloads on it; False when anything failed."""
        from vdbbench.workloads import BuildRun

        worker = engine.worker
        rows = min(w.build_rows(s, ds.train.shape[0]) for w in group)  # churn builds on the rows it does not insert
        spec = BuildSpec(family=s.index, metric=ds.metric, dim=ds.dim, params=build, count=rows,
                         attributes=self.inserted_kinds(ds))  # fmt: skip
        self.written = []
        self.observations = {}
        try:
            with engine.sampler.phase("build"):
                insert_s, index_s = self._build(worker, ds, spec, s)
            build_fields = {
                "insert_s": insert_s,
                "index_s": index_s,
                "build_s": insert_s + index_s,
                "effective": worker.call("effective_config", timeout=60),
                "resources": {**worker.call("resources", timeout=60), **engine.build_resources()},
                "engine_version": worker.call("engine_version", timeout=60),
                "build_threads": worker.call("build_threads", timeout=60),
                "engine": worker.call("engine_identity", timeout=60),
            }
        except Exception as e:  # noqa: BLE001
            self.fail_points(
                s, build, points, f"build failed: {describe_error(e)}", timed_out=isinstance(e, WorkerTimeout)
            )
            return False
        run = BuildRun(self, engine, ds, s, build, build_fields, self.done)
        healthy = True
        for w in group:
            if not worker.alive:
                stopped = "not measured: the store's process was stopped at an earlier point"
                self.fail_points(s, build, w.points(self, ds, s, build), stopped, **build_fields)
                continue
            healthy &= w.run(run)
        if search_ignored(self.observations):
            self._mark_search_ignored(s)
        if worker.alive:
            try:
                worker.call("drop", timeout=120)
            except Exception as e:  # noqa: BLE001
                log.warning("dropping %s failed: %s", s.display_name, e)
                healthy = False
        return healthy and worker.alive

    def _mark_search_ignored(self, s: StoreConfig) -> None:
        """Write this build's plain k-NN records again, flagged: its search settings all gave the same answers."""
        self.console.print(f"  [red]{s.display_name}: every search setting gave identical answers (recall < 1): "
                           "the engine ignores the search parameter[/]")  # fmt: skip
        for record in [r for r in self.written if r.get("status") == "ok" and r.get("workload") == "knn"]:
            self.results.append({**record, "search_param_ignored": True})

    def _build(self, worker: StoreWorker, ds: Dataset, spec: BuildSpec, s: StoreConfig) -> tuple[float, float]:
        """Create, insert ``spec.count`` rows in batches (timed in the store's process), then finish (timed until
        searchable).

        The store's process reads each batch from the dataset file; only the row range (and the rows'
        attribute values, when filters use them) is sent.
        """
        deadline = Deadline(self.cfg.limits.build_s)
        worker.call("create", spec, timeout=deadline.left())
        n, batch = spec.count, self.cfg.insert_batch
        texts = store_inputs(s, ds)[0] if get_store_class(s.store).input == "text" else None
        columns = self.insert_columns(ds)
        insert_s = 0.0
        with Progress(
            TextColumn(f"  insert {s.display_name} {params_line(spec.params)}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=self.console, transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task("insert", total=n)
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                if texts is not None:  # a text store's passages are sent; vectors are read from the file
                    ids = np.arange(start, stop, dtype=np.int64)
                    insert_s += worker.call("timed_insert", ids, texts[start:stop], timeout=deadline.left())
                    progress.update(task, advance=len(ids))
                    continue
                attrs = {name: col[start:stop] for name, col in columns.items()} or None
                seconds, rows = worker.call(
                    "timed_insert_rows", str(ds.path), "train", start, stop, attrs, timeout=deadline.left()
                )
                if rows != stop - start:
                    raise RuntimeError(f"the store's process read {rows} rows of {ds.path} for rows {start}:{stop}")
                insert_s += seconds
                progress.update(task, advance=rows)
        index_s = worker.call("timed_finish", timeout=deadline.left())
        return insert_s, index_s


class Engine:
    """One running store process, with its memory sampler and the harness's measured floor cost."""

    def __init__(self, worker: StoreWorker, workdir: Path, floor_us: float, compose_service: str | None) -> None:
        self.worker = worker
        self.workdir = workdir
        self.floor_us = floor_us
        self.compose_service = compose_service
        self.sampler = PeakSampler(self._measured_pids)

    @classmethod
    def start(cls, s: StoreConfig, workdir: Path, ds: Dataset, cfg: SweepConfig) -> Engine:
        worker = StoreWorker(ADAPTERS[s.store], workdir, s.options)
        try:
            worker.call("open", timeout=cfg.limits.build_s)
            worker.call("set_queries", store_inputs(s, ds)[1])
            if s.hybrid is not None and s.hybrid.native:
                worker.call("set_texts", ds.text.passages, timeout=600)
            floor = min(worker.call("timed_noop_passes", cfg.k, 3, timeout=600)) * 1e6
            service = worker.call("compose_service", timeout=60)
        except BaseException:
            worker.close()
            raise
        return cls(worker, workdir, round(floor, 3), service)

    def _measured_pids(self) -> list[int]:
        """Servers the adapter started when there are any (their memory is the store's), else its own process."""
        return sorted(self.worker.owned_pids) or [self.worker.process.pid]

    def _scope(self) -> str:
        return "server processes" if self.worker.owned_pids else "store process"

    def build_resources(self) -> dict[str, Any]:
        return self.container_resources() | {
            "rss_peak_build_bytes": self.sampler.peaks.pop("build", None),
            "rss_after_build_bytes": tree_rss(self._measured_pids()),
            "workdir_bytes": dir_bytes(self.workdir),
            "rss_scope": self._scope(),
            "rss_sample_interval_s": self.sampler.interval,
        }

    def query_resources(self) -> dict[str, Any]:
        return self.container_resources() | {"rss_peak_query_bytes": self.sampler.peaks.pop("query", None)}

    def container_resources(self) -> dict[str, Any]:
        """Memory and volume size of the compose containers serving this store, read from Docker."""
        if not self.compose_service:
            return {}
        from vdbbench.services import container_resources

        figures = container_resources(self.compose_service)
        if not figures:
            return {"container_note": getattr(figures, "reason", "")}
        return {f"container_{name}": value for name, value in figures.items()}

    def close(self) -> None:
        self.sampler.stop()
        self.worker.close()


class Deadline:
    """Seconds left of an optional time limit, for each step of a build or search point."""

    def __init__(self, limit: float | None) -> None:
        self.end = None if limit is None else time.monotonic() + limit
        self.limit = limit

    def left(self) -> float | None:
        return None if self.end is None else max(0.001, self.end - time.monotonic())


def describe_error(e: BaseException) -> str:
    """What went wrong, for a failed record: the worker's own text, else ``Type: message (at file:line)``."""
    if isinstance(e, RemoteError | WorkerTimeout | WorkerCrashed):
        return str(e) if isinstance(e, RemoteError) else f"{type(e).__name__}: {e}"
    return describe(e)


def params_line(p: dict[str, Any]) -> str:
    """``m=16 ef=64``: parameters as the console and the dry run print them ("" when none)."""
    return " ".join(f"{k}={v}" for k, v in p.items())
