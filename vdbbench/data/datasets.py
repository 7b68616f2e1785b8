"""Datasets in the ann-benchmarks HDF5 layout: load, validate, write, generate and prepare.

Layout: ``train`` (n × d float32), ``test`` (q × d float32), ``neighbors`` (q × K int),
``distances`` (q × K float), attribute ``distance`` (euclidean / angular / ip). Files
downloaded from ann-benchmarks can be dropped into the data folder and used by name.

A loaded dataset does not hold its train rows: ``Dataset.train`` maps the file (or reads
rows on demand), so the harness's memory stays near the queries plus ground truth; the
store's process reads its insert batches from the file itself.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vdbbench.core.distances import canonical_metric
from vdbbench.core.filters import Filter, column_kind, mask
from vdbbench.data.groundtruth import device_name, exact_knn

log = logging.getLogger(__name__)

GROUND_TRUTH_K = 100
SCAN_ROWS = 16384  # train rows checked at once for NaN / infinity


class DatasetError(ValueError):
    """A dataset file or spec is unusable; the message names the file or field and the fix."""


class H5Rows:
    """Rows of a chunked or compressed HDF5 dataset (which cannot be memory-mapped), read on demand.

    Supports what the harness uses on train rows: ``shape``, ``len``, a row slice, an id array.
    """

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = Path(path), key
        with h5py.File(self.path, "r") as f:
            self.shape: tuple[int, ...] = tuple(f[key].shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            dset = f[self.key]
            if isinstance(index, slice | int | np.integer):
                return np.asarray(dset[index], dtype=np.float32)
            ids = np.asarray(index, dtype=np.int64)
            unique, inverse = np.unique(ids, return_inverse=True)  # h5py reads increasing ids only
            return np.asarray(dset[unique], dtype=np.float32)[inverse.reshape(ids.shape)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self[:].astype(dtype or np.float32)


def open_rows(path: Path, key: str = "train") -> np.ndarray | H5Rows:
    """The rows of ``key`` without reading them: a read-only memory map when the dataset is stored
    contiguous and uncompressed as float32 (ann-benchmarks files are), else an ``H5Rows``."""
    with h5py.File(path, "r") as f:
        dset = f[key]
        offset = dset.id.get_offset()
        mappable = dset.chunks is None and offset is not None and dset.dtype == np.float32
        shape = dset.shape
    if mappable:
        return np.memmap(path, dtype=np.float32, mode="r", offset=offset, shape=shape)
    return H5Rows(path, key)


@dataclass
class Texts:
    """The texts behind an embedded dataset, row-aligned with ``train`` and ``test``, with relevance labels
    when the corpus had them (BEIR layout): stores that search text (bm25) and quality scoring need these."""

    passages: list[str]
    queries: list[str]
    passage_ids: list[str] | None = None
    query_ids: list[str] | None = None
    qrels: dict[str, dict[str, int]] | None = None  # query id → passage id → graded relevance
    label_source: str | None = None

    @property
    def labelled(self) -> bool:
        return self.qrels is not None

    @cached_property
    def judged(self) -> dict[str, dict[str, int]]:
        """The qrels of the queries asked (a cut keeps fewer), computed once: every labelled point scores on them."""
        asked = set(self.query_ids or ())
        return {q: rel for q, rel in (self.qrels or {}).items() if q in asked}

    def cut(self, train: int | None, test: int | None) -> Texts:
        """The first ``train`` passages and ``test`` queries, as ``subsample`` cuts the vectors."""
        ids = (self.passage_ids[:train] if train else self.passage_ids) if self.passage_ids else None
        qids = (self.query_ids[:test] if test else self.query_ids) if self.query_ids else None
        qrels = self.qrels
        if qrels is not None and train and ids is not None and train < len(self.passages):
            kept = set(ids)  # judgements of passages left out of the index are dropped, not counted as misses
            qrels = {q: {d: s for d, s in rel.items() if d in kept} for q, rel in qrels.items()}
        passages = self.passages[:train] if train else self.passages
        return Texts(passages, self.queries[:test] if test else self.queries, ids, qids, qrels, self.label_source)


@dataclass
class Dataset:
    name: str
    train: np.ndarray | H5Rows  # a memory map or on-demand reader of the file's rows, not a copy
    test: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray
    metric: str
    path: Path | None = None
    sha256: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    text: Texts | None = None
    # attribute columns (name → int64 / float64 / str array as long as train), for filtered search
    attributes: dict[str, np.ndarray] | None = None
    # a view scored on part of train (a filter, or the live rows of a churn run): which rows may be returned
    allowed: np.ndarray | None = None
    filter: Filter | None = None
    rows_digest: str | None = None  # sha1 of ``allowed``: which rows the view admits (keys and caches name it)

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    @property
    def attribute_kinds(self) -> dict[str, str]:
        """Attribute name → int / float / str: the schema stores create before inserting."""
        return {name: column_kind(col) for name, col in (self.attributes or {}).items()}

    @property
    def selectivity(self) -> float | None:
        """Fraction of train rows the view admits (None: all of them, no filter)."""
        return None if self.allowed is None else float(self.allowed.mean())

    def summary(self) -> dict[str, Any]:
        """What a result needs to say about the data that produced it."""
        return {
            "name": self.name,
            "metric": self.metric,
            "train": int(self.train.shape[0]),
            "test": int(self.test.shape[0]),
            "dim": self.dim,
            "ground_truth_k": int(self.neighbors.shape[1]),
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
            "attrs": {k: v for k, v in self.attrs.items() if k != "distance"},
            **({"labelled": True, "label_source": self.text.label_source} if self.text and self.text.labelled else {}),
            **({"attributes": self.attribute_kinds} if self.attributes else {}),
        }

    def restricted(self, allowed: np.ndarray, cache: Path | None = None, flt: Filter | None = None,
                   rows: str | None = None) -> Dataset:  # fmt: skip
        """This dataset scored on the train rows ``allowed`` (a boolean mask) only: exact ground truth over those
        rows (cached in ``cache`` when given), and ``allowed`` kept so answers outside it are counted as misses.
        ``rows`` is the mask's digest (``rows_digest``) where the caller has it already."""
        neighbors, distances = restricted_truth(self, allowed, cache)
        rows = (rows or hashlib.sha1(np.packbits(allowed).tobytes()).hexdigest())[:16]
        return Dataset(self.name, self.train, self.test, neighbors, distances, self.metric, self.path, self.sha256,
                       self.attrs, self.text, self.attributes, allowed, flt, rows)  # fmt: skip

    def filtered(self, flt: Filter) -> Dataset:
        """The view under metadata filter ``flt``: its exact filtered ground truth, computed once and cached under
        the data, the queries and the rows that pass (not the filter's text: a generated column's seed changes
        which rows a same-looking filter passes)."""
        allowed = mask(flt, self.attributes or {})
        rows = hashlib.sha1(np.packbits(allowed).tobytes()).hexdigest()
        digest = hashlib.sha1(f"{self.sha256}|{self.train.shape[0]}|{self.test.shape[0]}|{rows}".encode())
        cache = data_dir() / "filtered" / f"{self.name}-{digest.hexdigest()[:16]}.npz"
        return self.restricted(allowed, cache, flt, rows)


