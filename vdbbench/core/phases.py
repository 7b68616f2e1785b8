"""Where a sweep's time went: named phases, each timed exclusively (a phase inside another is not counted twice).

The sweep makes a ``PhaseClock`` the active one for its run; code anywhere below it (data preparation,
embedding, ground truth in ``vdbbench.data``; tuning in a workload) marks its work with ``phase(...)``, which
does nothing when no clock is active (a library call, a test). A phase named with ``announce`` prints that line
when it starts, so a long step (ground truth, tuning) never runs with nothing on screen. Each part's seconds are
its own time minus the phases inside it, so the parts never add up to more than the total.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vdbbench.core.schema import SCHEMA_VERSION, TimeSummary

_active: PhaseClock | None = None


class PhaseClock:
    """Exclusive seconds per (phase, store) over one sweep, and its total wall time."""

    def __init__(self, announce: Callable[[str], None] | None = None) -> None:
        self.announce = announce
        self.seconds: dict[tuple[str, str | None], float] = {}
        self._stack: list[tuple[str, str | None]] = []
        self._since = 0.0  # when the innermost open phase (or the clock) last resumed counting
        self._start = 0.0
        self._end: float | None = None

    def _charge(self, now: float) -> None:
        """Add the time since the last switch to the innermost open phase."""
        if self._stack:
            top = self._stack[-1]
            self.seconds[top] = self.seconds.get(top, 0.0) + now - self._since
        self._since = now

    @contextmanager
    def running(self) -> Iterator[PhaseClock]:
        """Make this the active clock for the ``with`` body, timing the total."""
        global _active
        previous, _active = _active, self
        self.seconds, self._stack, self._end = {}, [], None  # a second run is timed on its own
        self._start = self._since = time.perf_counter()
        try:
            yield self
        finally:
            self._charge(time.perf_counter())
            self._end = time.perf_counter()
            _active = previous

    @contextmanager
    def phase(self, name: str, store: str | None = None, announce: str | None = None) -> Iterator[None]:
        """Time the body as ``name`` (of ``store``; a nested phase without one inherits its parent's)."""
        if store is None and self._stack:
            store = self._stack[-1][1]
        if announce and self.announce:
            self.announce(announce)
        self._charge(time.perf_counter())
        self._stack.append((name, store))
        try:
            yield
        finally:
            self._charge(time.perf_counter())
            self._stack.pop()

    def summary(self) -> dict[str, Any]:
        """Total seconds, each part (phase, store or null, seconds; in first-started order) and the unattributed
        rest (``other_s``: setup, writing records, the final tables), as ``vdbbench.core.schema.TimeSummary``."""
        total = (self._end if self._end is not None else time.perf_counter()) - self._start
        parts = [{"phase": name, "store": store, "seconds": round(s, 3)} for (name, store), s in self.seconds.items()]
        return {"total_s": round(total, 3), "parts": parts,
                "other_s": round(max(0.0, total - sum(p["seconds"] for p in parts)), 3)}  # fmt: skip


@contextmanager
def phase(name: str, store: str | None = None, announce: str | None = None) -> Iterator[None]:
    """Time the body as ``name`` on the active clock (announcing it when ``announce`` is given); no-op without one."""
    clock = _active
    if clock is None:
        yield
        return
    with clock.phase(name, store, announce):
        yield


SMALL_SHARE = 0.005  # parts under half a percent of the total are summed on one line (timings.jsonl keeps each)


def time_lines(summary: dict[str, Any]) -> list[str]:
    """Plain lines of a time summary: the total, then each part with its share, largest first; the parts under
    ``SMALL_SHARE`` of the total share one last line."""
    total = summary["total_s"] or 1e-9
    parts = [*summary["parts"], {"phase": "other", "store": None, "seconds": summary["other_s"]}]
    lines = [f"time: {clock_text(summary['total_s'])} in all"]
    small = [p for p in parts if p["seconds"] < SMALL_SHARE * total]
    for p in sorted((p for p in parts if p not in small), key=lambda p: -p["seconds"]):
        who = f"{p['store']} " if p["store"] else ""
        lines.append(f"  {who}{p['phase']}: {clock_text(p['seconds'])} ({p['seconds'] / total:.0%})")
    if small:
        seconds = sum(p["seconds"] for p in small)
        lines.append(f"  {len(small)} smaller part{'s' if len(small) != 1 else ''}: {clock_text(seconds)} "
                     f"({seconds / total:.0%})")  # fmt: skip
    return lines


def clock_text(seconds: float) -> str:
    """``1 min 05 s`` or ``4.2 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


TIMINGS_NAME = "timings.jsonl"  # beside results.jsonl: one TimeSummary line per run of the sweep


def append_timings(out_dir: Path, summary: dict[str, Any]) -> Path:
    """Append one run's time summary (validated against ``vdbbench.core.schema.TimeSummary``) beside its results."""
    line = {"schema": SCHEMA_VERSION, "time": datetime.now(UTC).isoformat(timespec="seconds"), **summary}
    TimeSummary.model_validate(line)
    path = Path(out_dir) / TIMINGS_NAME
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    return path
