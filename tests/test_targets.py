"""Recall targets, portable settings in records, param_source and the search_param_ignored check (issue 12)."""

import numpy as np
import pytest

from vdbbench.config import parse_config
from vdbbench.core.results import load_results
from vdbbench.execution.points import param_sources, search_ignored
from vdbbench.sweep.runner import Sweep
from vdbbench.workloads.knn import query_split, tune_knob


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))


def config(stores, **over):
    data = {
        "k": 10,
        "runs": 1,
        "warmup": 5,
        # spread-out clusters in 24-d: a small graph misses neighbours at low ef, so recall moves
        "datasets": [{"name": "syn", "synthetic": {"n": 4000, "dim": 24, "queries": 120, "clusters": 4, "seed": 5}}],
        "stores": stores,
    }
    data.update(over)
    return parse_config(data)


# one build thread: the same graph every run (hnswlib's parallel inserts vary the graph run to run)
SMALL_GRAPH = {"store": "hnswlib", "index": "hnsw", "build": {"M": 4, "ef_construction": 16},
               "options": {"build_threads": 1}}  # fmt: skip


def test_query_split_is_disjoint_seeded_and_half_each():
    tune, evaluate, split = query_split(121)
    assert len(tune) == 60 and len(evaluate) == 61 and not set(tune) & set(evaluate)
    assert sorted([*tune, *evaluate]) == list(range(121)) and split == "seed0-half-of-121"
    assert np.array_equal(query_split(121)[0], tune)


def test_tune_knob_finds_the_cheapest_value_and_reports_an_unreached_target():
    curve = {v: min(1.0, v / 100) for v in range(1, 513)}  # recall v/100: 0.9 first reached at 90
    calls = []

    def recall_at(v):
        calls.append(v)
        return curve[v]

    assert tune_knob(recall_at, 0.9, 10, 512) == (90, True)
    assert len(calls) == len(set(calls)) <= 12  # doubling then bisection, no value probed twice
    flat = {v: 0.5 + 0.001 * min(v, 64) for v in range(1, 513)}  # tops out at 0.564 from 64 on
    assert tune_knob(flat.__getitem__, 0.9, 10, 300) == (80, False)  # best recall seen, smallest among equals


def test_recall_targets_on_hnswlib_reached_and_unreached(tmp_path):
    cfg = config([SMALL_GRAPH, {"store": "exact", "index": "flat"}], recall_targets=[0.9, 0.995], settings="portable")
    counts = Sweep(cfg, tmp_path / "out").run()
    assert counts["failed"] == 0
    records = load_results(tmp_path / "out")
    targets = sorted((r for r in records if r["target_recall"] is not None), key=lambda r: r["target_recall"])
    assert [r["target_recall"] for r in targets] == [0.9, 0.995]
    low, high = targets
    for r in targets:
        assert r["tuning_queries"] == 60 and r["evaluation_queries"] == 60
        assert r["dataset_info"]["test"] == 120 and r["search"]["ef"] >= 10
        assert r["param_source"] == {"m": "engine", "ef_construction": "engine", "ef": "engine"}
        assert r["build"] == {"m": 4, "ef_construction": 16} and r["settings"] == "portable"
    assert low["target_reached"] is True and low["tuning_recall"] >= 0.9
    assert abs(low["recall"] - 0.9) < 0.05  # measured on the other half: near the target, not far above
    # this small graph cannot reach 0.995 below the ef ceiling: recorded with the best recall found
    assert high["target_reached"] is False and high["search"]["ef"] > low["search"]["ef"]
    assert high["tuning_recall"] < 0.995 and high["recall"] > low["recall"]
    assert len({r["key"] for r in records}) == len(records) == 3
    # resume: the target points are recognised by target and split, not re-measured
    again = Sweep(cfg, tmp_path / "out").run()
    assert again["ok"] == 0 and again["resumed"] == 3


def test_every_record_has_param_source_settings_and_the_new_fields(tmp_path):
    stores = [
        {**SMALL_GRAPH, "search": {"ef": [10, 40]}},
        {"store": "hnswlib", "index": "hnsw", "label": "hnswlib-engine", "settings": "engine"},
        {"store": "exact", "index": "flat"},
    ]
    Sweep(config(stores, host={"price_per_hour": 116, "currency": "JPY"}), tmp_path / "out").run()
    records = load_results(tmp_path / "out")
    assert len(records) == 4
    for r in records:
        assert set(r["param_source"]) == set(r["build"]) | set(r["search"])
        assert r["host"] == {"price_per_hour": 116.0, "currency": "JPY"}
        assert r["search_param_ignored"] is False and r["target_recall"] is None and r["settings_note"] == []
        assert r["build_s"] == pytest.approx(r["insert_s"] + r["index_s"])
    engine = next(r for r in records if r["label"] == "hnswlib-engine")
    assert engine["settings"] == "engine" and engine["build"] == {"m": 16, "ef_construction": 200}
    assert engine["search"] == {"ef": 10}  # hnswlib's own default ef, not the portable grid
    hnsw = [r for r in records if r["label"] == "hnswlib"]
    assert {r["settings"] for r in hnsw} == {"portable"} and all(r["build_threads"] >= 1 for r in hnsw)


def test_param_source_is_engine_only_for_values_the_engine_reported():
    effective = {"params": {"m": 16, "ef_construction": 200, "ef": None}}
    assert param_sources({"m": 16, "ef_construction": 200, "ef": 40, "rescore": True}, effective) == {
        "m": "engine", "ef_construction": "engine", "ef": "sent", "rescore": "sent"}  # fmt: skip
    assert param_sources({"ef": 40}, None) == {"ef": "sent"}


def test_search_ignored_needs_identical_answers_and_recall_below_one():
    assert search_ignored({"all": {"a": ("x", 0.8), "b": ("x", 0.8)}})
    assert not search_ignored({"all": {"a": ("x", 0.8), "b": ("y", 0.9)}})
    assert not search_ignored({"all": {"a": ("x", 1.0), "b": ("x", 1.0)}})  # exact already: nothing to move
    assert not search_ignored({"all": {"a": ("x", 0.8)}})  # one setting proves nothing


def test_a_search_parameter_that_does_nothing_is_flagged(tmp_path):
    """Qdrant's ``rescore`` only acts on quantized vectors: on a plain HNSW build it changes nothing."""
    stores = [
        {"store": "qdrant", "index": "hnsw", "build": {"m": 4, "ef_construct": 8},
         "search": {"hnsw_ef": 10, "rescore": [True, False]}},
        {**SMALL_GRAPH, "search": {"ef": [10, 80]}},
    ]  # fmt: skip
    Sweep(config(stores), tmp_path / "out").run()
    records = load_results(tmp_path / "out")
    qdrant = [r for r in records if r["store"] == "qdrant"]
    assert len(qdrant) == 2 and all(r["recall"] < 1 for r in qdrant)
    assert all(r["search_param_ignored"] is True for r in qdrant)
    assert qdrant[0]["param_source"]["rescore"] == "sent"
    hnsw = [r for r in records if r["store"] == "hnswlib"]
    assert len(hnsw) == 2 and not any(r["search_param_ignored"] for r in hnsw)
