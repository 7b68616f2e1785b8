"""ann-benchmarks HDF5 layout: round trip, validation errors, subsets, Fashion-MNIST from Debian."""

import h5py
import numpy as np
import pytest

from vdbbench.data.datasets import (
    FASHION_MNIST_DIR,
    DatasetError,
    H5Rows,
    _read_idx_images,
    load_hdf5,
    save_hdf5,
    subsample,
    synthetic,
)


def test_round_trip_keeps_vectors_and_computes_ground_truth(tmp_path):
    train, test = synthetic(n=500, dim=8, queries=20, seed=2)
    path = save_hdf5(tmp_path / "d.hdf5", train, test, "euclidean", attrs={"source": "test"})
    ds = load_hdf5(path)
    np.testing.assert_array_equal(ds.train, train)
    np.testing.assert_array_equal(ds.test, test)
    assert ds.metric == "euclidean" and ds.neighbors.shape == (20, 100)
    assert ds.attrs["source"] == "test" and len(ds.sha256) == 64
    with h5py.File(path) as f:  # the layout other tools read
        assert set(f) == {"train", "test", "neighbors", "distances"} and f.attrs["distance"] == "euclidean"


def test_file_without_ground_truth_gets_it_computed_and_says_so(tmp_path, caplog):
    train, test = synthetic(n=300, dim=4, queries=5)
    with h5py.File(tmp_path / "bare.hdf5", "w") as f:
        f.attrs["distance"] = "angular"
        f["train"], f["test"] = train, test
    ds = load_hdf5(tmp_path / "bare.hdf5")
    assert ds.neighbors.shape == (5, 100) and ds.metric == "angular"
    assert "bare.hdf5 has no 'neighbors' and 'distances': computing exact ground truth (5 queries over 300" in (
        caplog.text
    )


def test_missing_file_names_the_field(tmp_path):
    with pytest.raises(DatasetError, match="does not exist.*'path'"):
        load_hdf5(tmp_path / "none.hdf5")


def test_not_hdf5(tmp_path):
    (tmp_path / "x.hdf5").write_text("hello")
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        load_hdf5(tmp_path / "x.hdf5")


def test_empty_hdf5_lists_missing_datasets(tmp_path):
    h5py.File(tmp_path / "e.hdf5", "w").close()
    with pytest.raises(DatasetError, match=r"lacks the dataset\(s\) \['train', 'test'\]"):
        load_hdf5(tmp_path / "e.hdf5")


def test_nan_vectors_are_rejected_with_row(tmp_path):
    train, test = synthetic(n=50, dim=4, queries=3)
    train[7, 2] = np.nan
    with pytest.raises(DatasetError, match=r"'train' holds 1 NaN or infinite values \(first in row 7\)"):
        save_hdf5(tmp_path / "n.hdf5", train, test, "euclidean")


def test_dimension_mismatch(tmp_path):
    with h5py.File(tmp_path / "m.hdf5", "w") as f:
        f.attrs["distance"] = "euclidean"
        f["train"], f["test"] = np.zeros((5, 4), np.float32), np.zeros((2, 3), np.float32)
    with pytest.raises(DatasetError, match="dimension 4 but 'test' has 3"):
        load_hdf5(tmp_path / "m.hdf5")


def test_unknown_distance_attribute(tmp_path):
    with h5py.File(tmp_path / "j.hdf5", "w") as f:
        f.attrs["distance"] = "jaccard"
        f["train"], f["test"] = np.zeros((5, 4), np.float32), np.zeros((2, 4), np.float32)
    with pytest.raises(DatasetError, match="attribute 'distance'.*jaccard"):
        load_hdf5(tmp_path / "j.hdf5")


def test_subsample_recomputes_ground_truth(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path))
    train, test = synthetic(n=1000, dim=8, queries=30, seed=4)
    ds = load_hdf5(save_hdf5(tmp_path / "full.hdf5", train, test, "euclidean"))
    sub = subsample(ds, 200, 10)
    assert sub.train.shape == (200, 8) and sub.test.shape == (10, 8)
    assert sub.neighbors.max() < 200  # neighbours come from the subset only
    only_queries = subsample(ds, None, 10)
    np.testing.assert_array_equal(only_queries.neighbors, ds.neighbors[:10])
    with pytest.raises(DatasetError, match="train_size 5000 exceeds the 1000 train rows"):
        subsample(ds, 5000, None)


