"""Concurrent load: several client processes at once, at the fastest setting that reaches ``min_recall``.

Each client count runs a closed loop for ``duration_s`` (vdbbench.execution.load, locally or on Ray actors);
one record per build holds every level. A store that cannot be searched from a second process is
recorded as skipped, with the reason.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from vdbbench.config import DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.data.datasets import Dataset
from vdbbench.execution.load import LoadFailed, measure_concurrency
from vdbbench.execution.points import PointId, describe_error
from vdbbench.stores import ADAPTERS, get_store_class
from vdbbench.workloads import BuildRun, Workload
from vdbbench.workloads.base import SweepContext

if TYPE_CHECKING:
    from rich.table import Table


class Concurrent(Workload):
    name = "concurrent"
    order = 30

    def applies(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig) -> bool:
        return cfg.concurrency is not None

    def key(self, sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict) -> str:
        """One concurrency point per build: the client counts name it (the setting is chosen when it runs)."""
        return sweep.key(ds, s, build, {"concurrency": sweep.cfg.concurrency.clients}, workload=self.name)

    def points(self, sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict) -> list[PointId]:
        return [PointId(self.key(sweep, ds, s, build), ds, {}, {"workload": self.name})]

    def plan_lines(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig, plan: StorePlan,
                   shape: tuple[int | None, int | None, int | None], head: str) -> list[str]:  # fmt: skip
        cc = cfg.concurrency
        clients = ", ".join(map(str, cc.clients))
        return [f"{head} · concurrency {cc.engine}: {clients} clients × {cc.duration_s:g} s at the fastest setting "
                f"reaching recall {cc.min_recall} (skipped where the store cannot be shared)"]  # fmt: skip

    def run(self, run: BuildRun) -> bool:
        """Concurrent clients at the fastest search setting reaching ``min_recall`` (else the most accurate)."""
        sweep, ds, s, build, cc = run.sweep, run.ds, run.s, run.build, run.cfg.concurrency
        key = self.key(sweep, ds, s, build)
        if key in run.done or not run.worker.alive:
            return True
        ok = [(sp, f) for sp, f in run.measured if f.get("recall") is not None]
        if not ok:  # nothing to choose a setting from: say so rather than leave the point out
            sweep.record(ds, s, build, {}, key_override=key, workload=self.name, status="skipped", **run.build_fields,
                         error="no single-client point of this build was measured, so no setting to load")  # fmt: skip
            return True
        reaching = [m for m in ok if m[1]["recall"] >= cc.min_recall]
        sp, chosen = max(reaching, key=lambda m: m[1]["qps"]) if reaching else max(ok, key=lambda m: m[1]["recall"])
        rule = f"fastest setting with recall >= {cc.min_recall}" if reaching else "most accurate setting"
        base = {"chosen_by": rule, "chosen_recall": chosen["recall"], "chosen_qps": chosen["qps"]}

        def record(**fields: Any) -> None:
            sweep.record(ds, s, build, sp, key_override=key, workload=self.name, **base, **run.build_fields, **fields)

        context = {"duration_s": cc.duration_s, "host_cpus": os.cpu_count(), "engine": cc.engine,
                   "address": cc.address}  # fmt: skip
        try:
            handle = run.worker.call("client_handle", timeout=600)
            if handle is None:
                reason = get_store_class(s.store).single_process_reason
                record(status="skipped", error=f"{s.store} cannot be searched from several processes at once "
                                               f"({reason}), so only single-client figures exist")  # fmt: skip
                return True
            levels = measure_concurrency(ADAPTERS[s.store], run.engine.workdir, s.options, handle, ds.test, sp,
                                         run.cfg.k, cc.clients, cc.duration_s, run.cfg.warmup,
                                         get_store_class(s.store).mode, cc.engine, cc.address)  # fmt: skip
        except LoadFailed as e:  # the client counts measured before the failure are kept
            record(status="failed", error=f"load failed at {e.clients} clients: {describe_error(e.cause)}",
                   concurrency={"levels": e.levels, "failed_clients": e.clients, **context})  # fmt: skip
            return False
        except Exception as e:  # noqa: BLE001
            record(status="failed", error=f"load failed: {describe_error(e)}")
            return False
        record(status="ok", error=None, concurrency={"levels": levels, "note": handle.get("note"), **context})
        for lv in levels:
            bound = " (client-bound)" if lv["client_bound"] else ""
            sweep.console.print(f"  {lv['clients']:>3} clients: {lv['qps']:,.0f} QPS, p99 {lv['p99_ms']:.2f} ms{bound}")
        return True

    def console_table(self, records: list[dict[str, Any]]) -> Table:
        """Per client count of each concurrency record: QPS, latency, client-bound."""
        from rich.table import Table

        table = Table(title="concurrent clients (closed loop)")
        for col in ("dataset", "store", "index", "build", "search", "clients", "QPS", "p50 ms", "p99 ms", "note"):
            table.add_column(col, justify="right" if col in ("clients", "QPS", "p50 ms", "p99 ms") else "left")
        for r in records:
            if r.get("workload") != "concurrent":
                continue
            head = [
                r["dataset"],
                r["label"],
                r["index"],
                " ".join(f"{k}={v}" for k, v in r["build"].items()),
                " ".join(f"{k}={v}" for k, v in r["search"].items()),
            ]
            if r.get("status") != "ok":
                table.add_row(*head, "", "", "", "", f"[yellow]{r.get('status')}[/]: {r.get('error')}")
            for lv in (r.get("concurrency") or {}).get("levels", []):  # a failed record keeps the counts measured
                note = "client-bound" if lv.get("client_bound") else ""
                table.add_row(
                    *head, str(lv["clients"]), f"{lv['qps']:,.0f}", f"{lv['p50_ms']:.3f}", f"{lv['p99_ms']:.3f}", note
                )
        return table

    def compare_notes(self, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
        """QPS at each client count measured in both (one closed-loop run each: no spread, so no verdict)."""
        before = {lv.get("clients"): lv for lv in (old.get("concurrency") or {}).get("levels") or []}
        notes = []
        for lv in (new.get("concurrency") or {}).get("levels") or []:
            was = before.get(lv.get("clients"))
            if was and was.get("qps") and lv.get("qps") is not None:
                notes.append(f"{lv['clients']} clients: {was['qps']:,.0f} → {lv['qps']:,.0f} QPS "
                             f"({(lv['qps'] / was['qps'] - 1) * 100:+.1f}%)")  # fmt: skip
        if old.get("search") != new.get("search"):
            notes.append("measured at a different search setting")
        return ["concurrency (single run, no noise estimate): " + "; ".join(notes)] if notes else []
