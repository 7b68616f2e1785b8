"""Churn: inserts and deletes while a client searches, on a build of its own.

With ``churn: {insert: 0.1, delete: 0.1, batches: 10}`` on a store entry: build on the first 90%
of train, then in 10 batches insert the held-back rows and delete 10% of the built rows (drawn
with ``seed``), while the store's process searches the queries back to back. Measured:

- QPS and latency of the searches that ran during the writes (from a second thread where the
  adapter allows concurrent writes, ``mode: concurrent``; else right after each batch's writes,
  ``mode: interleaved``, and the record says so);
- ``freshness_s``: per batch, from the insert's return until a search for the last inserted vector
  returns it (median and max over batches; None where it never did within ``settle_s``);
- after each batch (untimed): recall against exact neighbours of the live rows (``recall_live``
  at the end, every checkpoint in ``checkpoints`` with its 95% interval ``recall_ci95``), and
  ``deleted_returned``: answers holding an id whose delete had returned. A correct engine returns 0.

Searches run at the entry's search setting (its listed value, the last one where it lists several).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from vdbbench.charts.fields import params_text
from vdbbench.charts.plots import Series, series_key
from vdbbench.config import DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.core.answers import save_answers
from vdbbench.core.metrics import latency_summary, recall_at_k, recall_ci95, valid_ids
from vdbbench.data.datasets import Dataset
from vdbbench.execution.points import PointId, describe_error
from vdbbench.execution.worker import WorkerTimeout
from vdbbench.workloads import BuildRun, Workload
from vdbbench.workloads.base import SweepContext

if TYPE_CHECKING:
    from rich.table import Table


def churn_plan(n: int, insert: float, delete: float, batches: int, seed: int) -> tuple[int, list[tuple[int, int]],
                                                                                       list[np.ndarray]]:  # fmt: skip
    """Rows built first (0..built), each batch's inserted row range and deleted ids (among the built rows)."""
    built = n - max(1, round(insert * n))
    doomed = np.sort(np.random.default_rng(seed).choice(built, size=round(delete * built), replace=False))
    edges = np.linspace(built, n, batches + 1).round().astype(int)
    return built, list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)), np.array_split(doomed, batches)


