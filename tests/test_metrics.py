"""Tie-aware recall on hand-made cases: ties, duplicates, short answers, bad ids."""

import numpy as np
import pytest

from vdbbench.core.metrics import latency_summary, recall_at_k

# Train points on a line: distances from the query at 0 are 1, 2, 2, 3, 4 (rows 1 and 2 tie).
TRAIN = np.array([[1.0], [2.0], [-2.0], [3.0], [4.0]], dtype=np.float32)
QUERY = np.array([[0.0]], dtype=np.float32)
TRUE = np.array([[0, 1, 2, 3, 4]])


def recall(answer, k):
    return recall_at_k([np.array(answer)], QUERY, TRAIN, TRUE, k, "euclidean")


def test_exact_answer_scores_one():
    assert recall([0, 1], 2).recall == 1.0


def test_tied_item_is_credited():
    # truth lists row 1 as 2nd; row 2 is at the same distance and must count too
    assert recall([0, 2], 2).recall == 1.0


def test_item_beyond_kth_distance_is_a_miss():
    assert recall([0, 3], 2).recall == 0.5


def test_duplicate_ids_count_once_and_are_flagged():
    r = recall([0, 0], 2)
    assert r.recall == 0.5
    assert r.duplicate_answers == 1
    assert r.short_answers == 1


def test_short_answer_is_counted_not_padded():
    r = recall([0], 2)
    assert r.recall == 0.5
    assert r.short_answers == 1


def test_ids_outside_dataset_are_misses():
    r = recall([0, 99], 2)
    assert r.recall == 0.5
    assert r.invalid_ids == 1


def test_empty_answer_scores_zero():
    assert recall([], 3).recall == 0.0


def test_recall_averages_over_queries():
    queries = np.array([[0.0], [0.0]], dtype=np.float32)
    truth = np.vstack([TRUE, TRUE])
    r = recall_at_k([np.array([0, 1]), np.array([3, 4])], queries, TRAIN, truth, 2, "euclidean")
    assert r.recall == pytest.approx(0.5)
    assert r.per_query.tolist() == [1.0, 0.0]


def test_k_beyond_ground_truth_width_is_an_error():
    with pytest.raises(ValueError, match="fewer than k=4"):
        recall_at_k([np.array([0])], QUERY, TRAIN, TRUE[:, :3], 4, "euclidean")


@pytest.mark.parametrize("metric", ["angular", "ip"])
def test_ties_under_other_metrics(metric):
    train = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    query = np.array([[0.0, 1.0]], dtype=np.float32)
    truth = np.array([[1, 2, 0, 3]])
    assert recall_at_k([np.array([2])], query, train, truth, 1, metric).recall == 1.0
    assert recall_at_k([np.array([0])], query, train, truth, 1, metric).recall == 0.0


def test_latency_percentiles_in_ms():
    s = latency_summary(np.arange(1, 101) / 1000.0)
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["mean_ms"] == pytest.approx(50.5)
