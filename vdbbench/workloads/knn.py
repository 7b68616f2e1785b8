"""Plain k-NN: every explicit search setting, then each recall target, on one built index.

Recall targets: the test queries are split (seed 0) into a tuning half and an evaluation half
(``query_split``). For each build and target, the family's main search knob (ef / nprobe) is
searched on the tuning half, untimed: doubling from its lowest allowed value until the tuning recall
reaches the aim, then bisection down to the cheapest value that reaches it. The aim is the target plus
the half-width of that tuning recall's own 95% interval (``recall_ci95``), so that the held-out recall
usually lands at or above the target rather than half the time below it; it is recorded
(``tuning_aim``). That value is then measured with the normal timed loop on the evaluation half only,
and only that measurement decides: ``target_reached`` is true when the held-out recall's interval
reaches the target (``recall_ci95[1] >= target_recall``). A target no value reaches in tuning is
recorded at the value with the best tuning recall.

``measure_view`` does all of this on a dataset view, so the filtered workload runs the same code
under each filter, scored against that filter's exact neighbours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from vdbbench.charts.fields import params_text
from vdbbench.config import DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.core.metrics import recall_at_k, recall_ci95
from vdbbench.core.phases import phase
from vdbbench.data.datasets import Dataset
from vdbbench.execution import quality
from vdbbench.execution.concurrent import client_bound
from vdbbench.execution.points import (
    Deadline,
    PointId,
    answers_digest,
    config_mismatches,
    describe_error,
    keep_answers,
    score_passes,
)
from vdbbench.execution.quality import is_labelled
from vdbbench.execution.worker import WorkerTimeout
from vdbbench.stores import get_store_class
from vdbbench.workloads import BuildRun, Workload
from vdbbench.workloads.base import SweepContext

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
    return dataclasses.replace(ds, test=ds.test[rows], neighbors=ds.neighbors[rows], distances=ds.distances[rows],
                               text=None)  # fmt: skip


def tune_knob(recall_at: Callable[[int], float], target: float, lo: int, hi: int,
              margin: Callable[[int], float] = lambda v: 0.0) -> tuple[int, bool]:  # fmt: skip
    """The cheapest integer in [lo, hi] whose recall reaches ``target`` plus ``margin`` of that value (recall
    assumed to rise with it).

    Doubling from ``lo`` until reached (or ``hi``), then bisection between the last miss and the
    first hit. Unreached: the value with the best recall seen (the smallest among equals), False.
    ``recall_at`` is called once per value (the caller memoises nothing); ``margin`` after it.
    """
    seen: dict[int, float] = {}

    def reaches(v: int) -> bool:
        if v not in seen:
            seen[v] = recall_at(v)
        return seen[v] >= target + margin(v)

    value, miss = lo, None
    while not reaches(value) and value < hi:
        miss, value = value, min(value * 2, hi)
    if not reaches(value):
        return max(sorted(seen), key=lambda v: seen[v]), False
    while miss is not None and value - miss > 1:
        mid = (value + miss) // 2
        if reaches(mid):
            value = mid
        else:
            miss = mid
    return value, True


def target_key(sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict, target: float, workload: str) -> str:
    """Key of a recall-target point: the target and the query split, not the setting it chose."""
    return sweep.key(ds, s, build, {"target_recall": target, "split": split_id(ds.test.shape[0])}, workload)


def view_points(sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict, workload: str) -> list[PointId]:
    """The explicit settings and the recall targets of one build on one view (unfiltered or one filter), as
    ``workload`` records them."""
    plan = sweep.plan
    points = [PointId(sweep.key(ds, s, build, sp, workload), ds, sp, workload) for sp in plan.searches]
    return points + [PointId(target_key(sweep, ds, s, build, t, workload), ds, {}, workload, {"target_recall": t})
                     for t in plan.targets]  # fmt: skip


class Knn(Workload):
    name = "knn"
    order = 10
    ranked = True

    def applies(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig) -> bool:
        return True

    def points(self, sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict) -> list[PointId]:
        return view_points(sweep, ds, s, build, self.name)

    def run(self, run: BuildRun) -> bool:
        return measure_view(run, run.ds, run.measured)

    def plan_lines(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig, plan: StorePlan,
                   shape: tuple[int | None, int | None, int | None], head: str) -> list[str]:  # fmt: skip
        return view_lines(s, plan, shape[2], head)

    def report_section(self, records: list[dict[str, Any]], series: dict, targets: tuple[float, ...]) -> dict | None:
        """None: ranked points are the dataset section's own (ranking, plots, per-point tables)."""
        return None


