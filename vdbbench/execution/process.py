"""The store's own process as the sweep uses it: started once per store entry, with its memory sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vdbbench.config import StoreConfig, SweepConfig
from vdbbench.core.resources import PeakSampler, dir_bytes, tree_rss
from vdbbench.data.datasets import Dataset
from vdbbench.execution.points import store_inputs
from vdbbench.execution.worker import StoreWorker
from vdbbench.stores import ADAPTERS
from vdbbench.stores.services import container_resources


class StoreProcess:
    """One running store process, with its memory sampler and the harness's measured floor cost."""

    def __init__(self, worker: StoreWorker, workdir: Path, floor_us: float, compose_service: str | None) -> None:
        self.worker = worker
        self.workdir = workdir
        self.floor_us = floor_us
        self.compose_service = compose_service
        self.sampler = PeakSampler(self._measured_pids)

    @classmethod
    def start(cls, s: StoreConfig, workdir: Path, ds: Dataset, cfg: SweepConfig) -> StoreProcess:
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

        figures = container_resources(self.compose_service)
        if not figures:
            return {"container_note": getattr(figures, "reason", "")}
        return {f"container_{name}": value for name, value in figures.items()}

    def close(self) -> None:
        self.sampler.stop()
        self.worker.close()