class Churn(Workload):
    name = "churn"
    order = 40
    own_build = True

    def applies(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig) -> bool:
        return s.churn is not None

    def problems(self, s: StoreConfig, n: int) -> list[str]:
        c = s.churn
        built, ranges, deletes = churn_plan(n, c.insert, c.delete, c.batches, c.seed)
        held = n - built
        if held < c.batches:
            return [f"churn: insert {c.insert:g} of {n:,} rows holds back {held} row(s), fewer than batches "
                    f"{c.batches}; every batch must insert a row: raise insert to at least {c.batches / n:.3g} or "
                    f"lower batches to at most {held}"]  # fmt: skip
        return []

    def build_rows(self, s: StoreConfig, n: int) -> int:
        c = s.churn
        return churn_plan(n, c.insert, c.delete, c.batches, c.seed)[0]

    def key(self, sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict) -> str:
        """One churn point per build: its search setting and churn spec name it."""
        return sweep.key(ds, s, build, {**sweep.plan.target_base, "churn": s.churn.model_dump()}, workload=self.name)

    def points(self, sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict) -> list[PointId]:
        return [PointId(self.key(sweep, ds, s, build), ds, sweep.plan.target_base, self.name)]

    def plan_lines(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig, plan: StorePlan,
                   shape: tuple[int | None, int | None, int | None], head: str) -> list[str]:  # fmt: skip
        c = s.churn
        return [f"{head} · churn: build on {1 - c.insert:.0%} of train, then {c.batches} batches inserting the "
                f"other {c.insert:.0%} and deleting {c.delete:.0%} of the built rows while searching at "
                f"{params_text(plan.target_base, 'the defaults')}"]  # fmt: skip

    def run(self, run: BuildRun) -> bool:
        """Measure churn on the index ``run`` built on the first rows (the runner built it for this workload)."""
        sweep, ds, s, build, worker, k = run.sweep, run.ds, run.s, run.build, run.worker, run.cfg.k
        c = s.churn
        n = ds.train.shape[0]
        built, ranges, deletes = churn_plan(n, c.insert, c.delete, c.batches, c.seed)
        sp = sweep.plan.target_base
        key = self.key(sweep, ds, s, build)
        live = np.zeros(n, dtype=bool)
        live[:built] = True
        gone = np.zeros(n, dtype=bool)
        batches: list[dict[str, Any]] = []
        latencies: list[np.ndarray] = []
        columns = sweep.insert_columns(ds)
        try:
            worker.call("set_search_params", sp, timeout=600)
            worker.call("set_queries", ds.test, timeout=600)
            for b, ((lo, hi), doomed) in enumerate(zip(ranges, deletes, strict=True)):
                attrs = {name: col[lo:hi] for name, col in columns.items()} or None
                out = worker.call("timed_churn", str(ds.path), lo, hi, doomed, attrs, k, c.settle_s,
                                  timeout=sweep.cfg.limits.build_s)  # fmt: skip
                live[lo:hi] = True
                live[doomed] = False
                gone[doomed] = True
                latencies.append(out.pop("latencies"))
                batches.append({**out, **self.checkpoint(run, live, gone, b + 1, key)})
        except Exception as e:  # noqa: BLE001 - the batches measured before the failure are kept in the record
            done = summarize(batches, latencies, c.model_dump(), built) if batches else {"churn": c.model_dump()}
            sweep.record(ds, s, build, sp, key_override=key, workload=self.name, status="failed",
                         error=f"churn failed at batch {len(batches) + 1}: {describe_error(e)}",
                         timed_out=isinstance(e, WorkerTimeout), **run.build_fields, **done)  # fmt: skip
            return False
        sweep.record(ds, s, build, sp, key_override=key, workload=self.name, status="ok", error=None,
                     **run.build_fields, **summarize(batches, latencies, c.model_dump(), built))  # fmt: skip
        last = batches[-1]
        sweep.console.print(f"  {params_text(build, '')} churn ({last['mode']}): recall_live={last['recall_live']:.4f} "
                            f"deleted_returned={sum(b['deleted_returned'] for b in batches)}")  # fmt: skip
        return True

    @staticmethod
    def checkpoint(run: BuildRun, live: np.ndarray, gone: np.ndarray, batch: int, key: str) -> dict[str, Any]:
        """Untimed answers after a batch: recall on the live rows, and answers holding a deleted id. The answers
        (with the engine's scores where the store gives them) are saved as point ``<key>.batch<batch>``."""
        ds, k = run.ds, run.cfg.k
        t0 = time.monotonic()
        scored = run.worker.call("scored_answers", k, timeout=run.cfg.limits.search_s)
        answers = [ids for ids, _ in scored]
        answers_file = save_answers(run.sweep.out_dir, f"{key}.batch{batch}", answers, np.arange(len(answers)), k,
                                    [sc for _, sc in scored])  # fmt: skip
        view = ds.restricted(live.copy())
        report = recall_at_k(answers, view.test, view.train, view.neighbors, k, ds.metric, allowed=view.allowed)
        returned = sum(bool(gone[valid].any()) for a in answers if (valid := valid_ids(a, len(gone))).size)
        return {"batch": batch, "live_rows": int(live.sum()), "recall_live": report.recall,
                "recall_ci95": recall_ci95(report.per_query),
                "deleted_returned": returned, "short_answers": report.short_answers, "answers_file": answers_file,
                "checkpoint_s": time.monotonic() - t0}  # fmt: skip

    def report_section(self, records: list[dict[str, Any]], series: dict, targets: tuple[float, ...]) -> dict | None:
        """One table row per churn record (see the template)."""
        rows = churn_rows(records, series)
        return {"rows": rows} if rows else None

    def console_table(self, records: list[dict[str, Any]]) -> Table:
        """Churn records: QPS and latency during writes, freshness, recall on the live rows, deleted ids returned."""
        from rich.markup import escape as markup_escape
        from rich.table import Table

        table = Table(title="churn (inserts and deletes while searching)")
        cols = ("dataset", "store", "index", "build", "search", "mode", "QPS", "p99 ms", "freshness s", "recall_live",
                "deleted returned", "status")  # fmt: skip
        for col in cols:
            table.add_column(col, justify="left" if col in cols[:6] + ("status",) else "right")
        for r in self.mine(records):
            ok, c = r.get("status") == "ok", r.get("churn") or {}
            table.add_row(
                r["dataset"], r["label"], r["index"], params_text(r["build"], ""), params_text(r["search"], ""),
                str(c.get("mode") or ""),
                f"{r['qps']:,.0f}" if ok and r.get("qps") else "",
                f"{r['p99_ms']:.3f}" if ok and r.get("p99_ms") else "",
                f"{r['freshness_s']:.3f}" if ok and r.get("freshness_s") is not None else ("never" if ok else ""),
                f"{r['recall_live']:.4f}" if ok else "",
                (f"[red]{r['deleted_returned']}[/]" if r["deleted_returned"] else "0") if ok else "",
                "ok" if ok else f"[red]{r.get('status')}[/]: {markup_escape(str(r.get('error')))}",
            )  # fmt: skip
        return table

    def match_fields(self, record: dict[str, Any]) -> list[Any]:
        """The churn spec (not what it measured), then the search setting."""
        spec = {k: v for k, v in (record.get("churn") or {}).items()
                if k in ("insert", "delete", "batches", "seed", "settle_s")}  # fmt: skip
        return [spec, record.get("search")]

    def compare_notes(self, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
        """Churn measures side by side (one run each: no spread, so no verdict); a deleted id returned is flagged."""
        notes = []
        for name, fmt in (("qps", "{:,.0f}"), ("recall_live", "{:.4f}"), ("freshness_s", "{:.3f} s"),
                          ("deleted_returned", "{}")):  # fmt: skip
            a, b = old.get(name), new.get(name)
            if a is not None and b is not None:
                notes.append(f"{name} {fmt.format(a)} → {fmt.format(b)}")
        if (new.get("deleted_returned") or 0) > 0:
            notes.append("deleted ids returned: the engine served deleted rows")
        return ["churn (single run, no noise estimate): " + "; ".join(notes)] if notes else []


def summarize(batches: list[dict[str, Any]], latencies: list[np.ndarray], spec: dict[str, Any],
              built: int) -> dict[str, Any]:  # fmt: skip
    """The churn record's measures from its batches."""
    lat = np.concatenate(latencies) if latencies else np.empty(0)
    wall = sum(b["search_wall_s"] for b in batches)
    fresh = [b["freshness_s"] for b in batches if b.get("freshness_s") is not None]
    never = sum(b.get("freshness_s") is None and b["inserted"] > 0 for b in batches)
    return {
        "recall": None,
        "qps": len(lat) / wall if wall > 0 and len(lat) else None,
        **(latency_summary(lat) if len(lat) else {}),
        "recall_live": batches[-1]["recall_live"],
        "answers_file": batches[-1]["answers_file"],  # the last checkpoint's; each checkpoint names its own
        "deleted_returned": sum(b["deleted_returned"] for b in batches),
        "freshness_s": float(np.median(fresh)) if fresh else None,
        "freshness_max_s": max(fresh) if fresh else None,
        "churn": {**spec, "mode": batches[0]["mode"], "built_rows": built, "final_rows": batches[-1]["live_rows"],
                  "inserted": sum(b["inserted"] for b in batches), "deleted": sum(b["deleted"] for b in batches),
                  "insert_s": sum(b.get("insert_s", 0.0) for b in batches),
                  "delete_s": sum(b.get("delete_s", 0.0) for b in batches), "searches": int(len(lat)),
                  "never_fresh_batches": never,
                  "checkpoints": [{k: b[k] for k in ("batch", "live_rows", "recall_live", "recall_ci95",
                                                     "deleted_returned", "short_answers", "freshness_s",
                                                     "answers_file")}
                                  for b in batches]},
    }  # fmt: skip


def churn_rows(records: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> list[dict[str, Any]]:
    """One row per churn record, with its writes per second (inserted + deleted rows over write seconds)."""
    out = []
    for r in records:
        if r.get("workload") != "churn":
            continue
        c = r.get("churn") or {}
        writes = (c.get("insert_s") or 0) + (c.get("delete_s") or 0)
        rate = ((c.get("inserted") or 0) + (c.get("deleted") or 0)) / writes if writes > 0 else None
        out.append({"r": r, "series": series[series_key(r)], "c": c, "write_rate": rate,
                    "build": params_text(r.get("build")), "search": params_text(r.get("search"))})  # fmt: skip
    return out