def view_lines(s: StoreConfig, plan: StorePlan, queries: int | None, head: str) -> list[str]:
    """Dry-run lines of one build on one view: each explicit setting (and its fused points), each target."""
    lines = []
    fused = []
    if s.hybrid:
        fused.append(f"{s.hybrid.fusion} fusion with bm25")
        fused += ["the store's own hybrid search"] if s.hybrid.native else []
    for sp in plan.searches:
        point = f"{head} · search {params_text(sp, '-')}"
        lines += [point, *(f"{point} · {f}" for f in fused)]
    for t in plan.targets:
        split = f"{queries // 2} tune / {queries - queries // 2} evaluate" if queries else "half / half"
        base = params_text({k: v for k, v in plan.target_base.items() if k != plan.knob}, "")
        lines.append(f"{head} · target recall {t}: tune {plan.knob} ({split})" + (f", with {base}" if base else ""))
    return lines


def measure_view(run: BuildRun, view: Dataset, measured: list | None = None) -> bool:
    """Every pending explicit setting, then the recall targets, on ``view``, recorded as ``run.workload``'s; False
    when a search failed.

    ``measured`` collects (setting, fields) of the points for the concurrent workload (unfiltered only).
    Only unfiltered points feed the behavioural check of ignored search parameters.
    """
    sweep, s, build, worker = run.sweep, run.s, run.build, run.worker
    observations = sweep.observations if view.filter is None else {}
    healthy = True
    for sp in sweep.plan.searches:
        key = sweep.key(view, s, build, sp, run.workload)
        if key in run.done:
            previous = sweep.previous.get(key)
            if previous and measured is not None:
                measured.append((sp, previous))
            continue
        if not worker.alive:
            sweep.record(view, s, build, sp, workload=run.workload, status="failed", **run.build_fields,
                         error="not measured: the store's process was stopped at an earlier point")  # fmt: skip
            continue
        try:
            with run.engine.sampler.phase("query"):
                fields = measure_point(run, view, sp, key)
            observations.setdefault("all", {})[repr(sp)] = (fields.pop("answers_digest"), fields["recall"])
            fields["resources"] = {**run.build_fields["resources"], **run.engine.query_resources()}
        except Exception as e:  # noqa: BLE001
            healthy = False
            sweep.record(view, s, build, sp, workload=run.workload, status="failed",
                         error=f"search failed: {describe_error(e)}",
                         timed_out=isinstance(e, WorkerTimeout), **run.build_fields)  # fmt: skip
            continue
        sweep.record(view, s, build, sp, workload=run.workload, status="ok", error=None,
                     **{**run.build_fields, **fields})  # fmt: skip
        if measured is not None:
            measured.append((sp, fields))
        recall_text = f" recall={fields['recall']:.4f}" if fields["recall"] is not None else ""
        quality_text = f" ndcg@10={fields['ndcg@10']:.4f}" if "ndcg@10" in fields else ""
        where = f" filter {view.filter.text()} ({view.selectivity:.3g} pass)" if view.filter else ""
        sweep.console.print(
            f"  {params_text(build, '')} {params_text(sp, '')}{where}{recall_text}{quality_text} "
            f"qps={fields['qps']:,.0f}"
            + (f" [red]MISMATCH {fields['config_mismatch']}[/]" if fields["config_mismatch"] else "")
        )
    if sweep.plan.targets and worker.alive:
        healthy &= run_targets(run, view, measured, observations)
    return healthy


