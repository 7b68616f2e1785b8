"""``python -m vdbbench services check``: a first-run self-check of the server stores on this host.

Per store × index family it builds a tiny index with the family's default parameters, reads the
effective configuration back from the engine, runs 20 queries and prints one line: ok, or what
differs from what was asked. Users run it once before a long sweep, so a wrong address, a missing
feature or a scan labelled as an index shows up in a minute instead of hours in.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.metrics import recall_at_k
from vdbbench.data.datasets import synthetic
from vdbbench.data.groundtruth import exact_knn
from vdbbench.execution.points import config_mismatches
from vdbbench.stores import BuildSpec, get_store_class

QUERIES = 20
K = 10


@dataclass
class CheckLine:
    store: str
    family: str
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{self.store} {self.family}: {'ok' if self.ok else 'DIFFERS'} - {self.text}"


def check_store(name: str, options: dict[str, Any], n: int = 2000, dim: int = 32) -> list[CheckLine]:
    """One line per family of store ``name``; a store that cannot open gives one failed line per family."""
    cls = get_store_class(name)
    unknown = sorted(set(options) - set(cls.options_help))
    if unknown:
        return [CheckLine(name, "*", False, f"unknown option(s) {unknown}; valid keys: {', '.join(cls.options_help)}")]
    train, test = synthetic(n=n, dim=dim, queries=QUERIES, metric="euclidean", clusters=20, seed=11)
    neighbors, _ = exact_knn(train, test, "euclidean", K)
    lines = []
    with tempfile.TemporaryDirectory(prefix=f"vdbbench-check-{name}-") as workdir:
        store = cls(Path(workdir), options)
        try:
            store.open()
        except Exception as e:  # noqa: BLE001 - reported per family, the check goes on with other stores
            return [CheckLine(name, fam, False, f"open failed: {e}") for fam in cls.families]
        try:
            for family, fam in cls.families.items():
                if "euclidean" not in fam.metrics:
                    continue
                lines.append(_check_family(store, family, fam, train, test, neighbors))
        finally:
            store.close()
    return lines


def _check_family(store, family: str, fam, train: np.ndarray, test: np.ndarray, neighbors: np.ndarray) -> CheckLine:
    name = store.name
    build = {p.name: p.default for p in fam.build}
    search = {p.name: p.default for p in fam.search}
    rules = type(store).check_point(family, build, search, train.shape[1], K)
    if rules:
        return CheckLine(name, family, False, "; ".join(rules))
    try:
        store.create(BuildSpec(family, "euclidean", train.shape[1], build, count=len(train)))
        store.insert(np.arange(len(train), dtype=np.int64), train)
        store.build_index()
        store.set_search_params(search)
        answers = [np.asarray(store.search(q, K)) for q in test]
        effective = store.effective_config()
    except Exception as e:  # noqa: BLE001
        return CheckLine(name, family, False, f"failed: {type(e).__name__}: {str(e)[:300]}")
    finally:
        try:
            store.drop()
        except Exception:  # noqa: BLE001 - the build's own error matters more
            pass
    recall = recall_at_k(answers, test, train, neighbors, K, "euclidean").recall
    differs = config_mismatches(family, build | search, effective)
    served = effective.get("family")
    text = f"recall@{K} {recall:.3f} on {len(test)} queries, engine serves {served}"
    if differs:
        return CheckLine(name, family, False, f"{'; '.join(differs)} ({text})")
    return CheckLine(name, family, True, text)