class RowSubset:
    """The rows ``ids`` of a train set, sliced like an array (what ``exact_knn`` reads), never copied whole."""

    def __init__(self, train: Any, ids: np.ndarray) -> None:
        self.train, self.ids = train, ids
        self.shape = (len(ids), train.shape[1])

    def __getitem__(self, index: slice) -> np.ndarray:
        return np.asarray(self.train[self.ids[index]], dtype=np.float32)


def restricted_truth(ds: Dataset, allowed: np.ndarray, cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact neighbours of ``ds.test`` among the rows ``allowed`` (ids are train row numbers), nearest first.

    When fewer rows pass than ground truth keeps, every passing row is a neighbour (k shrinks to it).
    """
    if cache is not None and cache.exists():
        with np.load(cache) as f:
            return f["neighbors"], f["distances"]
    ids = np.flatnonzero(allowed)
    if ids.size == 0:
        neighbors = np.empty((ds.test.shape[0], 0), dtype=np.int64)
        distances = np.empty((ds.test.shape[0], 0), dtype=np.float64)
    else:
        pos, distances = exact_knn(RowSubset(ds.train, ids), ds.test, ds.metric, GROUND_TRUTH_K)
        neighbors = ids[pos]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".part.npz")
        np.savez(tmp, neighbors=neighbors, distances=distances)
        os.replace(tmp, cache)
    return neighbors, distances


ATTRIBUTES = "attributes"  # the HDF5 group of attribute columns: one 1-D dataset per column, as long as train


def read_attributes(f: h5py.File, path: Path) -> dict[str, np.ndarray] | None:
    """The ``attributes/`` group as columns: int64, float64 or str arrays; DatasetError naming a bad column."""
    if ATTRIBUTES not in f:
        return None
    n = f["train"].shape[0]
    columns = {}
    for name, dset in f[ATTRIBUTES].items():
        where = f"{path}: {ATTRIBUTES}/{name}"
        if not isinstance(dset, h5py.Dataset) or len(dset.shape) != 1 or dset.shape[0] != n:
            raise DatasetError(f"{where}: each attribute must be a 1-D dataset of {n} values (one per train row)")
        if dset.dtype.kind in "iu":
            columns[name] = np.asarray(dset, dtype=np.int64)
        elif dset.dtype.kind == "f":
            columns[name] = np.asarray(dset, dtype=np.float64)
            if not np.isfinite(columns[name]).all():
                raise DatasetError(f"{where}: holds NaN or infinite values; attributes must be finite numbers")
        elif dset.dtype.kind in "SO" or h5py.check_string_dtype(dset.dtype):
            columns[name] = np.asarray(_strings(dset, where), dtype=str)
        else:
            raise DatasetError(f"{where}: dtype {dset.dtype} is not int64, float64 or UTF-8 string")
    return columns


def write_attributes(f: h5py.File, columns: dict[str, np.ndarray]) -> None:
    """Write attribute columns as the ``attributes/`` group (strings as UTF-8)."""
    g = f.create_group(ATTRIBUTES)
    for name, values in columns.items():
        kind = column_kind(np.asarray(values))
        if kind == "str":
            g.create_dataset(name, data=[str(v) for v in values], dtype=h5py.string_dtype("utf-8"))
        else:
            g.create_dataset(name, data=np.asarray(values, dtype=np.int64 if kind == "int" else np.float64))


def data_dir() -> Path:
    """Where prepared datasets live: $VDBBENCH_DATA_DIR, else ./datasets/data."""
    return Path(os.environ.get("VDBBENCH_DATA_DIR", Path.cwd() / "datasets" / "data"))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def open_ann_file(path: Path, fix: str) -> h5py.File:
    """Open an ann-benchmarks-layout HDF5 file for reading; DatasetError says what is wrong and ``fix``."""
    if not path.exists():
        raise DatasetError(f"dataset file {path} does not exist: {fix}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path} is not a readable HDF5 file ({e}); re-download or re-prepare it") from e
    missing = [key for key in ("train", "test") if key not in f]
    if missing:
        f.close()
        raise DatasetError(
            f"{path} lacks the dataset(s) {missing}: an ann-benchmarks file holds 'train' (n × d), "
            "'test' (q × d), and 'neighbors' and 'distances' when ground truth is stored"
        )
    return f


def load_hdf5(path: str | Path, name: str | None = None) -> Dataset:
    """Read and validate an ann-benchmarks-layout file; raise DatasetError naming what is wrong."""
    path = Path(path)
    with open_ann_file(path, "check the 'path' field or prepare it first") as f:
        if "distance" not in f.attrs:
            raise DatasetError(f"{path} has no 'distance' attribute: set it to euclidean, angular or ip")
        try:
            metric = canonical_metric(_jsonable(f.attrs["distance"]))
        except ValueError as e:
            raise DatasetError(f"{path}: attribute 'distance': {e}") from None
        test = np.asarray(f["test"], dtype=np.float32)
        neighbors = np.asarray(f["neighbors"], dtype=np.int64) if "neighbors" in f else None
        distances = np.asarray(f["distances"], dtype=np.float64) if "distances" in f else None
        attrs = {k: _jsonable(v) for k, v in f.attrs.items()}
        validate_arrays(f["train"], test, str(path))
        if neighbors is None or distances is None:
            log.warning(
                "%s has no 'neighbors' and 'distances': computing exact ground truth (%d queries over %d vectors, "
                "k=%d) on %s; this is redone on every load unless the file stores them "
                "(python -m vdbbench groundtruth FILE writes them)",
                path, test.shape[0], f["train"].shape[0], GROUND_TRUTH_K, device_name(),
            )  # fmt: skip
            neighbors, distances = exact_knn(f["train"], test, metric, GROUND_TRUTH_K)
        text = _read_texts(f, path) if "passage_texts" in f else None
        attributes = read_attributes(f, path)
    train = open_rows(path, "train")
    if neighbors.shape[0] != test.shape[0]:
        raise DatasetError(f"{path}: 'neighbors' has {neighbors.shape[0]} rows but 'test' has {test.shape[0]}")
    elif neighbors.size and (neighbors.min() < 0 or neighbors.max() >= train.shape[0]):
        raise DatasetError(f"{path}: 'neighbors' holds ids outside 0..{train.shape[0] - 1}")
    return Dataset(
        name=name or path.stem,
        train=train,
        test=test,
        neighbors=neighbors,
        distances=distances,
        metric=metric,
        path=path,
        sha256=file_sha256(path),
        attrs=attrs,
        text=text,
        attributes=attributes,
    )


def _strings(dataset: Any, where: str = "") -> list[str]:
    """The dataset's values as text; DatasetError naming ``where`` and the row when one is not UTF-8."""
    out = []
    for row, v in enumerate(dataset[()]):
        try:
            out.append(v.decode("utf-8") if isinstance(v, bytes) else str(v))
        except UnicodeDecodeError as e:
            raise DatasetError(f"{where or dataset.name}: row {row} is not UTF-8 text ({e.reason} at byte {e.start}); "
                               "write the column as UTF-8 strings") from None  # fmt: skip
    return out


def _read_texts(f: h5py.File, path: Path) -> Texts:
    text = Texts(_strings(f["passage_texts"]), _strings(f["query_texts"]))
    if len(text.passages) != f["train"].shape[0] or len(text.queries) != f["test"].shape[0]:
        raise DatasetError(f"{path}: 'passage_texts'/'query_texts' do not match 'train'/'test' row counts")
    if "qrels" in f:
        g = f["qrels"]
        text.passage_ids, text.query_ids = _strings(f["passage_ids"]), _strings(f["query_ids"])
        qrels: dict[str, dict[str, int]] = {}
        for q, d, s in zip(_strings(g["query"]), _strings(g["doc"]), g["score"][()].tolist(), strict=True):
            qrels.setdefault(q, {})[d] = int(s)
        text.qrels = qrels
        text.label_source = _jsonable(g.attrs.get("source", ""))
    return text


def _write_texts(f: h5py.File, text: Texts) -> None:
    strings = h5py.string_dtype("utf-8")
    f.create_dataset("passage_texts", data=text.passages, dtype=strings)
    f.create_dataset("query_texts", data=text.queries, dtype=strings)
    if text.qrels is not None:
        f.create_dataset("passage_ids", data=text.passage_ids, dtype=strings)
        f.create_dataset("query_ids", data=text.query_ids, dtype=strings)
        g = f.create_group("qrels")
        rows = [(q, d, s) for q, rel in text.qrels.items() for d, s in rel.items()]
        g.create_dataset("query", data=[r[0] for r in rows], dtype=strings)
        g.create_dataset("doc", data=[r[1] for r in rows], dtype=strings)
        g.create_dataset("score", data=np.asarray([r[2] for r in rows], dtype=np.int32))
        g.attrs["source"] = text.label_source or ""


def add_ground_truth(
    path: str | Path,
    k: int = GROUND_TRUTH_K,
    metric: str | None = None,
    *,
    device: str = "auto",
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int, str]:
    """Compute exact neighbours and distances of a user's ann-benchmarks file and write them into it.

    Train and test are only read, and the file is not copied (it may be many GiB): the new arrays
    are written beside the old ones under temporary names and take their names only once both are
    written, so a failure leaves train, test and any earlier ground truth as they were.
    ``progress(done, total)`` is called as the work advances. Returns (queries, k, metric).
    """
    path = Path(path)
    with open_ann_file(path, "check the file name") as f:
        stored = _jsonable(f.attrs["distance"]) if "distance" in f.attrs else None
        if metric is None and stored is None:
            raise DatasetError(f"{path} has no 'distance' attribute: give --metric euclidean, angular or ip")
        try:
            chosen = canonical_metric(metric or stored)
            if stored is not None and canonical_metric(stored) != chosen:
                raise DatasetError(
                    f"{path} says distance={stored!r} but --metric {metric!r} was given; "
                    "drop --metric to use the file's"
                )
        except ValueError as e:
            raise DatasetError(f"{path}: metric: {e}") from None
        if not force and ("neighbors" in f or "distances" in f):
            raise DatasetError(f"{path} already holds 'neighbors'/'distances': add --force to recompute them")
        test = np.asarray(f["test"], dtype=np.float32)
        validate_arrays(f["train"], test, str(path))
        n = f["train"].shape[0]
        total, done = n * len(test), 0

        def advance(units: int) -> None:
            nonlocal done
            done += units
            if progress:
                progress(done, total)

        neighbors, distances = exact_knn(f["train"], test, chosen, k, device=device, progress=advance)
    _write_ground_truth(path, neighbors, distances, chosen, device_name(device))
    return len(test), int(neighbors.shape[1]), chosen


GT_KEYS = ("neighbors", "distances")


def _write_ground_truth(path: Path, neighbors: np.ndarray, distances: np.ndarray, metric: str, device: str) -> None:
    """Write neighbours and distances into ``path`` in place: under ``.new`` names first, then renamed."""
    with h5py.File(path, "r+") as out:
        staged = {key: f"{key}.new" for key in GT_KEYS}
        try:
            for name in staged.values():
                if name in out:
                    del out[name]
            out.create_dataset(staged["neighbors"], data=neighbors.astype(np.int32))
            out.create_dataset(staged["distances"], data=distances.astype(np.float32))
            for key, name in staged.items():
                if key in out:
                    del out[key]
                out.move(name, key)
            out.attrs["distance"] = metric
            out.attrs["ground_truth_device"] = device
        finally:
            for name in staged.values():
                if name in out:
                    del out[name]


def validate_arrays(train: Any, test: Any, where: str) -> None:
    """Reject shapes and values no store can index, before any engine starts.

    Arrays or HDF5 datasets; rows are checked ``SCAN_ROWS`` at a time, so a file's train set
    is never read whole.
    """
    for label, arr in (("train", train), ("test", test)):
        if len(arr.shape) != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise DatasetError(f"{where}: '{label}' must be a non-empty 2-D array, got shape {arr.shape}")
        count, first = 0, None
        for start in range(0, arr.shape[0], SCAN_ROWS):
            bad = ~np.isfinite(np.asarray(arr[start : start + SCAN_ROWS]))
            if bad.any():
                count += int(bad.sum())
                first = start + int(np.argwhere(bad)[0][0]) if first is None else first
        if count:
            raise DatasetError(
                f"{where}: '{label}' holds {count} NaN or infinite values (first in row {first}); "
                "clean or re-embed the data"
            )
    if train.shape[1] != test.shape[1]:
        raise DatasetError(f"{where}: 'train' has dimension {train.shape[1]} but 'test' has {test.shape[1]}")


def save_hdf5(
    path: str | Path,
    train: np.ndarray,
    test: np.ndarray,
    metric: str,
    neighbors: np.ndarray | None = None,
    distances: np.ndarray | None = None,
    attrs: dict[str, Any] | None = None,
    text: Texts | None = None,
    attributes: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write an ann-benchmarks-layout file, computing exact ground truth when none is given.

    ``text`` adds the passage and query texts (and ids and qrels when labelled) as string datasets;
    ``attributes`` the attribute columns as the ``attributes/`` group."""
    metric = canonical_metric(metric)
    validate_arrays(train, test, str(path))
    if neighbors is None or distances is None:
        neighbors, distances = exact_knn(train, test, metric, GROUND_TRUTH_K)
        attrs = {**(attrs or {}), "ground_truth_device": device_name()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with h5py.File(tmp, "w") as f:
        f.attrs["distance"] = metric
        f.attrs["dimension"] = int(train.shape[1])
        f.attrs["point_type"] = "float"
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        f.create_dataset("train", data=np.asarray(train, dtype=np.float32))
        f.create_dataset("test", data=np.asarray(test, dtype=np.float32))
        f.create_dataset("neighbors", data=np.asarray(neighbors, dtype=np.int32))
        f.create_dataset("distances", data=np.asarray(distances, dtype=np.float32))
        if text is not None:
            _write_texts(f, text)
        if attributes:
            write_attributes(f, attributes)
    os.replace(tmp, path)  # a crash never leaves a half-written file under the real name
    return path


def synthetic(
    n: int = 2000,
    dim: int = 32,
    queries: int = 100,
    metric: str = "euclidean",
    clusters: int = 20,
    seed: int = 0,
    duplicates: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded Gaussian-mixture vectors (clustered like real embeddings, not uniform noise).

    ``duplicates`` is the fraction of train rows replaced by copies of other rows, for
    testing tie handling.
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.0, size=(clusters, dim))
    spread = rng.uniform(0.15, 0.4, size=clusters)

    def draw(count: int) -> np.ndarray:
        which = rng.integers(0, clusters, size=count)
        return (centers[which] + rng.normal(size=(count, dim)) * spread[which, None]).astype(np.float32)

    train, test = draw(n), draw(queries)
    if duplicates > 0:
        count = int(n * duplicates)
        src = rng.choice(n, size=count, replace=False)
        dst = rng.choice(n, size=count, replace=False)
        train[dst] = train[src]
    if canonical_metric(metric) == "angular":
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
        test = test / np.linalg.norm(test, axis=1, keepdims=True)
    return train, test


# -- known datasets --------------------------------------------------------------------

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def _read_idx_images(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    count, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows * cols).astype(np.float32)


def prepare_fashion_mnist(target: Path) -> Path:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package, as ann-benchmarks ships it."""
    train_file = FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz"
    test_file = FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    if not train_file.exists():
        raise DatasetError(
            f"{train_file} is missing: install Debian's package with "
            "'sudo apt-get install dataset-fashion-mnist' (the setup script does this)"
        )
    return save_hdf5(
        target,
        _read_idx_images(train_file),
        _read_idx_images(test_file),
        "euclidean",
        attrs={"source": "Debian package dataset-fashion-mnist"},
    )


@dataclass(frozen=True)
class KnownDataset:
    name: str
    description: str
    prepare: Callable[[Path], Path] | None  # None: the file must be supplied


KNOWN: dict[str, KnownDataset] = {
    "fashion-mnist-784-euclidean": KnownDataset(
        "fashion-mnist-784-euclidean",
        "Fashion-MNIST, 60k train / 10k test, 784-d, euclidean (Debian dataset-fashion-mnist)",
        prepare_fashion_mnist,
    ),
}


def register(known: KnownDataset) -> None:
    """Add a dataset other modules know how to prepare (embedded corpora, downloads)."""
    KNOWN[known.name] = known


def dataset_path(name: str) -> Path:
    return data_dir() / f"{name}.hdf5"


def prepare(name: str) -> Path:
    """Return the prepared file for a known dataset name, preparing it on first use."""
    path = dataset_path(name)
    if path.exists():
        return path
    known = KNOWN.get(name)
    if known is None:
        raise DatasetError(
            f"unknown dataset {name!r} and no file {path}: use one of {sorted(KNOWN)}, "
            "give 'path:' to an ann-benchmarks HDF5 file, or 'synthetic:'"
        )
    if known.prepare is None:
        raise DatasetError(f"dataset {name!r} must be supplied as {path}")
    return known.prepare(path)


def subsample(ds: Dataset, train_size: int | None, test_size: int | None) -> Dataset:
    """The first ``train_size`` train rows and first ``test_size`` queries, ground truth redone if needed.

    A train subset changes the true neighbours, so its ground truth is recomputed and
    cached next to the source file, keyed by the source's hash.
    """
    if train_size is not None and train_size > ds.train.shape[0]:
        raise DatasetError(f"train_size {train_size} exceeds the {ds.train.shape[0]} train rows of {ds.name}")
    if test_size is not None and test_size > ds.test.shape[0]:
        raise DatasetError(f"test_size {test_size} exceeds the {ds.test.shape[0]} test rows of {ds.name}")
    test = ds.test[:test_size] if test_size else ds.test
    if not train_size or train_size == ds.train.shape[0]:
        neighbors, distances = ds.neighbors[: len(test)], ds.distances[: len(test)]
        return Dataset(
            ds.name,
            ds.train,
            test,
            neighbors,
            distances,
            ds.metric,
            ds.path,
            ds.sha256,
            {**ds.attrs, "test_size": len(test)},
            ds.text.cut(None, len(test)) if ds.text else None,
            ds.attributes,
        )
    cache = data_dir() / "subsets" / f"{ds.name}-{(ds.sha256 or 'x')[:12]}-n{train_size}-q{len(test)}.hdf5"
    if not cache.exists():
        save_hdf5(
            cache,
            ds.train[:train_size],
            test,
            ds.metric,
            attrs={"subset_of": ds.name, "subset_of_sha256": ds.sha256 or ""},
            text=ds.text.cut(train_size, len(test)) if ds.text else None,
            attributes={name: col[:train_size] for name, col in ds.attributes.items()} if ds.attributes else None,
        )
    sub = load_hdf5(cache, ds.name)
    sub.attrs.update(train_size=train_size, test_size=len(test))
    return sub
