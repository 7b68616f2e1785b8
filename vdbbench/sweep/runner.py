"""The sweep: for each dataset × store × build parameters, build once, then run every workload on it.

Data flows one way: config → plan (``SweepConfig.plan``) → datasets (prepared, filtered views with
their exact ground truth) → stores (one process each, see vdbbench.execution.worker) → results (one JSON
record per point, written the moment it is measured; schema in vdbbench.core.schema) → report.

What is measured on a build is up to the workloads (vdbbench.workloads: plain k-NN with its
recall targets, filtered k-NN, concurrent clients, churn on a build of its own). A store that fails
is recorded as failed and the sweep moves on; a re-run into the same directory skips measured points.

Behavioural check: when every search setting of one build returns the same answers (on the same
queries) while recall < 1, the engine ignored the search parameter; that build's records are
written again with ``search_param_ignored: true``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vdbbench.charts.fields import params_text
from vdbbench.config import ConfigError, DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.core.phases import PhaseClock, append_timings, phase, time_lines
from vdbbench.core.provenance import collect, redact
from vdbbench.core.results import ResultsFile, is_measured, point_key
from vdbbench.core.schema import SCHEMA_VERSION, validate_record
from vdbbench.data.datasets import Dataset, DatasetError
from vdbbench.execution import quality
from vdbbench.execution.points import Deadline, PointId, describe_error, param_sources, search_ignored, store_inputs
from vdbbench.execution.process import StoreProcess
from vdbbench.execution.worker import StoreWorker, WorkerTimeout
from vdbbench.stores import BuildSpec, get_store_class, store_packages
from vdbbench.sweep.plan import check_compatibility, resolve_dataset
from vdbbench.workloads import BuildRun, workload_named, workloads

log = logging.getLogger(__name__)

# The time summary's name for a workload's part of a store's time, where it is not the workload's own name.
PHASE_NAMES = {"knn": "timed passes", "concurrent": "concurrency"}


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
        self.provenance = collect(raw_config if raw_config is not None else cfg.model_dump(), store_packages())
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
        self.clock = PhaseClock(announce=self.console.print)  # where the sweep's time went (vdbbench.core.phases)

    # -- records -------------------------------------------------------------------
    def record(self, ds: Dataset, s: StoreConfig, build: dict, search: dict, key_override: str | None = None, *,
               workload: str, **fields: Any) -> dict[str, Any]:  # fmt: skip
        """Write one point's record (``ds`` is the view it was scored on: its filter and selectivity go in) for
        ``workload``, the name of the workload that measured it."""
        plan = self.plan
        fields.setdefault("param_source", param_sources({**build, **search}, fields.get("effective")))
        record = {
            "schema": SCHEMA_VERSION,
            "key": key_override or self.key(ds, s, build, search, workload),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "dataset": ds.name,
            "store": s.store,
            "label": s.display_name,
            "index": s.family,
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
            "workload": workload,
            **fields,
            "dataset_info": ds.summary(),
            "provenance": self.provenance,
        }
        validate_record(record, workloads=[w.name for w in workloads()])
        self.results.append(record)
        self.counts[record["status"]] += 1
        self.written.append(record)
        if self.on_record:
            self.on_record(record)
        return record

    def key(self, ds: Dataset, s: StoreConfig, build: dict, search: dict, workload: str) -> str:
        """The point's identity: dataset, store entry (label, family, options), build, search, k, workload, filter."""
        flt = f"{ds.filter.text()} rows {ds.rows_digest}" if ds.filter is not None else None  # same text, other rows
        return point_key(ds.summary(), s.display_name, s.family, build, search, self.cfg.k, workload=workload,
                         filter_text=flt, options=redact(s.options), attributes=self.inserted_kinds(ds))  # fmt: skip

    def fail_points(self, s: StoreConfig, build: dict, points: list[PointId], error: str, **fields: Any) -> None:
        """Record every point of ``points`` (of build ``build``) not measured yet as failed with ``error``."""
        for p in points:
            if p.key not in self.done and not any(r.get("key") == p.key for r in self.written):
                self.record(p.ds, s, build, p.search, key_override=p.key, workload=p.workload, status="failed",
                            error=error, **{**fields, **p.fields})  # fmt: skip

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
        """Measure every pending point; at the end (or on an interruption) print and keep where the time went."""
        try:
            with self.clock.running():
                with phase("data preparation"):  # embedding and ground truth inside it are parts of their own
                    datasets = self.prepare_datasets()  # all checked before any engine starts or output is written
                self.results = ResultsFile(self.out_dir)
                self.previous = self.results.latest()
                self.done = {key for key, record in self.previous.items() if is_measured(record)}
                for dc in self.cfg.datasets:
                    for s in self.cfg.stores:
                        self._run_store(dc, datasets[dc.name], s)
        finally:
            self.clock_out()
        return self.counts

    def clock_out(self) -> None:
        """Print the time summary and append it to ``timings.jsonl`` beside the results; nothing for a sweep refused
        before it started (its config or data failed a check)."""
        if self.results is None:
            return
        summary = self.clock.summary()
        for line in time_lines(summary):
            self.console.print(line)
        if self.out_dir.exists():
            append_timings(self.out_dir, summary)

    def _run_store(self, dc: DatasetConfig, ds: Dataset, s: StoreConfig) -> None:
        """Every build of one store entry on one dataset: the shared build for the workloads measured on it, then
        a build of its own for each workload that needs one (churn)."""

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
        workdir = self.out_dir / "work" / f"{s.display_name}-{s.family}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.console.print(f"[bold]{ds.name}[/] · {s.display_name} {s.family}: {len(todo)} build(s)")
        engine: StoreProcess | None = None
        try:
            for build, group in todo:
                points = [p for w in group for p in w.points(self, ds, s, build)]
                if engine is None:  # first build, or the last one failed: start the engine afresh
                    try:
                        with phase("start and stop", s.display_name):
                            engine = StoreProcess.start(s, workdir, ds, self.cfg)
                    except Exception as e:  # noqa: BLE001 - any engine failure is recorded, not fatal
                        self.fail_points(s, build, points, f"open failed: {describe_error(e)}")
                        continue
                if not self._run_build(engine, ds, s, build, group, points):
                    with phase("start and stop", s.display_name):
                        engine.close()
                    engine = None
        finally:
            if engine is not None:
                with phase("start and stop", s.display_name):
                    engine.close()

    def _run_build(self, engine: StoreProcess, ds: Dataset, s: StoreConfig, build: dict, group: list,
                   points: list[PointId]) -> bool:  # fmt: skip
        """Build once (on the rows the group needs) and run the group's workloads on it; False when anything failed."""

        worker = engine.worker
        rows = min(w.build_rows(s, ds.train.shape[0]) for w in group)  # churn builds on the rows it does not insert
        spec = BuildSpec(family=s.family, metric=ds.metric, dim=ds.dim, params=build, count=rows,
                         attributes=self.inserted_kinds(ds))  # fmt: skip
        self.written = []
        self.observations = {}
        try:
            with engine.sampler.phase("build"), phase("build", s.display_name):
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
        measured: list[tuple[dict[str, Any], dict[str, Any]]] = []  # the plain k-NN points, for the concurrent one
        healthy = True
        for w in group:
            if not worker.alive:
                stopped = "not measured: the store's process was stopped at an earlier point"
                self.fail_points(s, build, w.points(self, ds, s, build), stopped, **build_fields)
                continue
            with phase(PHASE_NAMES.get(w.name, w.name), s.display_name):
                healthy &= w.run(BuildRun(self, engine, ds, s, build, build_fields, self.done, w.name, measured))
        if search_ignored(self.observations):
            self._mark_search_ignored(s)
        if worker.alive:
            try:
                with phase("drop", s.display_name):
                    worker.call("drop", timeout=120)
            except Exception as e:  # noqa: BLE001
                log.warning("dropping %s failed: %s", s.display_name, e)
                healthy = False
        return healthy and worker.alive

    def _mark_search_ignored(self, s: StoreConfig) -> None:
        """Write this build's ranked (single-client k-NN) records again, flagged: its search settings all gave the same
        answers."""
        self.console.print(f"  [red]{s.display_name}: every search setting gave identical answers (recall < 1): "
                           "the engine ignores the search parameter[/]")  # fmt: skip
        for record in [r for r in self.written if r.get("status") == "ok" and workload_named(r["workload"]).ranked]:
            self.results.append({**record, "search_param_ignored": True})

    def _build(self, worker: StoreWorker, ds: Dataset, spec: BuildSpec, s: StoreConfig) -> tuple[float, float]:
        """Create, insert ``spec.count`` rows in batches (timed in the store's process), then build the index
        (timed until searchable).

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
            TextColumn(f"  insert {s.display_name} {params_text(spec.params, '')}"), BarColumn(), MofNCompleteColumn(),
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
        index_s = worker.call("timed_build_index", timeout=deadline.left())
        return insert_s, index_s
