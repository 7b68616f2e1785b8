"""Memory and disk of what a store runs: its worker process tree and any server it started.

A background thread samples resident memory every ``interval`` seconds and keeps the peak
per phase (build, queries), so a short spike between samples can be missed: the figures are
lower bounds on the true peak, at a resolution the record states.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil


def tree_rss(pids: Iterable[int]) -> int:
    """Resident bytes of these processes and all their descendants, each counted once."""
    seen: dict[int, int] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for p in (root, *root.children(recursive=True)):
                if p.pid not in seen:
                    seen[p.pid] = p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sum(seen.values())


def dir_bytes(path: Path) -> int:
    """Bytes allocated on disk by the files under ``path``, as ``du`` counts them (0 if it does not exist).

    Allocated blocks, not file lengths: engines preallocate sparse mmap files whose length
    overstates what they use. Files that vanish while an engine runs are skipped.
    """
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


class PeakSampler:
    """Peak resident memory of a set of processes, per named phase."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.2) -> None:
        self._pids = pids  # called at each sample: servers may start or restart
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self._phase: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        phase = self._phase
        if phase is not None:
            rss = tree_rss(self._pids())
            self.peaks[phase] = max(self.peaks.get(phase, 0), rss)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._phase = name
        self.sample()
        try:
            yield
        finally:
            self.sample()
            self._phase = None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
