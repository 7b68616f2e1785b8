"""The results file: one JSON record per measured point, appended and flushed as soon as it exists."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.provenance import redact
from vdbbench.core.schema import SCHEMA_VERSION, unknown_fields, upgrade

log = logging.getLogger(__name__)

RESULTS_NAME = "results.jsonl"


def point_key(dataset: dict[str, Any], label: str, family: str, build: dict, search: dict, k: int, *,
              workload: str, filter_text: str | None = None, options: dict | None = None,
              attributes: dict | None = None) -> str:  # fmt: skip
    """Stable identity of a measured point, used to resume a sweep without measuring twice: everything that
    changes its result (the store entry's options and the filter included)."""
    ident = {
        "dataset": [dataset["name"], dataset.get("sha256"), dataset["train"], dataset["test"]],
        "store": label,
        "index": family,  # the record's word for it
        "build": build,
        "search": search,
        "k": k,
        "workload": workload,
        "filter": filter_text,
        "options": options or {},
        "attributes": attributes or {},  # the attribute columns the build inserted and indexed
    }
    return hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def read_records(path: Path) -> list[dict[str, Any]]:
    """All complete records in ``path`` (secrets removed, also from files older harnesses wrote);
    a torn line from a crash is skipped with a warning."""
    if not path.exists():
        return []
    records = []
    lines = path.read_bytes().split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            records.append(upgrade(redact(json.loads(raw))))
        except json.JSONDecodeError:
            where = "last line" if number >= len(lines) - 1 else f"line {number}"
            log.warning("%s: %s is not a complete record (interrupted write?); ignoring it", path, where)
    warn_unknown(path, records)
    return records


def warn_unknown(path: Path, records: list[dict[str, Any]]) -> None:
    """Say which records a newer vdbbench wrote and which fields this version does not know: they are shown as
    they are, and a reader must not take them for fields it understands."""
    newer = sorted({r["schema"] for r in records if isinstance(r.get("schema"), int) and r["schema"] > SCHEMA_VERSION})
    if newer:
        log.warning("%s: %d record(s) were written in schema %s, newer than this vdbbench's %d; they are read as they "
                    "are, and fields or workloads it does not know are not interpreted (upgrade vdbbench to read "
                    "them fully)", path, sum(r.get("schema") in newer for r in records),
                    ", ".join(map(str, newer)), SCHEMA_VERSION)  # fmt: skip
    unknown = sorted({f for r in records for f in unknown_fields(r)})
    if unknown:
        log.warning("%s: fields this vdbbench does not know: %s; they are shown as they are", path, ", ".join(unknown))


def latest_per_point(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per point key: the newest, so a retried failure is superseded, never duplicated."""
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        latest.pop(r.get("key"), None)
        latest[r.get("key")] = r
    return list(latest.values())


def load_results(out_dir: str | Path) -> list[dict[str, Any]]:
    """The current record of every point in a results directory (or a results.jsonl path)."""
    path = Path(out_dir)
    if path.is_dir():
        path = path / RESULTS_NAME
    if not path.exists():
        raise FileNotFoundError(f"no results at {path}: run 'python -m vdbbench sweep --out DIR' first")
    return latest_per_point(read_records(path))


class ResultsFile:
    """Append-only JSONL writer; every record is on disk (fsync) before ``append`` returns.

    The directory is created by the first ``append``, so a sweep refused before it measured
    anything leaves no empty output directory behind.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / RESULTS_NAME
        self.repair()

    def repair(self) -> Path | None:
        """Move incomplete lines (a write torn by a crash) aside and keep only complete records.

        The torn bytes go to ``results.jsonl.torn-<UTC time>`` next to the file, which is then
        rewritten with its complete records only, so it stays JSONL and later reads do not warn.
        Returns the path the torn bytes were moved to, or None when the file was whole.
        """
        if not self.path.exists():
            return None
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        good, torn = [], []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                json.loads(raw)
            except json.JSONDecodeError:
                torn.append(raw)
            else:
                good.append(raw)
        if not torn and (not data or data.endswith(b"\n")):
            return None
        aside = None
        if torn:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            aside = self.path.with_name(f"{self.path.name}.torn-{stamp}")
            aside.write_bytes(b"\n".join(torn) + b"\n")
            log.warning("%s: moved %d incomplete line(s) (interrupted write) to %s", self.path, len(torn), aside.name)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(raw + b"\n" for raw in good))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        return aside

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.path)

    def latest(self) -> dict[str, dict[str, Any]]:
        """The current record of every point already in the file, by point key."""
        return {r["key"]: r for r in latest_per_point(self.records())}

    def append(self, record: dict[str, Any]) -> None:
        """Write one record (secrets removed) and return once it is on disk."""
        try:  # NaN and Infinity are not JSON: a file holding them is unreadable to other tools
            line = json.dumps(redact(record), default=_default, ensure_ascii=False, allow_nan=False) + "\n"
        except ValueError:
            bad = ", ".join(non_finite(record)) or "a value"
            raise ValueError(f"record {record.get('key')}: {bad} is not a finite number; not written") from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def non_finite(value: Any, path: str = "") -> list[str]:
    """Dotted paths of the NaN / infinite numbers in ``value``."""
    if isinstance(value, float | np.floating):
        return [] if math.isfinite(value) else [path or "value"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{path}.{k}".strip("."))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{path}[{i}]")]
    return []


def is_measured(record: dict[str, Any]) -> bool:
    """Measured successfully (or skipped on purpose): resume leaves such a point alone; failures are retried."""
    return record.get("status") in ("ok", "skipped")
