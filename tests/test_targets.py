"""Recall targets, portable settings in records, param_source and the search_param_ignored check (issue 12)."""

import json

import numpy as np
import pytest

from vdbbench.charts.plots import build_series
from vdbbench.charts.ranking import interval, rank
from vdbbench.config import parse_config
from vdbbench.core.phases import PhaseClock, phase
from vdbbench.core.results import load_results
from vdbbench.execution.points import param_sources, search_ignored
from vdbbench.report.page import headline
from vdbbench.sweep.runner import Sweep
from vdbbench.workloads import is_ranked
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
    # with a margin (the tuning interval's half-width) the aim is target + margin: 0.9 + 0.03 is first met at 93
    assert tune_knob(curve.__getitem__, 0.9, 10, 512, lambda v: 0.03) == (93, True)


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
    # tuning aims above the target by the tuning recall's own interval half-width, and reaches that aim
    assert low["tuning_recall"] >= low["tuning_aim"] > 0.9 and low["target_reached"] is True
    assert abs(low["recall"] - low["tuning_aim"]) < 0.05  # measured on the other half: near the aim, not far above
    # this small graph cannot reach 0.995 (plus margin) below the ef ceiling: recorded with the best recall found,
    # and whether the target counts as reached is the held-out interval's say alone
    assert high["tuning_recall"] < high["tuning_aim"] and high["search"]["ef"] > low["search"]["ef"]
    assert high["target_reached"] is (high["recall_ci95"][1] >= 0.995) and high["recall"] > low["recall"]
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


# -- recall with its interval, judged on held-out queries (issue 23) ------------------------------------------------
HARD_PG = {"store": "pgvector", "index": "hnsw", "build": {"m": 4, "ef_construction": 16}}


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """One sweep with targets 0.9 and 0.95 on hnswlib and pgvector (a real local server), small graphs on spread-out
    clusters so recall moves with ef and is not all 1.0: its records and the sweep (for its time summary)."""
    out = tmp_path_factory.mktemp("held-out")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDBBENCH_DATA_DIR", str(out / "data"))
        sweep = Sweep(config([SMALL_GRAPH, HARD_PG], recall_targets=[0.9, 0.95], settings="portable"), out / "res")
        counts = sweep.run()
    return counts, load_results(out / "res"), sweep, out / "res"


def test_target_reached_is_the_held_out_interval_and_tuning_aims_above_the_target(held_out):
    counts, records, _, _ = held_out
    assert counts["failed"] == 0
    targets = [r for r in records if r["target_recall"] is not None]
    assert sorted((r["store"], r["target_recall"]) for r in targets) == [
        ("hnswlib", 0.9), ("hnswlib", 0.95), ("pgvector", 0.9), ("pgvector", 0.95)]  # fmt: skip
    assert any(r["recall"] < 1.0 for r in targets)  # hard enough that the interval means something
    for r in targets:
        low, high = r["recall_ci95"]
        assert low <= r["recall"] <= high and high - low < 0.2
        assert r["target_reached"] is (high >= r["target_recall"])  # every true record: the interval reaches it
        if r["recall"] >= r["target_recall"]:
            assert r["target_reached"] is True  # every record at or above its target says so
        # the aim: the target plus the tuning recall's interval half-width (zero only where tuning recall is 1.0)
        margin = r["tuning_aim"] - r["target_recall"]
        assert margin > 0 or (margin == 0 and r["tuning_recall"] == 1.0)
        assert r["evaluation_queries"] == 60 and r["search"]["ef"] >= 10


def test_the_ranking_never_lists_a_store_under_a_target_its_interval_lies_below(held_out):
    _, records, _, _ = held_out
    # the recorded sweep, and the same records with one tuned point made to lie below its target (0.876 at 0.9, as in
    # issue 23: an older harness said target_reached: true there)
    lying = dict(next(r for r in records if r["store"] == "pgvector" and r["target_recall"] == 0.9))
    lying.update(key="lying", label="pg-lying", recall=0.876, recall_ci95=[0.85, 0.899], target_reached=True)
    for recs in (records, [*records, lying]):
        for rk in rank(recs, (0.9, 0.95), ranked=is_ranked):
            for e in rk.databases + [b for b in rk.baselines if b.reached]:
                assert interval(e.point)[1] >= rk.target and e.point["target_recall"] == rk.target
            for e in rk.missed:
                assert e.point is None and e.best_recall == max(r["recall"] for r in recs if r["label"] == e.label)
    rk = rank([*records, lying], (0.9,), ranked=is_ranked)[0]
    assert "pg-lying" in [e.label for e in rk.missed] and "pg-lying" not in [e.label for e in rk.databases]
    # the "QPS at recall ≥" table shows exactly the points the ranking lists (one rule for both)
    ok = [r for r in [*records, lying] if is_ranked(r) and r["status"] == "ok"]
    rows = headline(ok, build_series(ok), (0.9, 0.95))
    for i, rk in enumerate(rank([*records, lying], (0.9, 0.95), ranked=is_ranked)):
        listed = {e.label: e.point for e in rk.databases + rk.missed + rk.baselines}
        assert {row["series"].label: row["cells"][i] for row in rows} == listed


def test_the_time_summary_has_every_part_and_adds_up(held_out):
    _, _, sweep, out = held_out
    lines = (out / "timings.jsonl").read_text().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["schema"] == 2 and summary == {**summary, **sweep.clock.summary(), "time": summary["time"]}
    parts = {(p["phase"], p["store"]) for p in summary["parts"]}
    assert {("data preparation", None), ("ground truth", None)} <= parts
    for store in ("hnswlib", "pgvector"):
        assert {(name, store) for name in ("start and stop", "build", "tuning", "timed passes", "drop")} <= parts
    assert all(p["seconds"] >= 0 for p in summary["parts"]) and summary["other_s"] >= 0
    assert sum(p["seconds"] for p in summary["parts"]) <= summary["total_s"] + 1e-6


def test_phases_are_timed_exclusively_and_announced():
    said = []
    clock = PhaseClock(announce=said.append)
    with phase("outside any clock"):  # no active clock: nothing recorded, nothing fails
        pass
    with clock.running():
        with phase("build", "s1"), phase("tuning", announce="tuning ef"):  # a nested phase inherits the store
            pass
    summary = clock.summary()
    assert [(p["phase"], p["store"]) for p in summary["parts"]] == [("build", "s1"), ("tuning", "s1")]
    assert said == ["tuning ef"]
    total = sum(p["seconds"] for p in summary["parts"]) + summary["other_s"]
    assert total == pytest.approx(summary["total_s"], abs=1e-2)


def test_time_lines_sum_the_smallest_parts_on_one_line():
    from vdbbench.core.phases import time_lines

    parts = [
        {"phase": "build", "store": "s1", "seconds": 90.0},
        {"phase": "drop", "store": "s1", "seconds": 0.2},
        {"phase": "drop", "store": "s2", "seconds": 0.1},
        {"phase": "tuning", "store": "s2", "seconds": 9.0},
    ]
    lines = time_lines({"total_s": 100.0, "parts": parts, "other_s": 0.7})
    assert lines == ["time: 1 min 40 s in all", "  s1 build: 1 min 30 s (90%)", "  s2 tuning: 9.0 s (9%)",
                     "  other: 0.7 s (1%)", "  2 smaller parts: 0.3 s (0%)"]  # fmt: skip
