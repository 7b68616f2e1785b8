"""Bad input fails before any engine starts, with a message naming the field; property-based."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vdbbench.config import ConfigError, parse_config
from vdbbench.data.datasets import DatasetError, load_hdf5
from vdbbench.sweep.runner import Sweep

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=True), st.text(max_size=8))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
KEYS = st.sampled_from(["k", "runs", "warmup", "datasets", "stores", "limits", "concurrency", "batch_size", "extra"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_document_is_accepted_or_rejected_with_config_error(data):
    try:
        parse_config(data)
    except ConfigError as e:
        assert str(e).strip()


STORE_KEYS = st.sampled_from(["store", "index", "build", "search", "options", "label", "bogus"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(STORE_KEYS, VALUES, max_size=5), min_size=1, max_size=3))
def test_any_store_list_is_accepted_or_rejected_naming_a_store_field(stores):
    data = {"datasets": [{"name": "syn", "synthetic": {"n": 10}}], "stores": stores}
    try:
        parse_config(data)
    except ConfigError as e:
        assert "stores" in str(e)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-3, 100), min_size=1, max_size=4))
def test_hnsw_m_values_are_checked_one_by_one(values):
    data = {
        "datasets": [{"name": "syn", "synthetic": {}}],
        "stores": [{"store": "hnswlib", "index": "hnsw", "build": {"M": values}}],
    }
    if all(v >= 2 for v in values):
        cfg = parse_config(data)
        assert [b["m"] for b in cfg.build_grid(cfg.stores[0])] == values
    else:
        with pytest.raises(ConfigError, match=r"stores\[0\]\.build\.M: must be >= 2"):
            parse_config(data)


ARRAYS = st.tuples(st.integers(0, 6), st.integers(0, 5), st.integers(0, 4), st.integers(0, 5))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ARRAYS, st.booleans(), st.booleans(), st.sampled_from(["euclidean", "angular", "ip", "hamming", None]))
def test_any_hdf5_file_loads_or_raises_dataset_error(tmp_path, shape, with_nan, with_truth, distance):
    n_train, dim, n_test, test_dim = shape
    rng = np.random.default_rng(0)
    path = tmp_path / "f.hdf5"
    with h5py.File(path, "w") as f:
        if distance:
            f.attrs["distance"] = distance
        train = rng.normal(size=(n_train, dim)).astype(np.float32)
        if with_nan and train.size:
            train.flat[0] = np.nan
        f["train"] = train
        f["test"] = rng.normal(size=(n_test, test_dim)).astype(np.float32)
        if with_truth:
            f["neighbors"] = rng.integers(0, max(n_train, 1), size=(n_test, 3))
            f["distances"] = np.zeros((n_test, 3))
    try:
        ds = load_hdf5(path)
    except DatasetError as e:
        assert str(path) in str(e)
        return
    assert ds.train.shape[1] == ds.test.shape[1] and np.isfinite(ds.train).all()


def test_metric_a_store_cannot_take_is_rejected_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))
    cfg = parse_config({
        "datasets": [{"name": "wide", "synthetic": {"n": 50, "dim": 2100, "queries": 3}}],
        "stores": [{"store": "pgvector", "index": "hnsw"}, {"store": "exact", "index": "flat"}],
    })  # fmt: skip
    with pytest.raises(ConfigError, match=r"stores\[0\]: pgvector hnsw takes at most 2000 dimensions"):
        Sweep(cfg, tmp_path / "out").run()
    assert not (tmp_path / "out" / "work").exists()  # no engine was started
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_unknown_dataset_name_lists_known_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))
    cfg = parse_config({"datasets": [{"name": "no-such-set"}], "stores": [{"store": "exact", "index": "flat"}]})
    with pytest.raises(ConfigError, match=r"datasets\[0\] \(no-such-set\): unknown dataset.*fashion-mnist"):
        Sweep(cfg, tmp_path / "out").run()