def measure_point(run: BuildRun, ds: Dataset, sp: dict, key: str, queries: np.ndarray | None = None) -> dict[str, Any]:
    """Single-query passes (and batch passes where the store has them) for one search setting, recorded as point
    ``key``; the answers scored are saved (``queries``: the test rows ``ds`` asks, default all)."""
    s, worker, cfg = run.s, run.worker, run.cfg
    cls = get_store_class(s.store)
    deadline = Deadline(cfg.limits.search_s)
    worker.call("set_search_params", sp, timeout=deadline.left())
    passes, cpu_s = worker.call("timed_passes", cfg.k, cfg.runs, cfg.warmup, timeout=deadline.left())
    point = score_passes(passes, ds, cfg.k, vectors=cls.input == "vectors")
    cpu_share = cpu_s / max(sum(p.wall_s for p in passes), 1e-9)
    rows = np.arange(ds.test.shape[0]) if queries is None else queries
    answers_file = keep_answers(run.sweep.out_dir, key, point, rows, cfg.k, worker, s.store, deadline.left())
    fields: dict[str, Any] = {
        "answers_digest": answers_digest(passes[-1].answers),
        "recall": point.recall, "recall_ci95": point.recall_ci95, "qps": point.qps, "qps_runs": point.qps_runs,
        **point.latency,
        **point.recall_detail, "answers_file": answers_file,
        "client": {
            "cpu_share": round(cpu_share, 3),
            "bound": client_bound(cls.mode, cpu_share),
            "harness_floor_us": run.engine.floor_us,
        },
    }  # fmt: skip
    if cfg.batch_size and cls.supports_batch_search:
        walls, answers = worker.call("timed_batch", cfg.k, cfg.runs, cfg.batch_size, timeout=deadline.left())
        batch = recall_at_k(answers, ds.test, ds.train, ds.neighbors, cfg.k, ds.metric, allowed=ds.allowed)
        fields["batch"] = {
            "batch_size": cfg.batch_size,
            "qps": len(answers) / float(np.median(walls)),
            "qps_runs": [len(answers) / w for w in walls],
            "recall": batch.recall,
        }
    effective = worker.call("effective_config", timeout=60)
    fields["effective"] = effective
    fields["config_mismatch"] = config_mismatches(s.family, {**run.build, **sp}, effective)
    if is_labelled(ds) and ds.filter is None:
        fields.update(score_quality(run, ds, sp, point))
    return fields


