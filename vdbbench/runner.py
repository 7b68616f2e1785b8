"""The sweep: for each dataset × store × build parameters, build once, then measure every search setting.

Each point's record is written the moment it is measured. A store that fails is recorded
as failed and the sweep moves on; a re-run into the same directory skips measured points.

Recall targets: the test queries are split (seed 0) into a tuning half and an evaluation half
(``query_split``). For each build and target, the family's main search knob (ef / nprobe) is
searched on the tuning half, untimed: doubling from its lowest allowed value until the target is
reached, then bisection down to the cheapest value that reaches it. That value is then measured
with the normal timed loop on the evaluation half only. A target no value reaches is recorded at
the value with the best tuning recall, ``target_reached: false``.

Behavioural check: when every search setting of one build returns the same answers (on the same
queries) while recall < 1, the engine ignored the search parameter; that build's records are
written again with ``search_param_ignored: true``.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
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
from vdbbench.config import ConfigError, DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.datasets import Dataset, DatasetError, load_hdf5, prepare, save_hdf5, subsample, synthetic
from vdbbench.load import LoadFailed, client_bound, measure_concurrency
from vdbbench.metrics import latency_summary, recall_at_k
from vdbbench.provenance import collect, redact
from vdbbench.quality import is_labelled
from vdbbench.resources import PeakSampler, dir_bytes, tree_rss
from vdbbench.results import ResultsFile, is_measured, point_key
from vdbbench.stores import ADAPTERS, BuildSpec, Store, get_store_class
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
    ds = load_hdf5(path, dc.name)
    return subsample(ds, dc.train_size, dc.test_size)


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
    """One line per point the sweep would measure (dataset, store, family, settings, build, search or
    target), worked out from the config alone: no engine starts, nothing is embedded or prepared."""
    lines = []
    for dc in cfg.datasets:
        n, dim, queries = known_shape(dc)
        size = f"{n or '?'} vectors" + (f" × {dim}" if dim else "") + (f", {queries} queries" if queries else "")
        lines.append(f"{dc.name} ({size})")
        for s in cfg.stores:
            plan = cfg.plan(s, n, dim)
            head = f"  {dc.name} · {s.display_name} ({s.store}) {s.index} · settings {plan.settings}"
            fused = []
            if s.hybrid:
                fused.append(f"{s.hybrid.fusion} fusion with bm25")
                fused += ["the store's own hybrid search"] if s.hybrid.native else []
            for build in plan.builds:
                for sp in plan.searches:
                    point = f"{head} · build {_params(build) or '-'} · search {_params(sp) or '-'}"
                    lines += [point, *(f"{point} · {f}" for f in fused)]
                for t in plan.targets:
                    split = f"{queries // 2} tune / {queries - queries // 2} evaluate" if queries else "half / half"
                    base = _params({k: v for k, v in plan.target_base.items() if k != plan.knob})
                    lines.append(f"{head} · build {_params(build) or '-'} · target recall {t}: tune {plan.knob} "
                                 f"({split})" + (f", with {base}" if base else ""))  # fmt: skip
                if cfg.concurrency:
                    cc = cfg.concurrency
                    lines.append(
                        f"{head} · build {_params(build) or '-'} · concurrency {cc.engine}: "
                        f"{', '.join(map(str, cc.clients))} clients × {cc.duration_s:g} s at the fastest setting "
                        f"reaching recall {cc.min_recall} (skipped where the store cannot be shared)"
                    )
            lines += [f"{head} · note: {note}" for note in plan.notes]
    return lines


def check_compatibility(cfg: SweepConfig, datasets: dict[str, Dataset]) -> None:
    """Reject store × dataset combinations no engine could run (metric, dimension, k, the engine's own rules)."""
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
            if (cls.input == "text" or s.hybrid) and ds.text is None:
                problems.append(
                    f"stores[{i}]: {'hybrid search' if s.hybrid else s.store} needs the passages' text, and dataset "
                    f"{ds.name!r} has none; use a text dataset (datasets[].text with a corpus)"
                )
                continue
            if cfg.plan(s).targets and ds.test.shape[0] < 2 * MIN_SPLIT_QUERIES:
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
            n = ds.train.shape[0]
            for build, search in itertools.product(cfg.build_grid(s, n, ds.dim), cfg.search_grid(s, n, ds.dim)):
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
        report = recall_at_k(median[2], ds.test, ds.train, ds.neighbors, k, ds.metric)
        recall, detail = report.recall, (report.duplicate_answers, report.short_answers, report.invalid_ids)
    else:
        recall, detail = None, (None, None, None)
    return PointResult(
        recall=recall,
        qps=len(median[2]) / median[0],
        qps_runs=[len(median[2]) / w for w in walls],
        latency=latency_summary(median[1]),
        recall_detail=dict(zip(("duplicate_answers", "short_answers", "invalid_ids"), detail, strict=True)),
        extra={"answers": median[2], "latencies": median[1]},
    )


def measure_search(store: Store, ds: Dataset, queries: list[np.ndarray], k: int, runs: int, warmup: int) -> PointResult:
    """In-process measurement of one search setting (the runner does the same inside the store's process)."""
    return score_passes(timed_passes(store, queries, k, runs, warmup), ds, k)


SPLIT_SEED = 0
MIN_SPLIT_QUERIES = 10  # each of the tuning and evaluation sets holds at least this many queries
KNOB_MAX = {"ef": 2048, "nprobe": 4096}  # upper end of the tuning range where the engine sets none lower


def split_id(n: int) -> str:
    """The name of the tuning/evaluation split of ``n`` queries, part of a target point's key."""
    return f"seed{SPLIT_SEED}-half-of-{n}"


def query_split(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Disjoint tuning and evaluation query rows (half each, seeded), and an id naming the split."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    half = n // 2
    return np.sort(order[:half]), np.sort(order[half:]), split_id(n)


def query_subset(ds: Dataset, rows: np.ndarray) -> Dataset:
    """``ds`` with only the queries ``rows`` (and their ground truth), to score one query set."""
    return Dataset(ds.name, ds.train, ds.test[rows], ds.neighbors[rows], ds.distances[rows], ds.metric, ds.path,
                   ds.sha256, ds.attrs)  # fmt: skip


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
        self.previous: dict[str, dict[str, Any]] = {}  # records already in the results file, by key
        self.plan: StorePlan | None = None  # of the store entry being run
        self.written: list[dict[str, Any]] = []  # records of the build being run (for the behavioural check)
        self._bm25_legs: dict[str, quality.Leg] = {}  # per dataset, for hybrid points

    # -- records -------------------------------------------------------------------
    def _record(
        self, ds: Dataset, s: StoreConfig, build: dict, search: dict, key_override: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        plan = self.plan
        fields.setdefault("param_source", param_sources({**build, **search}, fields.get("effective")))
        record = {
            "key": key_override or self._key(ds, s, build, search),
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
        self.results.append(record)
        self.counts[record["status"]] += 1
        self.written.append(record)
        if self.on_record:
            self.on_record(record)
        return record

    def _key(self, ds: Dataset, s: StoreConfig, build: dict, search: dict) -> str:
        return point_key(ds.summary(), s.display_name, s.index, build, search, self.cfg.k)

    def _target_key(self, ds: Dataset, s: StoreConfig, build: dict, target: float) -> str:
        """Key of a recall-target point: the target and the query split, not the setting it chose."""
        return self._key(ds, s, build, {"target_recall": target, "split": split_id(ds.test.shape[0])})

    def _fail_points(self, ds, s, build, searches, done, error: str, **fields) -> None:
        for sp in searches:
            if self._key(ds, s, build, sp) not in done:
                self._record(ds, s, build, sp, status="failed", error=error, **fields)
        for t in self.plan.targets if self.plan else []:
            key = self._target_key(ds, s, build, t)
            if key not in done:
                self._record(ds, s, build, {}, key_override=key, status="failed", error=error, target_recall=t,
                             **fields)  # fmt: skip

    # -- sweep ---------------------------------------------------------------------
    def prepare_datasets(self) -> dict[str, Dataset]:
        datasets = {}
        for i, dc in enumerate(self.cfg.datasets):
            try:
                with self.console.status(f"dataset {dc.name}: loading (prepared with ground truth on first use)"):
                    datasets[dc.name] = resolve_dataset(dc)
            except DatasetError as e:
                raise ConfigError(f"datasets[{i}] ({dc.name}): {e}") from None
        check_compatibility(self.cfg, datasets)
        return datasets

    def run(self) -> dict[str, int]:
        datasets = self.prepare_datasets()  # everything is checked before any engine starts or output is written
        self.results = ResultsFile(self.out_dir)
        self.previous = self.results.latest()
        done = {key for key, record in self.previous.items() if is_measured(record)}
        for ds in datasets.values():
            for s in self.cfg.stores:
                self._run_store(ds, s, done)
        return self.counts

    def _run_store(self, ds: Dataset, s: StoreConfig, done: set[str]) -> None:
        self.plan = plan = self.cfg.plan(s, ds.train.shape[0], ds.dim)
        builds, searches = plan.builds, plan.searches
        todo = {i: [sp for sp in searches if self._key(ds, s, b, sp) not in done] for i, b in enumerate(builds)}
        for i, b in enumerate(builds):
            todo[i] += [{"target": t} for t in plan.targets if self._target_key(ds, s, b, t) not in done]
        if self.cfg.concurrency:
            for i, b in enumerate(builds):
                if self._load_key(ds, s, b) not in done:
                    todo[i].append(None)  # the load measurement is still to do for this build
        pending = [b for i, b in enumerate(builds) if todo[i]]
        self.counts["resumed"] += len(builds) * (len(searches) + len(plan.targets)) - sum(
            len([sp for sp in v if sp is not None]) for v in todo.values()
        )
        if not pending:
            return
        workdir = self.out_dir / "work" / f"{s.display_name}-{s.index}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.console.print(f"[bold]{ds.name}[/] · {s.display_name} {s.index}: {len(pending)} build(s)")
        engine: Engine | None = None
        try:
            for build in pending:
                if engine is None:  # first build, or the last one failed: start the engine afresh
                    try:
                        engine = Engine.start(s, workdir, ds, self.cfg)
                    except Exception as e:  # noqa: BLE001 - any engine failure is recorded, not fatal
                        self._fail_points(ds, s, build, searches, done, f"open failed: {_describe(e)}")
                        continue
                if not self._run_build(engine, ds, s, build, searches, done):
                    engine.close()
                    engine = None
        finally:
            if engine is not None:
                engine.close()

    def _run_build(self, engine: Engine, ds: Dataset, s: StoreConfig, build, searches, done) -> bool:
        """Build once and measure every pending search point; False when anything failed."""
        worker = engine.worker
        spec = BuildSpec(family=s.index, metric=ds.metric, dim=ds.dim, params=build, count=ds.train.shape[0])
        build_fields: dict[str, Any] = {}
        self.written = []
        observations: dict[str, dict[str, tuple[str, float]]] = {}  # query set → setting → (answers, recall)
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
            timed_out = isinstance(e, WorkerTimeout)
            self._fail_points(ds, s, build, searches, done, f"build failed: {_describe(e)}", timed_out=timed_out)
            return False
        healthy = True
        measured: list[tuple[dict, dict]] = []
        for sp in searches:
            if self._key(ds, s, build, sp) in done:
                previous = self.previous.get(self._key(ds, s, build, sp))
                if previous:
                    measured.append((sp, previous))
                continue
            if not worker.alive:
                self._record(
                    ds,
                    s,
                    build,
                    sp,
                    status="failed",
                    **build_fields,
                    error="not measured: the store's process was stopped at an earlier point",
                )
                continue
            try:
                with engine.sampler.phase("query"):
                    fields = self._measure_point(engine, ds, s, build, sp)
                observations.setdefault("all", {})[repr(sp)] = (fields.pop("answers_digest"), fields["recall"])
                fields["resources"] = {**build_fields["resources"], **engine.query_resources()}
            except Exception as e:  # noqa: BLE001
                healthy = False
                self._record(
                    ds,
                    s,
                    build,
                    sp,
                    status="failed",
                    error=f"search failed: {_describe(e)}",
                    timed_out=isinstance(e, WorkerTimeout),
                    **build_fields,
                )
                continue
            self._record(ds, s, build, sp, status="ok", error=None, **{**build_fields, **fields})
            measured.append((sp, fields))
            recall_text = f" recall={fields['recall']:.4f}" if fields["recall"] is not None else ""
            quality_text = f" ndcg@10={fields['ndcg@10']:.4f}" if "ndcg@10" in fields else ""
            self.console.print(
                f"  {_params(build)} {_params(sp)}{recall_text}{quality_text} qps={fields['qps']:,.0f}"
                + (f" [red]MISMATCH {fields['config_mismatch']}[/]" if fields["config_mismatch"] else "")
            )
        if self.plan.targets and worker.alive:
            healthy &= self._run_targets(engine, ds, s, build, build_fields, done, measured, observations)
        if search_ignored(observations):
            self._mark_search_ignored(s)
        if self.cfg.concurrency and worker.alive and self._load_key(ds, s, build) not in done:
            healthy &= self._run_load(engine, ds, s, build, measured, build_fields)
        if worker.alive:
            try:
                worker.call("drop", timeout=120)
            except Exception as e:  # noqa: BLE001
                log.warning("dropping %s failed: %s", s.display_name, e)
                healthy = False
        return healthy and worker.alive

    def _load_key(self, ds: Dataset, s: StoreConfig, build: dict) -> str:
        return self._key(ds, s, build, {"concurrency": self.cfg.concurrency.clients})

    def _run_load(self, engine: Engine, ds: Dataset, s: StoreConfig, build, measured, build_fields) -> bool:
        """Concurrent clients at the fastest search setting reaching ``min_recall`` (else the most accurate)."""
        cc = self.cfg.concurrency
        ok = [(sp, f) for sp, f in measured if f.get("recall") is not None]
        if not ok:
            return True
        reaching = [m for m in ok if m[1]["recall"] >= cc.min_recall]
        sp, chosen = max(reaching, key=lambda m: m[1]["qps"]) if reaching else max(ok, key=lambda m: m[1]["recall"])
        rule = f"fastest setting with recall >= {cc.min_recall}" if reaching else "most accurate setting"
        key = self._load_key(ds, s, build)
        base = {
            "kind": "concurrency",
            "build": build,
            "search": sp,
            "chosen_by": rule,
            "chosen_recall": chosen["recall"],
            "chosen_qps": chosen["qps"],
        }
        try:
            handle = engine.worker.call("client_handle", timeout=600)
            if handle is None:
                reason = get_store_class(s.store).single_process_reason
                self._record_load(
                    ds,
                    s,
                    key,
                    base,
                    status="skipped",
                    error=(
                        f"{s.store} cannot be searched from several processes at once ({reason}), "
                        "so only single-client figures exist"
                    ),
                    **build_fields,
                )
                return True
            levels = measure_concurrency(
                ADAPTERS[s.store],
                engine.workdir,
                s.options,
                handle,
                ds.test,
                sp,
                self.cfg.k,
                cc.clients,
                cc.duration_s,
                self.cfg.warmup,
                get_store_class(s.store).kind,
                cc.engine,
                cc.address,
            )
        except LoadFailed as e:  # the client counts measured before the failure are kept
            self._record_load(ds, s, key, base, status="failed", **build_fields,
                              error=f"load failed at {e.clients} clients: {_describe(e.cause)}",
                              concurrency={"levels": e.levels, "failed_clients": e.clients,
                                           "duration_s": cc.duration_s, "host_cpus": os.cpu_count(),
                                           "engine": cc.engine, "address": cc.address})  # fmt: skip
            return False
        except Exception as e:  # noqa: BLE001
            self._record_load(ds, s, key, base, status="failed", error=f"load failed: {_describe(e)}", **build_fields)
            return False
        self._record_load(
            ds,
            s,
            key,
            base,
            status="ok",
            error=None,
            concurrency={
                "levels": levels,
                "duration_s": cc.duration_s,
                "note": handle.get("note"),
                "host_cpus": os.cpu_count(),
                "engine": cc.engine,
                "address": cc.address,
            },
            **build_fields,
        )
        for lv in levels:
            bound = " (client-bound)" if lv["client_bound"] else ""
            self.console.print(f"  {lv['clients']:>3} clients: {lv['qps']:,.0f} QPS, p99 {lv['p99_ms']:.2f} ms{bound}")
        return True

    def _record_load(self, ds, s, key, base, **fields) -> None:
        extra = {k: v for k, v in base.items() if k not in ("build", "search")}
        self._record(ds, s, base["build"], base["search"], key_override=key, **extra, **fields)

    def _measure_point(self, engine: Engine, ds: Dataset, s: StoreConfig, build, sp) -> dict[str, Any]:
        """Single-query passes (and batch passes where the store has them) for one search setting."""
        worker = engine.worker
        deadline = Deadline(self.cfg.limits.search_s)
        worker.call("set_search_params", sp, timeout=deadline.left())
        passes, cpu_s = worker.call("timed_passes", self.cfg.k, self.cfg.runs, self.cfg.warmup, timeout=deadline.left())
        point = score_passes(passes, ds, self.cfg.k, vectors=get_store_class(s.store).input == "vectors")
        cpu_share = cpu_s / max(sum(p[0] for p in passes), 1e-9)
        fields: dict[str, Any] = {
            "answers_digest": answers_digest(passes[-1][2]),
            "recall": point.recall, "qps": point.qps, "qps_runs": point.qps_runs, **point.latency,
            **point.recall_detail,
            "client": {
                "cpu_share": round(cpu_share, 3),
                "bound": client_bound(get_store_class(s.store).kind, cpu_share),
                "harness_floor_us": engine.floor_us,
            },
        }  # fmt: skip
        if self.cfg.batch_size and get_store_class(s.store).supports_batch_search:
            walls, answers = worker.call(
                "timed_batch", self.cfg.k, self.cfg.runs, self.cfg.batch_size, timeout=deadline.left()
            )
            batch = recall_at_k(answers, ds.test, ds.train, ds.neighbors, self.cfg.k, ds.metric)
            fields["batch"] = {
                "batch_size": self.cfg.batch_size,
                "qps": len(answers) / float(np.median(walls)),
                "qps_runs": [len(answers) / w for w in walls],
                "recall": batch.recall,
            }
        effective = worker.call("effective_config", timeout=60)
        fields["effective"] = effective
        fields["config_mismatch"] = config_mismatches(s.index, {**build, **sp}, effective)
        if is_labelled(ds):
            fields.update(self._quality(engine, ds, s, build, sp, point))
        return fields

    def _run_targets(self, engine: Engine, ds: Dataset, s: StoreConfig, build, build_fields, done, measured,
                     observations) -> bool:  # fmt: skip
        """Tune the knob to each recall target on the tuning queries, measure it on the evaluation queries."""
        plan, worker, k = self.plan, engine.worker, self.cfg.k
        tune_rows, eval_rows, _ = query_split(ds.test.shape[0])
        pending = []
        for t in plan.targets:
            key = self._target_key(ds, s, build, t)
            if key in done:
                if key in self.previous:
                    measured.append((self.previous[key]["search"], self.previous[key]))
            else:
                pending.append((t, key))
        if not pending:
            return True
        tune = query_subset(ds, tune_rows)
        split_fields = {"tuning_queries": len(tune_rows), "evaluation_queries": len(eval_rows)}
        tried: dict[int, float] = {}

        def recall_at(value: int) -> float:
            if value not in tried:
                sp = {**plan.target_base, plan.knob: value}
                worker.call("set_search_params", sp, timeout=Deadline(self.cfg.limits.search_s).left())
                answers = worker.call("answers", k, timeout=Deadline(self.cfg.limits.search_s).left())
                tried[value] = recall_at_k(answers, tune.test, tune.train, tune.neighbors, k, tune.metric).recall
                observations.setdefault("tuning", {})[repr(sp)] = (answers_digest(answers), tried[value])
            return tried[value]

        healthy = True
        try:
            worker.call("set_queries", tune.test)
            lo, hi = self._knob_range(s, build)
            chosen: dict[float, tuple[int, bool]] = {}
            start = lo
            for t, _ in pending:
                value, reached = tune_knob(recall_at, t, start, hi)
                chosen[t] = (value, reached)
                start = value if reached else start
            worker.call("set_queries", ds.test[eval_rows])
            evaluation = query_subset(ds, eval_rows)
            for t, key in pending:
                value, reached = chosen[t]
                sp = {**plan.target_base, plan.knob: value}
                target_fields = {"target_recall": t, "target_reached": reached, "tuning_recall": tried[value],
                                 **split_fields}  # fmt: skip
                try:
                    with engine.sampler.phase("query"):
                        fields = self._measure_point(engine, evaluation, s, build, sp)
                    fields.pop("answers_digest")
                    fields["resources"] = {**build_fields["resources"], **engine.query_resources()}
                except Exception as e:  # noqa: BLE001
                    healthy = False
                    self._record(ds, s, build, sp, key_override=key, status="failed",
                                 error=f"search failed: {_describe(e)}", timed_out=isinstance(e, WorkerTimeout),
                                 **build_fields, **target_fields)  # fmt: skip
                    continue
                self._record(ds, s, build, sp, key_override=key, status="ok", error=None,
                             **{**build_fields, **fields, **target_fields})  # fmt: skip
                measured.append((sp, fields))
                self.console.print(
                    f"  {_params(build)} target {t}: {plan.knob}={value} "
                    + ("" if reached else "[yellow](not reached: best found)[/] ")
                    + f"recall={fields['recall']:.4f} qps={fields['qps']:,.0f}"
                )
        except Exception as e:  # noqa: BLE001
            for t, key in pending:
                if not any(r.get("key") == key for r in self.written):
                    self._record(ds, s, build, {}, key_override=key, status="failed", target_recall=t,
                                 error=f"tuning failed: {_describe(e)}", **build_fields, **split_fields)  # fmt: skip
            return False
        finally:
            if worker.alive:
                worker.call("set_queries", ds.test)
        return healthy

    def _knob_range(self, s: StoreConfig, build: dict) -> tuple[int, int]:
        """Lowest and highest value tuning may give the knob: ef from k, nprobe up to the build's nlist."""
        knob = self.plan.knob
        p = get_store_class(s.store).families[s.index].search_param(knob)
        lo = max(int(p.minimum or 1), 1, self.cfg.k if knob == "ef" else 1)
        hi = int(min(p.maximum or KNOB_MAX[knob], KNOB_MAX[knob]))
        if knob == "nprobe" and isinstance(build.get("nlist"), int):
            hi = min(hi, build["nlist"])
        return lo, max(lo, hi)

    def _mark_search_ignored(self, s: StoreConfig) -> None:
        """Write this build's records again, flagged: its search settings all gave the same answers."""
        self.console.print(f"  [red]{s.display_name}: every search setting gave identical answers (recall < 1): "
                           "the engine ignores the search parameter[/]")  # fmt: skip
        for record in [r for r in self.written if r.get("status") == "ok"]:
            self.results.append({**record, "search_param_ignored": True})

    # -- retrieval quality (labelled datasets) ------------------------------------------------
    def _quality(self, engine: Engine, ds: Dataset, s: StoreConfig, build, sp, point: PointResult) -> dict[str, Any]:
        """nDCG@10 & co. of the point against the dataset's labels; with ``hybrid``, the fused point is
        scored and recorded here too (it reuses this point's answers and latencies)."""
        answers = point.extra["answers"]
        if get_store_class(s.store).input == "text":
            ranks = [np.arange(len(a), 0, -1, dtype=np.float64) for a in answers]  # ids only: rank order
            run, retrieval = quality.to_run(ds, answers, ranks), "bm25"
        else:
            run, retrieval = quality.to_run(ds, answers, quality.dense_scores(ds, answers)), "dense"
        key = self._key(ds, s, build, sp)
        fields = quality.score_point(self.out_dir, ds, key, run, self.cfg.k, s.display_name, retrieval)
        if s.hybrid is not None:
            self._record_hybrid(ds, s, build, sp, run, point.extra["latencies"])
        if s.hybrid is not None and s.hybrid.native:
            self._record_native_hybrid(engine, ds, s, build, sp)
        return fields

    def _record_native_hybrid(self, engine: Engine, ds: Dataset, s: StoreConfig, build, sp) -> None:
        """The store's own full-text + vector search at this setting, timed like any point (one timed loop
        of (vector, text) queries), recorded with ``retrieval: native-hybrid``."""
        search = {**sp, "hybrid": "native"}
        key = self._key(ds, s, build, search)
        worker = engine.worker
        try:
            worker.call("set_queries", list(zip(ds.test, ds.text.queries, strict=True)))
            worker.call("set_hybrid", True)
            try:
                passes, _ = worker.call("timed_passes", self.cfg.k, self.cfg.runs, self.cfg.warmup, timeout=3600)
            finally:  # the dense points that follow must not run in hybrid mode, even after a failure
                if worker.alive:
                    worker.call("set_hybrid", False)
                    worker.call("set_queries", ds.test)
            point = score_passes(passes, ds, self.cfg.k, vectors=False)
            answers = point.extra["answers"]
            ranks = [np.arange(len(a), 0, -1, dtype=np.float64) for a in answers]  # ids only: rank order
            run = quality.to_run(ds, answers, ranks)
            scored = quality.score_point(self.out_dir, ds, key, run, self.cfg.k, s.display_name, "native-hybrid")
        except Exception as e:  # noqa: BLE001 - the dense point stands; this one is recorded as failed
            self._record_fused_failure(ds, s, build, search, key, "native-hybrid", e)
            return
        self._record(
            ds,
            s,
            build,
            search,
            key_override=key,
            status="ok",
            error=None,
            recall=None,
            qps=point.qps,
            qps_runs=point.qps_runs,
            **point.latency,
            **scored,
            native_hybrid=get_store_class(s.store).native_hybrid,
            effective=worker.call("effective_config", timeout=60),
        )
        self.console.print(f"  {_params(sp)} native hybrid: ndcg@10={scored['ndcg@10']:.4f} qps={point.qps:,.0f}")

    def _record_fused_failure(self, ds: Dataset, s: StoreConfig, build, search, key: str, retrieval: str, e) -> None:
        """A hybrid or native-hybrid point that failed; the dense point it builds on stands."""
        self._record(ds, s, build, search, key_override=key, status="failed", retrieval=retrieval,
                     error=f"{retrieval} failed: {_describe(e)}")  # fmt: skip

    def _record_hybrid(self, ds: Dataset, s: StoreConfig, build, sp, dense_run, latencies) -> None:
        """The dense point fused with bm25 (ranx), recorded as its own point with ``retrieval: hybrid``."""
        search = {**sp, "hybrid": s.hybrid.fusion}
        key = self._key(ds, s, build, search)
        try:
            if ds.name not in self._bm25_legs:
                self._bm25_legs[ds.name] = quality.bm25_leg(ds, self.cfg.k, self.cfg.warmup)
            leg = self._bm25_legs[ds.name]
            fused, timing = quality.hybrid_fields(dense_run, latencies, leg, s.hybrid, self.cfg.k)
            tag = f"{s.display_name}+bm25"
            scored = quality.score_point(self.out_dir, ds, key, fused, self.cfg.k, tag, "hybrid")
        except Exception as e:  # noqa: BLE001 - the dense point stands; the hybrid one is recorded as failed
            self._record_fused_failure(ds, s, build, search, key, "hybrid", e)
            return
        legs = [{"store": s.display_name, "retrieval": "dense", "key": self._key(ds, s, build, sp)}, leg.describe]
        self._record(ds, s, build, search, key_override=key, status="ok", error=None, **timing, **scored, legs=legs)
        self.console.print(
            f"  {_params(sp)} hybrid {s.hybrid.fusion}: ndcg@10={scored['ndcg@10']:.4f} qps={timing['qps']:,.0f}"
        )

    def _build(self, worker: StoreWorker, ds: Dataset, spec: BuildSpec, s: StoreConfig) -> tuple[float, float]:
        """Create, insert in batches (timed in the store's process), then finish (timed until searchable).

        The store's process reads each batch from the dataset file; only the row range is sent.
        """
        deadline = Deadline(self.cfg.limits.build_s)
        worker.call("create", spec, timeout=deadline.left())
        n, batch = ds.train.shape[0], self.cfg.insert_batch
        texts = store_inputs(s, ds)[0] if get_store_class(s.store).input == "text" else None
        insert_s = 0.0
        with Progress(
            TextColumn(f"  insert {s.display_name} {_params(spec.params)}"), BarColumn(), MofNCompleteColumn(),
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
                seconds, rows = worker.call(
                    "timed_insert_rows", str(ds.path), "train", start, stop, timeout=deadline.left()
                )
                if rows != stop - start:
                    raise RuntimeError(f"the store's process read {rows} rows of {ds.path} for rows {start}:{stop}")
                insert_s += seconds
                progress.update(task, advance=rows)
        index_s = worker.call("timed_finish", timeout=deadline.left())
        return insert_s, index_s


def tune_knob(recall_at: Callable[[int], float], target: float, lo: int, hi: int) -> tuple[int, bool]:
    """The cheapest integer in [lo, hi] whose recall reaches ``target`` (recall assumed to rise with it).

    Doubling from ``lo`` until reached (or ``hi``), then bisection between the last miss and the
    first hit. Unreached: the value with the best recall seen (the smallest among equals), False.
    """
    seen: dict[int, float] = {}

    def recall(v: int) -> float:
        seen[v] = seen[v] if v in seen else recall_at(v)
        return seen[v]

    value, miss = lo, None
    while recall(value) < target and value < hi:
        miss, value = value, min(value * 2, hi)
    if recall(value) < target:
        return max(sorted(seen), key=lambda v: seen[v]), False
    while miss is not None and value - miss > 1:
        mid = (value + miss) // 2
        if recall(mid) >= target:
            value = mid
        else:
            miss = mid
    return value, True


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


def _describe(e: BaseException) -> str:
    if isinstance(e, RemoteError | WorkerTimeout | WorkerCrashed):
        return str(e) if isinstance(e, RemoteError) else f"{type(e).__name__}: {e}"
    return describe(e)


def _params(p: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in p.items())
