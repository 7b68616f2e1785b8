"""Contract tests for the two in-process baseline stores."""

from __future__ import annotations

import numpy as np
import pytest
from storekit import (
    assert_answers_valid,
    build_and_search,
    check_baseline,
    open_store,
    small_data,
)

from vdbbench.core.metrics import recall_at_k
from vdbbench.data.datasets import synthetic
from vdbbench.data.groundtruth import exact_knn
from vdbbench.stores import BuildSpec


@pytest.mark.parametrize("metric", ["euclidean", "angular", "ip"])
def test_exact_is_exact(tmp_path, metric):
    store = open_store("exact", tmp_path)
    out = build_and_search(store, "flat", metric)
    assert out.recall == 1.0
    assert_answers_valid(out, 10, 2000)
    assert out.mismatches == []
    check_baseline("exact", "flat", metric, out.recall)


def test_exact_with_duplicate_vectors_scores_full_recall(tmp_path):
    """Ties between identical vectors are credited whichever copy the store returns."""
    train, test = synthetic(n=1000, dim=16, queries=40, seed=3, duplicates=0.3)
    test[:10] = train[:10]  # queries that sit exactly on (duplicated) points
    neighbors, _ = exact_knn(train, test, "euclidean", 50)
    store = open_store("exact", tmp_path)
    store.create(BuildSpec("flat", "euclidean", 16, {}, count=1000))
    order = np.random.default_rng(0).permutation(1000)  # insertion order differs from id order
    store.insert(order, train[order])
    store.build_index()
    answers = [store.search(q, 10) for q in test]
    assert recall_at_k(answers, test, train, neighbors, 10, "euclidean").recall == 1.0


@pytest.mark.parametrize("metric", ["euclidean", "angular", "ip"])
def test_hnswlib_recall_rises_with_ef(tmp_path, metric):
    store = open_store("hnswlib", tmp_path)
    generous = build_and_search(store, "hnsw", metric, {"M": 16, "ef_construction": 200}, {"ef": 200})
    assert generous.recall >= 0.95
    assert_answers_valid(generous, 10, 2000)
    assert generous.mismatches == []
    assert generous.effective["params"] == {"m": 16, "ef_construction": 200, "ef": 200}
    check_baseline("hnswlib", "hnsw", metric, generous.recall)


def test_hnswlib_at_ef_equal_k_is_worse_than_generous_ef(tmp_path):
    data = small_data("euclidean", n=20000, dim=48, queries=100)
    store = open_store("hnswlib", tmp_path)
    tight = build_and_search(store, "hnsw", "euclidean", {"M": 12, "ef_construction": 100}, {"ef": 10}, data=data)
    store.set_search_params({"ef": 400})
    answers = [store.search(q, 10) for q in data.test]
    generous = recall_at_k(answers, data.test, data.train, data.neighbors, 10, "euclidean").recall
    assert generous >= 0.95
    assert tight.recall < generous


@pytest.mark.parametrize("name,family", [("exact", "flat"), ("hnswlib", "hnsw")])
def test_k_larger_than_collection_returns_everything(tmp_path, name, family):
    data = small_data("euclidean", n=30, dim=8, queries=5)
    store = open_store(name, tmp_path)
    out = build_and_search(store, family, "euclidean", k=50, data=data)
    assert_answers_valid(out, 50, 30)
    assert out.recall == 1.0
