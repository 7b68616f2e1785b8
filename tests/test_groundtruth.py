"""Exact ground truth against a naive reference, for all three metrics."""

import numpy as np
import pytest

from vdbbench.distances import exact_distances
from vdbbench.groundtruth import exact_knn


def naive(train, test, metric, k):
    ids, dists = [], []
    for q in test:
        d = exact_distances(q, train, metric)
        order = np.lexsort((np.arange(len(d)), d))[:k]
        ids.append(order)
        dists.append(d[order])
    return np.array(ids), np.array(dists)


@pytest.mark.parametrize("metric", ["euclidean", "angular", "ip"])
def test_matches_naive_reference(metric):
    rng = np.random.default_rng(11)
    train = rng.normal(size=(3000, 24)).astype(np.float32)
    test = rng.normal(size=(40, 24)).astype(np.float32)
    # small chunks exercise the merge of partial top lists across chunks
    ids, dists = exact_knn(train, test, metric, 20, query_chunk=7, train_chunk=500)
    ref_ids, ref_dists = naive(train, test, metric, 20)
    np.testing.assert_allclose(dists, ref_dists, rtol=1e-12, atol=1e-12)
    assert (ids == ref_ids).mean() > 0.999  # only exact float64 ties could reorder


def test_k_is_capped_at_train_size():
    rng = np.random.default_rng(0)
    ids, dists = exact_knn(rng.normal(size=(5, 3)), rng.normal(size=(2, 3)), "euclidean", 100)
    assert ids.shape == (2, 5)
    assert sorted(ids[0].tolist()) == [0, 1, 2, 3, 4]


def test_euclidean_distances_are_l2_not_squared():
    train = np.array([[3.0, 4.0], [0.0, 1.0]], dtype=np.float32)
    ids, dists = exact_knn(train, np.zeros((1, 2), dtype=np.float32), "euclidean", 2)
    assert ids[0].tolist() == [1, 0]
    np.testing.assert_allclose(dists[0], [1.0, 5.0])


def test_cuda_requested_without_gpu_is_a_clear_error():
    from vdbbench.groundtruth import device_name

    if device_name() != "cpu":
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        exact_knn(np.zeros((3, 2)), np.zeros((1, 2)), "euclidean", 2, device="cuda")


def test_sampled_bound_selection_keeps_exactly_the_smallest():
    from vdbbench.groundtruth import _smallest

    rng = np.random.default_rng(3)
    d = rng.normal(size=(40, 5000)).astype(np.float32)
    d[:, 100:200] = -5.0  # a block of ties at the very bottom, more than count
    d[7] = np.sort(d[7])[::-1]  # a row whose smallest values sit where a sample might miss them
    cols, vals = _smallest(d, 116)
    assert cols.shape == (40, 116)
    np.testing.assert_array_equal(np.sort(vals, axis=1), np.sort(d, axis=1)[:, :116])
    np.testing.assert_array_equal(np.take_along_axis(d, cols, axis=1), vals)
