"""Every measured point as a flat table: ``points.csv`` (and ``points.parquet`` when pyarrow is installed).

For people who want the raw numbers in pandas or a spreadsheet rather than the HTML report.
One row per point (records a workload counts apart, as concurrent-client measurements, are not
points; failed and skipped points are rows with their status and error). Build and search
parameters appear both as one string and as a column per parameter (``build.M``, ``search.ef``);
other numeric fields, nested ones flattened (``batch.qps``, ``client.cpu_share``, ``ndcg@10``), get
a column each.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from vdbbench.charts.fields import is_number, params_text
from vdbbench.charts.ranking import memory_bytes
from vdbbench.stores.identity import record_identity
from vdbbench.workloads import workload_of

CSV_NAME, PARQUET_NAME = "points.csv", "points.parquet"

LEADING = (
    "dataset", "store", "label", "engine", "engine_product", "engine_version", "engine_mode", "baseline", "family",
    "workload", "build", "search", "filter", "selectivity", "k", "status", "error", "recall", "recall_ci95_low",
    "recall_ci95_high", "qps", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "insert_s", "index_s", "build_s",
    "build_threads", "memory_bytes", "target_recall", "target_reached", "tuning_queries", "evaluation_queries",
    "recall_live", "deleted_returned", "freshness_s", "settings", "time", "key",
)  # fmt: skip

# Record fields that are nested structures or shown above under another name; not flattened again.
SKIP = frozenset({"engine", "index", "build", "search", "filter", "options", "effective", "resources", "provenance",
                  "dataset_info", "qps_runs", "config_mismatch", "param_source", "settings_note", "host"})  # fmt: skip


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One point record as a flat row of scalars."""
    engine = record_identity(record)
    row: dict[str, Any] = {
        "engine": engine.get("label"),
        "engine_product": engine.get("product"),
        "engine_version": engine.get("version"),
        "engine_mode": engine.get("mode"),
        "baseline": engine.get("baseline"),
        "family": record.get("index"),
        "build": params_text(record.get("build")),
        "search": params_text(record.get("search")),
        "filter": json.dumps(record["filter"], ensure_ascii=False) if record.get("filter") else None,
        "memory_bytes": memory_bytes(record),
    }
    for name in ("build", "search"):
        for param, value in (record.get(name) or {}).items():
            row[f"{name}.{param}"] = value
    for key, value in record.items():
        if key in SKIP or key in row:
            continue
        if isinstance(value, dict):
            row.update({f"{key}.{k}": v for k, v in value.items() if _scalar(v)})
        elif _scalar(value):
            row[key] = value
    if isinstance(record.get("recall_ci95"), list | tuple) and len(record["recall_ci95"]) == 2:
        row["recall_ci95_low"], row["recall_ci95_high"] = record["recall_ci95"]  # a list is no CSV cell
    if record.get("config_mismatch"):
        row["config_mismatch"] = "; ".join(map(str, record["config_mismatch"]))
    return row


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or is_number(value)


def point_rows(records: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names (leading ones first, then the rest sorted) and one row per point record."""
    rows = [flatten(r) for r in records if workload_of(r).counted_apart is None]
    seen = {c for row in rows for c in row}
    columns = [c for c in LEADING if c in seen] + sorted(seen - set(LEADING))
    return columns, rows


def _uniform(columns: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows whose every column holds one type (numbers, or else text), as columnar formats need."""
    out = [dict(row) for row in rows]
    for c in columns:
        values = [row.get(c) for row in rows if row.get(c) is not None]
        kinds = {bool if isinstance(v, bool) else float if is_number(v) else str for v in values}
        for row in out:
            v = row.get(c)
            if v is None:
                continue
            if len(kinds) > 1:
                row[c] = json.dumps(v) if not isinstance(v, str) else v
            elif kinds == {float}:
                row[c] = float(v)
    return out


def write_points(records: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write ``points.csv`` (and ``points.parquet`` when pyarrow is importable) into ``folder``; their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns, rows = point_rows(records)
    written = [folder / CSV_NAME]
    tmp = written[0].with_name(CSV_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(written[0])
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    uniform = _uniform(columns, rows)
    table = pa.table({c: [row.get(c) for row in uniform] for c in columns})
    tmp = folder / (PARQUET_NAME + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(folder / PARQUET_NAME)
    return [*written, folder / PARQUET_NAME]