def test_synthetic_is_seeded_and_clustered():
    a, _ = synthetic(n=400, dim=16, seed=5)
    b, _ = synthetic(n=400, dim=16, seed=5)
    np.testing.assert_array_equal(a, b)
    # clustered: nearest-neighbour distances are much smaller than the mean pairwise distance
    d = np.linalg.norm(a[:, None] - a[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert d.min(axis=1).mean() < 0.5 * d[np.isfinite(d)].mean()


@pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_has_ann_benchmarks_shape():
    train = _read_idx_images(FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz")
    test = _read_idx_images(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    assert train.shape == (60000, 784) and test.shape == (10000, 784)
    assert train.min() == 0 and train.max() == 255


def test_loaded_train_rows_are_mapped_not_read(tmp_path):
    train, test = synthetic(n=400, dim=8, queries=5, seed=4)
    ds = load_hdf5(save_hdf5(tmp_path / "d.hdf5", train, test, "euclidean"))
    assert isinstance(ds.train, np.memmap) and str(ds.train.filename) == str((tmp_path / "d.hdf5").resolve())
    np.testing.assert_array_equal(ds.train[[7, 3, 7]], train[[7, 3, 7]])
    with h5py.File(tmp_path / "c.hdf5", "w") as f:  # chunked + compressed: cannot be mapped, read on demand
        f.attrs["distance"] = "euclidean"
        f.create_dataset("train", data=train, chunks=(64, 8), compression="gzip")
        f["test"] = test
    chunked = load_hdf5(tmp_path / "c.hdf5")
    assert isinstance(chunked.train, H5Rows) and chunked.train.shape == (400, 8)
    np.testing.assert_array_equal(chunked.train[[9, 2, 9, 399]], train[[9, 2, 9, 399]])
    np.testing.assert_array_equal(chunked.train[10:20], train[10:20])
    np.testing.assert_array_equal(chunked.neighbors, ds.neighbors)


def _bare(path, train, test, distance="angular"):
    with h5py.File(path, "w") as f:
        if distance:
            f.attrs["distance"] = distance
        f["train"], f["test"] = train, test
    return path


def test_groundtruth_command_writes_exact_neighbours_and_keeps_the_data(tmp_path):
    from vdbbench.cli import main
    from vdbbench.core.distances import exact_distances

    train, test = synthetic(n=700, dim=6, queries=12, seed=8, duplicates=0.2)
    path = _bare(tmp_path / "user.hdf5", train, test)
    assert main(["groundtruth", str(path), "-k", "15"]) == 0
    with h5py.File(path) as f:
        assert set(f) == {"train", "test", "neighbors", "distances"} and f.attrs["distance"] == "angular"
        np.testing.assert_array_equal(f["train"][:], train)
        np.testing.assert_array_equal(f["test"][:], test)
        neighbors, distances = f["neighbors"][:], f["distances"][:]
    assert neighbors.shape == (12, 15)
    for i, q in enumerate(test):
        d = exact_distances(q, train, "angular")
        assert neighbors[i].tolist() == np.lexsort((np.arange(len(d)), d))[:15].tolist()
        np.testing.assert_allclose(distances[i], np.sort(d)[:15], rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "user.hdf5.part").exists()
    assert main(["groundtruth", str(path)]) == 2  # already there: needs --force
    assert main(["groundtruth", str(path), "--force", "-k", "5"]) == 0
    with h5py.File(path) as f:
        assert f["neighbors"].shape == (12, 5)


def test_groundtruth_write_failure_keeps_the_earlier_truth_and_makes_no_copy(tmp_path, monkeypatch):
    """The file is written in place (no copy of a many-GiB file); a failure mid-write leaves it as it was."""
    from vdbbench.cli import main
    from vdbbench.data.datasets import add_ground_truth

    train, test = synthetic(n=300, dim=6, queries=5, seed=3)
    path = _bare(tmp_path / "user.hdf5", train, test, distance="euclidean")
    assert main(["groundtruth", str(path), "-k", "7"]) == 0
    with h5py.File(path) as f:
        before = f["neighbors"][:]
    real = h5py.Group.create_dataset

    def fail_on_distances(self, name, *a, **kw):
        if name.startswith("distances"):
            raise OSError("disk full")
        return real(self, name, *a, **kw)

    monkeypatch.setattr(h5py.Group, "create_dataset", fail_on_distances)
    with pytest.raises(OSError, match="disk full"):
        add_ground_truth(path, 3, force=True)
    with h5py.File(path) as f:
        assert set(f) == {"train", "test", "neighbors", "distances"}
        np.testing.assert_array_equal(f["neighbors"][:], before)
        np.testing.assert_array_equal(f["train"][:], train)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user.hdf5"]


def test_groundtruth_refuses_bad_files_naming_what_is_wrong(tmp_path):
    from vdbbench.data.datasets import add_ground_truth

    train, test = synthetic(n=50, dim=4, queries=3)
    with h5py.File(tmp_path / "no-test.hdf5", "w") as f:
        f["train"] = train
    with pytest.raises(DatasetError, match=r"lacks the dataset\(s\) \['test'\]"):
        add_ground_truth(tmp_path / "no-test.hdf5")
    with pytest.raises(DatasetError, match="no 'distance' attribute: give --metric"):
        add_ground_truth(_bare(tmp_path / "a.hdf5", train, test, distance=None))
    with pytest.raises(DatasetError, match="says distance='angular' but --metric 'euclidean'"):
        add_ground_truth(_bare(tmp_path / "b.hdf5", train, test), metric="euclidean")
    bad = train.copy()
    bad[30, 1] = np.nan
    path = _bare(tmp_path / "nan.hdf5", bad, test)
    before = path.read_bytes()
    with pytest.raises(DatasetError, match=r"'train' holds 1 NaN .*row 30"):
        add_ground_truth(path)
    assert path.read_bytes() == before  # a refused file is left exactly as it was
    add_ground_truth(_bare(tmp_path / "c.hdf5", train, test, distance=None), k=4, metric="ip")
    with h5py.File(tmp_path / "c.hdf5") as f:
        assert f.attrs["distance"] == "ip" and f["neighbors"].shape == (3, 4)
