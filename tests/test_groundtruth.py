"""Exact ground truth against a float64 brute force, for all three metrics, ties included."""

import h5py
import numpy as np
import pytest

from vdbbench.core.distances import exact_distances
from vdbbench.data.groundtruth import choose_backend, exact_knn, work_units


def naive(train, test, metric, k):
    """Float64 brute force, ties broken by id."""
    ids, dists = [], []
    for q in test:
        d = exact_distances(q, train, metric)
        order = np.lexsort((np.arange(len(d)), d))[:k]
        ids.append(order)
        dists.append(d[order])
    return np.array(ids), np.array(dists)


def tied_data(seed=11, n=3000, dim=24, queries=40):
    """Random rows with exact duplicates, and queries that sit on train rows (distance 0 ties)."""
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(n, dim)).astype(np.float32)
    train[rng.choice(n, 600, replace=False)] = train[rng.choice(n, 600, replace=False)]
    copies = np.sort(rng.choice(np.arange(6, n), 30, replace=False))
    train[copies] = train[5]  # 31 equal rows, spread over every chunk: more ties than the margin
    test = rng.normal(size=(queries, dim)).astype(np.float32)
    test[:4] = train[[5, 7, 9, 11]]
    return train, test, copies


@pytest.mark.parametrize("metric", ["euclidean", "angular", "ip"])
def test_matches_float64_brute_force_with_ties(metric):
    train, test, copies = tied_data()
    # small chunks exercise the merge of partial top lists across chunks and query blocks;
    # margin 2 is smaller than the 31-way tie, so the widening must find every tied id
    ids, dists = exact_knn(train, test, metric, 20, query_chunk=7, train_chunk=500, margin=2)
    ref_ids, ref_dists = naive(train, test, metric, 20)
    np.testing.assert_allclose(dists, ref_dists, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ids, ref_ids)
    if metric != "ip":  # the query equal to train row 5 has its 31 copies first, in id order
        assert ids[0, :20].tolist() == [5, *copies[:19]]


def test_reads_an_hdf5_train_set_in_chunks(tmp_path):
    train, test, _ = tied_data(seed=3, n=1500)
    with h5py.File(tmp_path / "t.hdf5", "w") as f:
        f.create_dataset("train", data=train)
    done = []
    with h5py.File(tmp_path / "t.hdf5", "r") as f:
        ids, dists = exact_knn(f["train"], test, "euclidean", 10, train_chunk=256, progress=done.append)
    ref_ids, ref_dists = naive(train, test, "euclidean", 10)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(dists, ref_dists, rtol=1e-12)
    assert sum(done) == work_units(1500, len(test))
    assert done[:6] == [256 * len(test)] * 5 + [(1500 - 5 * 256) * len(test)]


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


def test_backend_choice():
    assert choose_backend("auto", faiss_gpus=0, torch_cuda=False) == "faiss-cpu"
    assert choose_backend("auto", faiss_gpus=1, torch_cuda=True) == "faiss-gpu"
    assert choose_backend("auto", faiss_gpus=0, torch_cuda=True) == "torch-cuda"
    assert choose_backend("cuda", faiss_gpus=0, torch_cuda=True) == "torch-cuda"
    assert choose_backend("cpu", faiss_gpus=2, torch_cuda=True) == "faiss-cpu"
    with pytest.raises(RuntimeError, match="neither faiss-gpu nor torch sees a CUDA device"):
        choose_backend("cuda", faiss_gpus=0, torch_cuda=False)
    with pytest.raises(ValueError, match="use auto, cpu or cuda"):
        choose_backend("gpu")


def test_cuda_requested_without_gpu_is_a_clear_error():
    if choose_backend() != "faiss-cpu":
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="CUDA device"):
        exact_knn(np.zeros((3, 2)), np.zeros((1, 2)), "euclidean", 2, device="cuda")


def test_no_torch_import_to_look_for_cuda_where_no_nvidia_device_exists(monkeypatch):
    """torch takes seconds to import: on a host without /dev/nvidia* the CUDA check must not load it."""
    import sys

    from vdbbench.data import groundtruth

    monkeypatch.setattr(groundtruth, "_nvidia_device_files", lambda: False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_RefuseTorch(), *sys.meta_path])
    assert groundtruth._torch_cuda() is False
    assert groundtruth.choose_backend("auto", faiss_gpus=0) == "faiss-cpu"
    assert "torch" not in sys.modules


class _RefuseTorch:
    """An import hook that fails the test if anything imports torch."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise AssertionError("torch was imported to look for CUDA")
        return None
