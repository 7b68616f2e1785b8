"""Concurrent clients: several client processes at once, at the fastest setting that reaches ``min_recall``.

Each client count runs a closed loop for ``duration_s`` (vdbbench.execution.concurrent, locally or on Ray
actors); one record per build holds every level (the config and record key is ``concurrency``). A store that
cannot be searched from a second process is recorded as skipped, with the reason. Its part of the report:
a table and a plot of QPS against clients, and a finding sentence for the summary.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from vdbbench.charts.fields import all_params, fmt_num, is_number, params_text
from vdbbench.charts.plots import (
    LINESTYLES,
    Series,
    build_label,
    databases,
    new_figure,
    plot_style,
    png_data_uri,
    qps_tick,
    series_key,
)
from vdbbench.charts.ranking import reaches
from vdbbench.config import DatasetConfig, StoreConfig, StorePlan, SweepConfig
from vdbbench.data.datasets import Dataset
from vdbbench.execution.concurrent import ConcurrentFailed, measure_concurrent
from vdbbench.execution.points import PointId, describe_error
from vdbbench.stores import ADAPTERS, get_store_class
from vdbbench.workloads import BuildRun, Workload
from vdbbench.workloads.base import SweepContext

if TYPE_CHECKING:
    from rich.table import Table


class Concurrent(Workload):
    name = "concurrent"
    order = 30
    counted_apart = "concurrent-client measurement"
    setting_note = "concurrent clients at"

    def applies(self, cfg: SweepConfig, dc: DatasetConfig, s: StoreConfig) -> bool:
        return cfg.concurrency is not None

    def key(self, sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict) -> str:
        """One concurrency point per build: the client counts name it (the setting is chosen when it runs)."""
        return sweep.key(ds, s, build, {"concurrency": sweep.cfg.concurrency.clients}, workload=self.name)

    def points(self, sweep: SweepContext, ds: Dataset, s: StoreConfig, build: dict) -> list[PointId]:
        return [PointId(self.key(sweep, ds, s, build), ds, {}, self.name)]

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
        reaching = [m for m in ok if reaches(m[1], cc.min_recall)]  # the ranking's rule: its interval reaches it
        sp, chosen = max(reaching, key=lambda m: m[1]["qps"]) if reaching else max(ok, key=lambda m: m[1]["recall"])
        rule = f"fastest setting whose recall interval reaches {cc.min_recall}" if reaching else "most accurate setting"
        base = {"chosen_by": rule, "chosen_recall": chosen["recall"], "chosen_qps": chosen["qps"]}

        def record(**fields: Any) -> None:
            sweep.record(ds, s, build, sp, key_override=key, workload=self.name, **base, **run.build_fields, **fields)

        context = {"duration_s": cc.duration_s, "host_cpus": os.cpu_count(), "engine": cc.engine,
                   "address": cc.address, "min_recall": cc.min_recall, "reached": bool(reaching)}  # fmt: skip
        try:
            handle = run.worker.call("client_handle", timeout=600)
            if handle is None:
                reason = get_store_class(s.store).single_process_reason
                record(status="skipped", error=f"{s.store} cannot be searched from several processes at once "
                                               f"({reason}), so only single-client figures exist")  # fmt: skip
                return True
            levels = measure_concurrent(ADAPTERS[s.store], run.engine.workdir, s.options, handle, ds.test, sp,
                                         run.cfg.k, cc.clients, cc.duration_s, run.cfg.warmup,
                                         get_store_class(s.store).mode, cc.engine, cc.address)  # fmt: skip
        except ConcurrentFailed as e:  # the client counts measured before the failure are kept
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
        for r in self.mine(records):
            head = [r["dataset"], r["label"], r["index"], params_text(r["build"], ""), params_text(r["search"], "")]
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

    def match_fields(self, record: dict[str, Any]) -> list[Any]:
        """One per build, at whichever search setting it chose: the setting is not part of its identity."""
        return ["concurrency"]

    def report_section(self, records: list[dict[str, Any]], series: dict, targets: tuple[float, ...]) -> dict | None:
        """A row per client count of each record, and QPS against clients (see the template)."""
        mine = self.mine(records)
        return {"rows": level_rows(mine, series), "plot": clients_plot(mine, series)} if mine else None

    def findings(self, records: list[dict[str, Any]], series: dict) -> list[Markup]:
        """Which database (a baseline only when no database has figures) served the most at the most clients
        measured, among those whose setting reached the same recall (``min_recall``); the others are named apart,
        never compared with them."""
        ok = [r for r in self.mine(records) if r.get("status") == "ok"]
        fair = [r for r in ok if reached_min_recall(r)]
        levels = [(r, lv) for r in fair
                  for lv in (r.get("concurrency") or {}).get("levels") or [] if is_number(lv.get("qps"))]  # fmt: skip
        levels = [x for x in levels if not series[series_key(x[0])].baseline] or levels
        if not levels:
            return []
        most = max(lv.get("clients", 0) for _, lv in levels)
        r, lv = max(((r, lv) for r, lv in levels if lv.get("clients") == most), key=lambda x: x[1]["qps"])
        bar = (r.get("concurrency") or {}).get("min_recall")
        sentence = Markup("With {} concurrent clients, <strong>{}</strong> served the most{}: {} QPS, p99 {} ms")
        sentence += Markup(" ({}, recall {})")
        sentence = sentence.format(most, series[series_key(r)].name,
                                   f" of the settings reaching recall ≥ {bar}" if bar is not None else "",
                                   fmt_num(lv["qps"]), fmt_num(lv.get("p99_ms")),
                                   all_params(r) or "defaults", fmt_num(r.get("chosen_recall"), 4))  # fmt: skip
        if lv.get("client_bound"):
            sentence += Markup(", limited by the load-generating clients rather than the engine")
        short = sorted({series[series_key(x)].name for x in ok if not reached_min_recall(x)})
        if short:
            sentence += Markup("; not compared: {} (no setting reached that recall)").format(", ".join(short))
        return [sentence + Markup(".")]

    def missing_figures(self, records: list[dict[str, Any]], series: dict) -> list[str]:
        """Which databases have no concurrent-client figures, and why (the records' reasons)."""
        mine = self.mine(records)
        if not mine:
            return ["No concurrency figures: the sweep did not measure concurrent clients "
                    "(add concurrency: {clients: [1, 2, 4]} to the config)."]  # fmt: skip
        out = []
        for label, who in databases(records, series).items():
            theirs = [r for r in mine if str(r.get("label")) == label]
            if any(r.get("status") == "ok" for r in theirs):
                continue
            reasons = sorted({str(r.get("error") or r.get("status")) for r in theirs})
            reasons = reasons or ["no concurrency measurement was recorded (see failed points)"]
            out.append(f"No concurrency figures for {who}: {'; '.join(reasons)}.")
        return out


def reached_min_recall(record: dict[str, Any]) -> bool:
    """Whether a concurrency record's setting reached ``min_recall`` (older records: its ``chosen_by`` rule)."""
    reached = (record.get("concurrency") or {}).get("reached")
    return reached if isinstance(reached, bool) else str(record.get("chosen_by") or "").startswith("fastest")


def level_rows(records: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> list[dict[str, Any]]:
    """One row per client count of each concurrent-client record (one row for a record with none)."""
    rows = []
    for r in records:
        info = r.get("concurrency") or {}
        for level in info.get("levels") or [{}]:
            rows.append({"r": r, "series": series[series_key(r)], "build_text": params_text(r.get("build")),
                         "search_text": params_text(r.get("search")), "level": level, "note": info.get("note"),
                         "duration_s": info.get("duration_s")})  # fmt: skip
    return rows


def clients_plot(records: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> str | None:
    """QPS against the number of concurrent clients, one line per measured build."""
    measured = [r for r in records if r.get("status") == "ok" and (r.get("concurrency") or {}).get("levels")]
    if not measured:
        return None
    from matplotlib.ticker import FuncFormatter

    with plot_style():
        fig = new_figure(9, 4.2 + 0.16 * len(measured))
        ax = fig.add_subplot()
        seen: dict[str, int] = defaultdict(int)
        for r in measured:
            s = series[series_key(r)]
            levels = sorted(r["concurrency"]["levels"], key=lambda lv: lv.get("clients", 0))
            style = LINESTYLES[seen[s.tag] % len(LINESTYLES)]  # builds of one store: same colour, own line style
            seen[s.tag] += 1
            ax.plot([lv.get("clients") for lv in levels], [lv.get("qps") for lv in levels], color=s.color,
                    marker=s.marker, linestyle=style, linewidth=1.6, label=build_label(s, r.get("build")))  # fmt: skip
        clients = sorted({lv.get("clients") for r in measured for lv in r["concurrency"]["levels"]})
        ax.set_xscale("log", base=2)
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("queries per second, all clients (log scale)")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(qps_tick))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: qps_tick(v, _) if str(v)[0] in "25" else ""))
        ax.grid(True, which="major", alpha=0.3)
        ax.grid(True, which="minor", alpha=0.1)
        fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
        return png_data_uri(fig)
