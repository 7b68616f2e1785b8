"""compare: two real small sweeps matched point by point, changes judged against their noise."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from vdbbench.charts.fields import qps_range
from vdbbench.cli import main
from vdbbench.config import parse_config
from vdbbench.core.results import ResultsFile, load_results
from vdbbench.report import compare as cmp
from vdbbench.report.compare import BETTER, NOISE, UNKNOWN, WORSE, compare_dirs, compare_points, match_key
from vdbbench.report.page import write_report
from vdbbench.sweep.runner import Sweep


def sweep(out: Path, efs: list[int]) -> Path:
    cfg = {
        "k": 10,
        "runs": 3,
        "warmup": 5,
        "datasets": [{"name": "syn", "synthetic": {"n": 2000, "dim": 16, "queries": 50, "seed": 4}}],
        "stores": [
            {"store": "hnswlib", "index": "hnsw", "build": {"M": 8, "ef_construction": 64}, "search": {"ef": efs}},
            {"store": "exact", "index": "flat"},
        ],
    }
    Sweep(parse_config(cfg), out, raw_config=cfg).run()
    return out


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDBBENCH_DATA_DIR", str(root / "data"))
        return sweep(root / "old", [10, 40]), sweep(root / "new", [40, 160])


def test_points_are_matched_and_one_sided_points_listed(two_sweeps):
    old, new = two_sweeps
    comp = compare_dirs(old, new)
    matched = sorted((c.new["label"], c.new["search"].get("ef")) for c in comp.changes)
    assert matched == [("exact", None), ("hnswlib", 40)]
    assert [r["search"] for r in comp.only_old] == [{"ef": 10}]
    assert [r["search"] for r in comp.only_new] == [{"ef": 160}]
    assert comp.counts()["matched"] == 2 and comp.counts()["only_old"] == 1 and comp.counts()["only_new"] == 1


def test_changes_are_computed_and_judged_against_the_measured_spread(two_sweeps):
    old, new = two_sweeps
    comp = compare_dirs(old, new)
    for c in comp.changes:
        assert c.recall_delta == pytest.approx(c.new["recall"] - c.old["recall"])
        assert c.qps_ratio == pytest.approx(c.new["qps"] / c.old["qps"])
        (a_lo, a_hi), (b_lo, b_hi) = qps_range(c.old), qps_range(c.new)
        overlap = b_lo <= a_hi and a_lo <= b_hi
        assert c.qps_verdict == (NOISE if overlap else (BETTER if b_lo > a_hi else WORSE))
    exact = next(c for c in comp.changes if c.new["label"] == "exact")
    assert exact.recall_delta == 0 and exact.recall_verdict == NOISE  # exact search is exact both times


def record(recall: float, qps_runs: list[float], queries: int = 100, k: int = 10, **over) -> dict:
    r = {"dataset": "d", "label": "s", "index": "hnsw", "build": {"M": 8}, "search": {"ef": 10}, "k": k,
         "status": "ok", "recall": recall, "qps": sorted(qps_runs)[len(qps_runs) // 2], "qps_runs": qps_runs,
         "dataset_info": {"test": queries, "sha256": "a"}, "engine_version": "x 1"}  # fmt: skip
    r.update(over)
    return r


def test_qps_change_inside_either_runs_spread_is_noise():
    base = record(0.9, [900, 1000, 1100])
    assert compare_points(base, record(0.9, [1050, 1150, 1300])).qps_verdict == NOISE  # ranges overlap
    assert compare_points(base, record(0.9, [1200, 1250, 1300])).qps_verdict == BETTER
    assert compare_points(base, record(0.9, [500, 600, 899])).qps_verdict == WORSE


def test_recall_change_below_one_hit_over_all_queries_is_noise():
    base = record(0.9, [1000, 1000])  # 100 queries × k=10: one hit is 0.001 recall
    assert compare_points(base, record(0.9 + 0.0004, [1000, 1000])).recall_verdict == NOISE
    assert compare_points(base, record(0.901, [1000, 1000])).recall_verdict == BETTER  # exactly one hit
    assert compare_points(base, record(0.899, [1000, 1000])).recall_verdict == WORSE
    assert compare_points(base, record(0.9, [1000, 1000])).recall_verdict == NOISE


def test_status_change_and_dataset_or_engine_change_are_reported():
    base = record(0.9, [1000, 1100])
    failed = record(0.9, [1000], status="failed", error="boom")
    c = compare_points(base, failed)
    assert c.recall_verdict == UNKNOWN and c.status_change == "ok → failed" and c.regression
    c = compare_points(base, record(0.9, [1000, 1100], dataset_info={"test": 100, "sha256": "b"}, engine_version="x 2"))
    assert "dataset file differs (sha256)" in c.notes and "engine x 1 → x 2" in c.notes
    assert match_key(base) == match_key(copy.deepcopy(base))


def test_concurrency_measurements_match_per_build_and_report_qps_per_client_count():
    def load(search, qps):
        return record(0.9, [1], workload="concurrent", search=search, concurrency={"levels": [
            {"clients": 1, "qps": qps}, {"clients": 4, "qps": qps * 3}]})  # fmt: skip

    point = record(0.9, [1000, 1100])
    comp = cmp.compare_records([point, load({"ef": 10}, 1000)], [point, load({"ef": 20}, 1500)])
    assert len(comp.changes) == 2 and not comp.only_old and not comp.only_new
    change = next(c for c in comp.changes if c.new.get("workload") == "concurrent")
    assert change.recall_verdict == UNKNOWN and change.qps_verdict == UNKNOWN
    assert "1 clients: 1,000 → 1,500 QPS (+50.0%)" in change.notes[0] and "4 clients: 3,000 → 4,500" in change.notes[0]
    assert "different search setting" in change.notes[0]


def test_cli_compare_prints_the_table_and_can_fail_on_regression(two_sweeps, tmp_path, capsys):
    old, new = two_sweeps
    assert main(["compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "vdbbench compare" in out and "only in" in out and "2 point(s) matched" in out
    # a copy of the new results with one point's recall lowered by many hits: a regression
    worse_dir = tmp_path / "worse"
    sink = ResultsFile(worse_dir)
    for r in load_results(new):
        if r["label"] == "hnswlib" and r["search"] == {"ef": 40}:
            r = {**r, "recall": r["recall"] - 0.2}
        sink.append(r)
    assert main(["compare", str(old), str(worse_dir), "--fail-on-regression"]) == 1
    assert "worse" in capsys.readouterr().out
    assert main(["compare", str(old), str(tmp_path / "missing")]) == 2


def test_cli_compare_with_no_matched_point_says_so_and_fails_on_regression_check(two_sweeps, tmp_path, capsys):
    old, _ = two_sweeps
    other = tmp_path / "other"
    sink = ResultsFile(other)
    for r in load_results(old):
        sink.append({**r, "dataset": "another-dataset"})  # nothing in common with old
    assert main(["compare", str(old), str(other)]) == 0
    assert "no point matched" in capsys.readouterr().err
    assert main(["compare", str(old), str(other), "--fail-on-regression"]) == 1
    assert "nothing was compared" in capsys.readouterr().err


def test_report_with_baseline_has_a_comparison_section(two_sweeps, tmp_path):
    old, new = two_sweeps
    html = write_report(new, tmp_path / "r.html", baseline=old).read_text(encoding="utf-8")
    part = html[html.index('<section id="baseline">') :]
    part = part[: part.index("</section>")]
    assert "Compared with baseline" in part and "2 point(s) matched" in part
    assert "Only in the baseline (1)" in part and "Only in this run (1)" in part
    assert "ef=10" in part and "ef=160" in part
    assert json.dumps(str(old))[1:-1] in part


@pytest.mark.parametrize(
    ("field", "old_value", "new_value"),
    [("deleted_returned", 0, 5), ("filter_violations", 0, 3), ("short_answers", 2, 40), ("recall_live", 0.939, 0.5)],
)
def test_a_correctness_regression_fails_the_gate_whatever_the_workload(field, old_value, new_value):
    """Wrong answers added (deleted rows served, filter violations, short answers) or a recall that drops are
    regressions even where a workload's own notes judge the point (churn), and even with QPS within noise."""
    workload = "churn" if field in ("deleted_returned", "recall_live") else "filtered"
    old = record(0.9, [1000, 1100], workload=workload, **{field: old_value})
    new = record(0.9, [1000, 1100], workload=workload, **{field: new_value})
    change = cmp.compare_points(old, new)
    assert change.regression
    assert any(note.startswith(f"correctness regression: {field}") for note in change.notes)
    same = cmp.compare_points(old, record(0.9, [1000, 1100], workload=workload, **{field: old_value}))
    assert not same.regression
