"""The exact store's own behaviour; its contract (recall 1.0 on every metric, filters, deletes, k above the row
count, second-process clients) is in tests/conformance."""

from __future__ import annotations

import numpy as np
from storekit import open_store

from vdbbench.core.metrics import recall_at_k
from vdbbench.data.datasets import synthetic
from vdbbench.data.groundtruth import exact_knn
from vdbbench.stores import BuildSpec


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