def run_targets(run: BuildRun, ds: Dataset, measured: list | None, observations: dict) -> bool:
    """Tune the knob to each recall target (plus the tuning recall's interval half-width) on the tuning queries,
    measure it on the evaluation queries; the held-out interval says whether the target was reached."""
    sweep, s, build, worker, k = run.sweep, run.s, run.build, run.worker, run.cfg.k
    plan = sweep.plan
    tune_rows, eval_rows, _ = query_split(ds.test.shape[0])
    pending = []
    for t in plan.targets:
        key = target_key(sweep, ds, s, build, t, run.workload)
        if key in run.done:
            if key in sweep.previous and measured is not None:
                measured.append((sweep.previous[key]["search"], sweep.previous[key]))
        else:
            pending.append((t, key))
    if not pending:
        return True
    tune = query_subset(ds, tune_rows)
    split_fields = {"tuning_queries": len(tune_rows), "evaluation_queries": len(eval_rows)}
    tried: dict[int, float] = {}
    half_width: dict[int, float] = {}  # of the tuning recall's 95% interval, per knob value
    deadline = Deadline(run.cfg.limits.search_s)  # one limit for the whole tuning of this build

    def recall_at(value: int) -> float:
        sp = {**plan.target_base, plan.knob: value}
        worker.call("set_search_params", sp, timeout=deadline.left())
        answers = worker.call("answers", k, timeout=deadline.left())
        report = recall_at_k(answers, tune.test, tune.train, tune.neighbors, k, tune.metric, allowed=tune.allowed)
        low, high = recall_ci95(report.per_query)
        tried[value], half_width[value] = report.recall, (high - low) / 2
        observations.setdefault("tuning", {})[repr(sp)] = (answers_digest(answers), tried[value])
        return tried[value]

    healthy = True
    try:
        worker.call("set_queries", tune.test)
        lo, hi = knob_range(run)
        chosen: dict[float, tuple[int, bool]] = {}
        start = lo
        targets = ", ".join(str(t) for t, _ in pending)
        note = f"  {params_text(build, '')} tuning {plan.knob} for recall {targets} on {len(tune_rows)} queries"
        with phase("tuning", announce=note):
            for t, _ in pending:
                value, reached = tune_knob(recall_at, t, start, hi, half_width.__getitem__)
                chosen[t] = (value, reached)
                start = value if reached else start
        worker.call("set_queries", ds.test[eval_rows])
        evaluation = query_subset(ds, eval_rows)
        for t, key in pending:
            value, aimed = chosen[t]
            sp = {**plan.target_base, plan.knob: value}
            target_fields = {"target_recall": t, "tuning_recall": tried[value],
                             "tuning_aim": round(t + half_width[value], 6), **split_fields}  # fmt: skip
            try:
                with run.engine.sampler.phase("query"):
                    fields = measure_point(run, evaluation, sp, key, eval_rows)
                fields.pop("answers_digest")
                fields["resources"] = {**run.build_fields["resources"], **run.engine.query_resources()}
                ci = fields["recall_ci95"]
                target_fields["target_reached"] = ci is not None and ci[1] >= t  # the held-out queries decide
            except Exception as e:  # noqa: BLE001
                healthy = False
                sweep.record(ds, s, build, sp, key_override=key, workload=run.workload, status="failed",
                             error=f"search failed: {describe_error(e)}", timed_out=isinstance(e, WorkerTimeout),
                             **run.build_fields, **target_fields)  # fmt: skip
                continue
            sweep.record(ds, s, build, sp, key_override=key, workload=run.workload, status="ok", error=None,
                         **{**run.build_fields, **fields, **target_fields})  # fmt: skip
            if measured is not None:
                measured.append((sp, fields))
            low, high = fields["recall_ci95"]
            sweep.console.print(
                f"  {params_text(build, '')} target {t}: {plan.knob}={value} "
                + ("" if aimed else "[yellow](tuning aim not reached: best found)[/] ")
                + (f"filter {ds.filter.text()} " if ds.filter else "")
                + f"recall={fields['recall']:.4f} [{low:.4f}, {high:.4f}] "
                + ("" if target_fields["target_reached"] else "[yellow](target not reached)[/] ")
                + f"qps={fields['qps']:,.0f}"
            )
    except Exception as e:  # noqa: BLE001
        for t, key in pending:
            if not any(r.get("key") == key for r in sweep.written):
                sweep.record(ds, s, build, {}, key_override=key, workload=run.workload, status="failed",
                             target_recall=t,
                             error=f"tuning failed: {describe_error(e)}", **run.build_fields,
                             **split_fields)  # fmt: skip
        return False
    finally:
        if worker.alive:
            worker.call("set_queries", ds.test)
    return healthy


def knob_range(run: BuildRun) -> tuple[int, int]:
    """Lowest and highest value tuning may give the knob: ef from k, nprobe up to the build's nlist."""
    knob = run.plan.knob
    p = get_store_class(run.s.store).families[run.s.family].search_param(knob)
    lo = max(int(p.minimum or 1), 1, run.cfg.k if knob == "ef" else 1)
    hi = int(min(p.maximum or KNOB_MAX[knob], KNOB_MAX[knob]))
    if knob == "nprobe" and isinstance(run.build.get("nlist"), int):
        hi = min(hi, run.build["nlist"])
    return lo, max(lo, hi)


# -- retrieval quality (labelled datasets) ------------------------------------------------
def score_quality(run: BuildRun, ds: Dataset, sp: dict, point) -> dict[str, Any]:
    """nDCG@10 & co. of the point against the dataset's labels; with ``hybrid``, the fused point is
    scored and recorded here too (it reuses this point's answers and latencies)."""
    sweep, s, build, k = run.sweep, run.s, run.build, run.cfg.k
    answers = point.extra["answers"]
    if get_store_class(s.store).input == "text":  # its own scores (BM25), asked again untimed when its answers
        scored = point.extra["scored"]  # were saved (keep_answers): the run file carries them
        run_, retrieval = quality.to_run(ds, [ids for ids, _ in scored], [sc for _, sc in scored]), "bm25"
    else:
        run_, retrieval = quality.to_run(ds, answers, quality.dense_scores(ds, answers)), "dense"
    key = sweep.key(ds, s, build, sp, run.workload)
    fields = quality.score_point(sweep.out_dir, ds, key, run_, k, s.display_name, retrieval)
    if s.hybrid is not None:
        record_hybrid(run, ds, sp, run_, point.extra["latencies"])
    if s.hybrid is not None and s.hybrid.native:
        record_native_hybrid(run, ds, sp)
    return fields


