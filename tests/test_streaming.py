"""The streaming data path: the harness maps train rows, the store's process reads its insert batches."""

import numpy as np

from vdbbench.config import parse_config
from vdbbench.data.datasets import load_hdf5, save_hdf5, synthetic
from vdbbench.execution.worker import StoreWorker
from vdbbench.stores import ADAPTERS, BuildSpec
from vdbbench.sweep.runner import Sweep


class Untouchable:
    """Train rows the parent must not read: only the shape is there."""

    def __init__(self, shape):
        self.shape = shape

    def __getitem__(self, index):
        raise AssertionError(f"the harness read train rows {index!r} itself")

    def __array__(self, *args, **kwargs):
        raise AssertionError("the harness converted the whole train set to an array")


def test_store_process_reads_each_insert_batch_from_the_file(tmp_path):
    train, test = synthetic(n=1300, dim=16, queries=20, seed=5)
    path = save_hdf5(tmp_path / "d.hdf5", train, test, "euclidean")
    ds = load_hdf5(path)
    assert isinstance(ds.train, np.memmap)  # the harness's Dataset maps the file, it holds no copy
    ds.train = Untouchable(ds.train.shape)
    cfg = parse_config({
        "k": 10, "runs": 1, "insert_batch": 500, "datasets": [{"name": "d", "path": str(path)}],
        "stores": [{"store": "hnswlib", "index": "hnsw", "build": {"M": 16, "ef_construction": 100}}],
    })  # fmt: skip
    worker = StoreWorker(ADAPTERS["hnswlib"], tmp_path / "w", {})
    sent = []
    call = worker.call

    def recording_call(method, *args, **kwargs):
        answer = call(method, *args, **kwargs)
        sent.append((method, args, answer))
        return answer

    worker.call = recording_call
    try:
        call("open", timeout=60)
        spec = BuildSpec("hnsw", "euclidean", 16, {"m": 16, "ef_construction": 100}, count=1300)  # portable names
        Sweep(cfg, tmp_path / "out")._build(worker, ds, spec, cfg.stores[0])
        inserts = [(args, answer) for method, args, answer in sent if method.startswith("timed_insert")]
        assert [args for args, _ in inserts] == [  # no attribute values: the dataset has no filters
            (str(path), "train", 0, 500, None),
            (str(path), "train", 500, 1000, None),
            (str(path), "train", 1000, 1300, None),
        ]
        assert [answer[1] for _, answer in inserts] == [500, 500, 300]  # rows read by the store's process
        for i in (0, 777, 1299):  # ids are the file's row numbers
            assert call("search", train[i], 1, timeout=60)[0] == i
    finally:
        worker.close()


def test_million_passages_example_is_a_valid_config():
    from pathlib import Path

    import yaml

    from vdbbench.config import load_config

    path = Path(__file__).parent.parent / "examples" / "million-passages.yaml"
    cfg = load_config(path)
    written = [entry["store"] for entry in yaml.safe_load(path.read_text())["stores"]]
    assert [s.store for s in cfg.stores] == written and len(written) == 3  # the three stores, in the file's order
    assert cfg.insert_batch == 10000 and cfg.datasets[0].test_size == 1000
