"""Saved answers and ``vdbbench rescore``: every measured point keeps the answers it was scored on, in a format a
script with only numpy can read, and ``rescore`` recomputes every figure from them.

One sweep (module scope) on small clustered data where recall is not 1.0: hnswlib (a small graph, two ef values,
a recall target, a filter, churn) and LanceDB (IVF, one probe of 16 cells, under the same filter).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from vdbbench.cli import main
from vdbbench.config import parse_config
from vdbbench.core.results import load_results
from vdbbench.data.datasets import save_hdf5, synthetic
from vdbbench.sweep.runner import Sweep

N, QUERIES, K = 3000, 60, 10
HALF = {"dept": "loans"}


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, Path]:
    """(results directory, dataset file) of one sweep with knn, target, filtered and churn points."""
    root = tmp_path_factory.mktemp("rescore")
    train, test = synthetic(N, 16, QUERIES, "euclidean", clusters=10, seed=3)
    dept = np.random.default_rng(4).choice(np.array(["loans", "cards"]), size=N)
    path = save_hdf5(root / "attributed.hdf5", train, test, "euclidean", attributes={"dept": dept})
    raw = {
        "k": K, "runs": 1, "warmup": 2, "recall_targets": [0.9],
        "stores": [
            {"store": "hnswlib", "build": {"m": 4, "ef_construction": 10}, "search": {"ef": [10, 30]},
             "churn": {"insert": 0.1, "delete": 0.1, "batches": 2}},
            {"store": "lancedb", "index": "ivf", "build": {"nlist": 16}, "search": {"nprobe": [1]}},
        ],
        "datasets": [{"name": "attributed", "path": str(path), "filters": [HALF]}],
    }  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDBBENCH_DATA_DIR", str(root / "data"))
        Sweep(parse_config(raw), root / "out").run()
    return root / "out", path


def measured(out: Path) -> list[dict]:
    return [r for r in load_results(out) if r["status"] == "ok" and r["workload"] in ("knn", "filtered", "churn")]


def test_every_measured_point_keeps_its_answers_in_the_documented_format(swept):
    out, _ = swept
    records = measured(out)
    assert {r["workload"] for r in records} == {"knn", "filtered", "churn"}
    assert {r["store"] for r in records} == {"hnswlib", "lancedb"}
    assert len([r for r in load_results(out) if r["status"] != "ok"]) == 0
    for r in records:
        files = [r["answers_file"]] + [cp["answers_file"] for cp in (r.get("churn") or {}).get("checkpoints", [])]
        for name in files:
            assert name.startswith("answers/") and name.endswith(".npz")
            with np.load(out / name) as f:
                assert sorted(f.files) == ["ids", "queries", "scores"]
                ids, scores, queries = f["ids"], f["scores"], f["queries"]
            assert ids.dtype == np.int64 and scores.dtype == np.float64 and queries.dtype == np.int64
            assert ids.shape == scores.shape == (len(queries), K)
            expected = r["evaluation_queries"] if r.get("target_recall") else QUERIES
            assert len(queries) == expected and len(np.unique(queries)) == expected
            assert np.isnan(scores[ids == -1]).all()
        if r["workload"] == "churn":
            assert r["answers_file"] == r["churn"]["checkpoints"][-1]["answers_file"]
    targets = [r for r in records if r.get("target_recall")]
    assert targets and all(r["evaluation_queries"] == QUERIES // 2 for r in targets)


def numpy_recall(answers: np.ndarray, queries: np.ndarray, train: np.ndarray, test: np.ndarray,
                 kth: np.ndarray) -> float:  # fmt: skip
    """Tie-aware recall@K from the documented format alone: per query, the distinct returned ids whose true distance
    is at most the K-th true distance × (1 + 1e-6), over K."""
    hits = []
    for row, q in zip(answers, queries, strict=True):
        ids = np.unique(row[(row >= 0) & (row < len(train))])
        dist = np.sqrt(((train[ids].astype(np.float64) - test[q].astype(np.float64)) ** 2).sum(axis=1))
        hits.append(min(int((dist <= kth[q] * (1 + 1e-6)).sum()), K) / K)
    return float(np.mean(hits))


def test_a_numpy_only_recall_from_the_answers_files_equals_every_record(swept):
    out, path = swept
    with h5py.File(path, "r") as f:
        train, test, truth = f["train"][()], f["test"][()], f["distances"][()]
        dept = np.asarray([v.decode() if isinstance(v, bytes) else v for v in f["attributes/dept"][()]])
    allowed = dept == "loans"
    d = np.sqrt(((test[:, None, :].astype(np.float64) - train[None, allowed, :].astype(np.float64)) ** 2).sum(-1))
    filtered_kth = np.sort(d, axis=1)[:, K - 1]
    recalls = []
    for r in measured(out):
        if r["workload"] == "churn":
            continue
        with np.load(out / r["answers_file"]) as f:
            ids, queries = f["ids"], f["queries"]
        kth = filtered_kth if r["filter"] else truth[:, K - 1]
        if r["filter"]:  # an id the filter rejects is a miss
            ids = np.where((ids >= 0) & (ids < N) & allowed[np.clip(ids, 0, N - 1)], ids, -1)
        recalls.append(r["recall"])
        assert numpy_recall(ids, queries, train, test, kth) == pytest.approx(r["recall"], abs=1e-9), r["key"]
    assert len(recalls) >= 8 and min(recalls) < 1.0  # hard enough: not every point finds every neighbour


def test_rescore_agrees_with_the_records_and_exits_0(swept, capsys):
    out, _ = swept
    assert main(["rescore", str(out)]) == 0
    text = capsys.readouterr().out
    for name in ("recall ", "filter_violations", "short_answers", "churn.checkpoints.recall_live", "recall_live"):
        assert name in text
    assert "0 differ" in text


def test_a_recall_changed_by_1e_6_is_caught_and_its_point_named(swept, tmp_path, capsys):
    out, _ = swept
    copy = tmp_path / "out"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("work"))
    lines = (copy / "results.jsonl").read_text().splitlines()
    changed = None
    for i, line in enumerate(lines):
        r = json.loads(line)
        if changed is None and r["status"] == "ok" and r["workload"] == "filtered" and r["store"] == "lancedb":
            r["recall"] += 1e-6
            lines[i], changed = json.dumps(r), r["key"]
    (copy / "results.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["rescore", str(copy)]) == 1
    text = capsys.readouterr().out
    assert f"DIFFERS recall at point {changed}" in text and "1 differ" in text


def test_rescore_names_what_is_missing(swept, tmp_path, capsys):
    assert main(["rescore", str(tmp_path / "nothing")]) == 2
    assert "no results at" in capsys.readouterr().err
    out, _ = swept
    copy = tmp_path / "out"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("work"))
    text = (copy / "results.jsonl").read_text().replace(str(swept[1]), str(tmp_path / "gone.hdf5"))
    (copy / "results.jsonl").write_text(text)
    assert main(["rescore", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "dataset file(s) missing: attributed" in err and "gone.hdf5" in err
    victim = sorted((copy / "answers").iterdir())[0]
    victim.unlink()
    assert main(["rescore", str(copy)]) == 2
    assert f"answers/{victim.name}" in capsys.readouterr().err


def test_hnswlib_and_lancedb_scores_are_the_squared_l2_distances_their_engines_return(swept):
    out, path = swept
    with h5py.File(path, "r") as f:
        train, test = f["train"][()].astype(np.float64), f["test"][()].astype(np.float64)
    for r in measured(out):
        with np.load(out / r["answers_file"]) as f:
            ids, scores, queries = f["ids"], f["scores"], f["queries"]
        held = ids >= 0
        squared = ((train[np.where(held, ids, 0)] - test[queries][:, None, :]) ** 2).sum(-1)
        assert np.isfinite(scores[held]).all(), r["key"]  # every query: the untimed repeat returned the same ids
        np.testing.assert_allclose(scores[held], squared[held], rtol=1e-5, err_msg=r["key"])


def test_a_recorded_recall_interval_is_rescored_too(swept, tmp_path, capsys):
    """Records that carry ``recall_ci95`` (the seeded bootstrap of vdbbench.core.metrics) have it recomputed."""
    out, _ = swept
    copy = tmp_path / "out"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("work"))
    lines = [json.loads(line) for line in (copy / "results.jsonl").read_text().splitlines()]
    target = next(r for r in lines if r["status"] == "ok" and r["workload"] == "knn" and r["store"] == "hnswlib")
    target["recall_ci95"] = [0.0, 1.0]
    (copy / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert main(["rescore", str(copy)]) == 1
    text = capsys.readouterr().out
    assert f"DIFFERS recall_ci95 at point {target['key']}" in text and "recorded [0.0, 1.0]" in text
