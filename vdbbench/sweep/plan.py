"""From the config to what will be measured: the datasets resolved, checked against the stores, and listed."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from vdbbench.charts.fields import params_text
from vdbbench.config import GENERATED_COLUMN, ConfigError, DatasetConfig, SweepConfig
from vdbbench.core.filters import check_filter, mask
from vdbbench.data import downloads, embed  # noqa: F401  (they register the datasets they know by name)
from vdbbench.data.datasets import (
    Dataset,
    DatasetError,
    data_dir,
    dataset_path,
    load_hdf5,
    prepare,
    save_hdf5,
    subsample,
    synthetic,
)
from vdbbench.data.embed import build_text_dataset
from vdbbench.stores import ADAPTERS, get_store_class
from vdbbench.stores.base import unnamable
from vdbbench.workloads import workloads
from vdbbench.workloads.knn import MIN_SPLIT_QUERIES


def resolve_dataset(dc: DatasetConfig) -> Dataset:
    """Load (preparing on first use) the dataset a config entry names, subsampled as asked."""

    if dc.synthetic is not None:
        s = dc.synthetic
        path = (
            data_dir()
            / "synthetic"
            / (f"{dc.name}-n{s.n}-d{s.dim}-q{s.queries}-{s.metric}-c{s.clusters}-s{s.seed}-dup{s.duplicates}.hdf5")
        )
        if not path.exists():
            train, test = synthetic(s.n, s.dim, s.queries, s.metric, s.clusters, s.seed, s.duplicates)
            save_hdf5(path, train, test, s.metric, attrs={"source": "vdbbench synthetic", **s.model_dump()})
    elif dc.text is not None:
        path = build_text_dataset(dc.name, **dc.text.model_dump())
    else:
        path = Path(dc.path) if dc.path else prepare(dc.name)
    ds = subsample(load_hdf5(path, dc.name), dc.train_size, dc.test_size)
    if dc.filters is not None and not isinstance(dc.filters, list):  # generated: a column whose ranks set the fraction
        if GENERATED_COLUMN in (ds.attributes or {}):
            raise DatasetError(
                f"filters: the dataset already has an attribute {GENERATED_COLUMN!r}, which the generated selectivity "
                "filters would replace; rename it, or list filter expressions"
            )
        rank = np.random.default_rng(dc.filters.seed).permutation(ds.train.shape[0]).astype(np.int64)
        ds.attributes = {**(ds.attributes or {}), GENERATED_COLUMN: rank}
    return ds


def known_shape(dc: DatasetConfig) -> tuple[int | None, int | None, int | None]:
    """(train rows, dimension, queries) of a dataset entry as far as known without preparing or embedding it."""

    n = dim = queries = None
    if dc.synthetic is not None:
        n, dim, queries = dc.synthetic.n, dc.synthetic.dim, dc.synthetic.queries
    elif dc.text is not None and dc.text.max_passages and dc.text.holdout:
        n, queries = dc.text.max_passages - dc.text.holdout, dc.text.holdout
    else:
        path = Path(dc.path) if dc.path else dataset_path(dc.name)
        if path.exists():  # prepared earlier: read the shapes only
            import h5py

            with h5py.File(path, "r") as f:
                (n, dim), queries = f["train"].shape, f["test"].shape[0]
    n = min(n, dc.train_size) if n and dc.train_size else (dc.train_size or n)
    queries = min(queries, dc.test_size) if queries and dc.test_size else (dc.test_size or queries)
    return n, dim, queries


def planned_points(cfg: SweepConfig) -> list[str]:
    """One line per point the sweep would measure (dataset, store, family, settings, build, workload, search or
    target), worked out from the config alone: no engine starts, nothing is embedded or prepared."""

    lines = []
    for dc in cfg.datasets:
        shape = known_shape(dc)
        n, dim, queries = shape
        size = f"{n or '?'} vectors" + (f" × {dim}" if dim else "") + (f", {queries} queries" if queries else "")
        lines.append(f"{dc.name} ({size})")
        for s in cfg.stores:
            plan = cfg.plan(s, n, dim)
            head = f"  {dc.name} · {s.display_name} ({s.store}) {s.family} · settings {plan.settings}"
            for build in plan.builds:
                for w in workloads():
                    if w.applies(cfg, dc, s):
                        lines += w.plan_lines(cfg, dc, s, plan, shape, f"{head} · build {params_text(build, '-')}")
            lines += [f"{head} · note: {note}" for note in plan.notes]
    return lines


def check_compatibility(cfg: SweepConfig, datasets: dict[str, Dataset]) -> None:
    """Reject store × dataset combinations no engine could run (metric, dimension, k, filters, the engine's rules)."""

    problems: list[str] = []
    entries = {dc.name: (j, dc) for j, dc in enumerate(cfg.datasets)}
    for ds in datasets.values():
        j, dc = entries[ds.name]
        if ds.neighbors.shape[1] < min(cfg.k, ds.train.shape[0]):
            problems.append(
                f"k: {cfg.k} exceeds the {ds.neighbors.shape[1]} true neighbours stored for {ds.name!r}; "
                f"lower k or re-prepare the dataset"
            )
        filters = dc.filter_list(ds.train.shape[0])
        for m, flt in enumerate(filters):
            found = check_filter(flt, ds.attribute_kinds, f"datasets[{j}].filters[{m}]")
            if not found and not (passing := int(mask(flt, ds.attributes or {}).sum())):
                found = [f"datasets[{j}].filters[{m}]: {flt.text()} passes {passing} of {ds.train.shape[0]:,} rows "
                         f"of {ds.name!r}; a filter must pass at least one row (check its values against the "
                         "column's)"]  # fmt: skip
            problems += found
        fields = sorted({f for flt in filters for f in flt.fields})
        problems += [f"datasets[{j}].filters: {problem}" for problem in unnamable(fields)]
        for i, s in enumerate(cfg.stores):
            cls = get_store_class(s.store)
            fam = cls.families[s.family]
            if (cls.input == "text" or s.hybrid) and ds.text is None:
                problems.append(
                    f"stores[{i}]: {'hybrid search' if s.hybrid else s.store} needs the passages' text, and dataset "
                    f"{ds.name!r} has none; use a text dataset (datasets[].text with a corpus)"
                )
                continue
            problems += [f"stores[{i}]: {problem} (datasets[{j}].filters)" for problem in cls.reserved_clashes(fields)]
            for m, flt in enumerate(filters):
                if missing := sorted(flt.ops - cls.filter_ops):
                    able = [n for n in ADAPTERS if flt.ops <= get_store_class(n).filter_ops]
                    problems.append(f"stores[{i}]: {s.store} cannot filter with {missing} (datasets[{j}].filters[{m}]"
                                    f" = {flt.text()}); stores that can: {', '.join(sorted(able))}")  # fmt: skip
            n = ds.train.shape[0]
            plan = cfg.plan(s, n, ds.dim)
            for w in workloads():
                if w.applies(cfg, dc, s):
                    problems += [f"stores[{i}].{problem} (dataset {ds.name!r})" for problem in w.problems(s, n)]
            if plan.targets and ds.test.shape[0] < 2 * MIN_SPLIT_QUERIES:
                problems.append(
                    f"stores[{i}].recall_targets: {ds.name!r} has {ds.test.shape[0]} queries; tuning and evaluation "
                    f"need at least {MIN_SPLIT_QUERIES} each (give more queries, or drop recall_targets)"
                )
            if ds.metric not in fam.metrics:
                problems.append(
                    f"stores[{i}]: {s.store} {s.family} cannot search with metric {ds.metric!r} "
                    f"(dataset {ds.name!r}); it supports {', '.join(fam.metrics)}"
                )
            max_dim = fam.max_dim or cls.max_dim
            if max_dim is not None and ds.dim > max_dim:
                problems.append(
                    f"stores[{i}]: {s.store} {s.family} takes at most {max_dim} dimensions; "
                    f"dataset {ds.name!r} has {ds.dim}"
                )
            searches = plan.searches + ([plan.target_base] if plan.targets or s.churn else [])
            for build, search in itertools.product(plan.builds, searches):
                for rule in cls.check_point(s.family, build, search, ds.dim, cfg.k):
                    problem = f"stores[{i}].{rule} (dataset {ds.name!r}, dim {ds.dim}, k {cfg.k})"
                    if problem not in problems:
                        problems.append(problem)
    if problems:
        raise ConfigError("config does not fit the data:\n  " + "\n  ".join(problems))