def record_native_hybrid(run: BuildRun, ds: Dataset, sp: dict) -> None:
    """The store's own full-text + vector search at this setting, timed like any point (one timed loop
    of (vector, text) queries), recorded with ``retrieval: native-hybrid``."""
    sweep, s, build, cfg, worker = run.sweep, run.s, run.build, run.cfg, run.worker
    search = {**sp, "hybrid": "native"}
    key = sweep.key(ds, s, build, search, run.workload)
    try:
        worker.call("set_queries", list(zip(ds.test, ds.text.queries, strict=True)))
        worker.call("set_hybrid", True)
        try:
            passes, _ = worker.call("timed_passes", cfg.k, cfg.runs, cfg.warmup, timeout=3600)
        finally:  # the dense points that follow must not run in hybrid mode, even after a failure
            if worker.alive:
                worker.call("set_hybrid", False)
                worker.call("set_queries", ds.test)
        point = score_passes(passes, ds, cfg.k, vectors=False)
        answers = point.extra["answers"]
        scored = quality.score_point(sweep.out_dir, ds, key, quality.to_run(ds, answers, quality.rank_scores(answers)),
                                     cfg.k, s.display_name, "native-hybrid")  # fmt: skip
    except Exception as e:  # noqa: BLE001 - the dense point stands; this one is recorded as failed
        record_fused_failure(run, ds, search, key, "native-hybrid", e)
        return
    sweep.record(ds, s, build, search, key_override=key, workload=run.workload, status="ok", error=None, recall=None,
                 qps=point.qps,
                 qps_runs=point.qps_runs, **point.latency, **scored,
                 native_hybrid=get_store_class(s.store).native_hybrid,
                 effective=worker.call("effective_config", timeout=60))  # fmt: skip
    sweep.console.print(f"  {params_text(sp, '')} native hybrid: ndcg@10={scored['ndcg@10']:.4f} qps={point.qps:,.0f}")


def record_fused_failure(run: BuildRun, ds: Dataset, search: dict, key: str, retrieval: str, e: Exception) -> None:
    """A hybrid or native-hybrid point that failed; the dense point it builds on stands."""
    run.sweep.record(ds, run.s, run.build, search, key_override=key, workload=run.workload, status="failed",
                     retrieval=retrieval, error=f"{retrieval} failed: {describe_error(e)}")  # fmt: skip


def record_hybrid(run: BuildRun, ds: Dataset, sp: dict, dense_run, latencies) -> None:
    """The dense point fused with bm25 (ranx), recorded as its own point with ``retrieval: hybrid``."""
    sweep, s, build, cfg = run.sweep, run.s, run.build, run.cfg
    search = {**sp, "hybrid": s.hybrid.fusion}
    key = sweep.key(ds, s, build, search, run.workload)
    try:
        leg = sweep.bm25_leg(ds)
        fused, timing = quality.hybrid_fields(dense_run, latencies, leg, s.hybrid, cfg.k)
        scored = quality.score_point(sweep.out_dir, ds, key, fused, cfg.k, f"{s.display_name}+bm25", "hybrid")
    except Exception as e:  # noqa: BLE001 - the dense point stands; the hybrid one is recorded as failed
        record_fused_failure(run, ds, search, key, "hybrid", e)
        return
    legs = [{"store": s.display_name, "retrieval": "dense", "key": sweep.key(ds, s, build, sp, run.workload)},
            leg.describe]  # fmt: skip
    sweep.record(ds, s, build, search, key_override=key, workload=run.workload, status="ok", error=None, **timing,
                 **scored, legs=legs)  # fmt: skip
    sweep.console.print(
        f"  {params_text(sp, '')} hybrid {s.hybrid.fusion}: ndcg@10={scored['ndcg@10']:.4f} qps={timing['qps']:,.0f}"
    )


__all__ = ["Knn", "measure_view", "query_split", "split_id", "tune_knob", "view_lines", "view_points"]
