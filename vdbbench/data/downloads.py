"""Public ann-benchmarks datasets fetched by name from ann-benchmarks.com (on hosts with internet).

ann-benchmarks publishes no checksums, so a download is verified by what can be checked: the
byte count against the server's Content-Length, the HDF5 layout, and the dimension, metric and
train/test row counts the ann-benchmarks README gives for each file. The sha256 of every file
downloaded is recorded in ``data_dir()/downloads.json``; a later download of the same name whose
sha256 differs from the recorded one is refused (pass the recorded value on, or delete the entry
to accept a re-published file). Offline, the error says where to put a manually fetched file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import h5py

from vdbbench.data.datasets import KNOWN, DatasetError, KnownDataset, data_dir, register

BASE_URL = os.environ.get("VDBBENCH_ANN_URL", "http://ann-benchmarks.com")


@dataclass(frozen=True)
class AnnDataset:
    name: str
    dim: int
    metric: str  # the file's 'distance' attribute as the harness names it
    train: int
    test: int
    note: str = ""


ANN_DATASETS = {
    d.name: d
    for d in (
        AnnDataset("glove-25-angular", 25, "angular", 1_183_514, 10_000),
        AnnDataset("glove-50-angular", 50, "angular", 1_183_514, 10_000),
        AnnDataset("glove-100-angular", 100, "angular", 1_183_514, 10_000),
        AnnDataset("glove-200-angular", 200, "angular", 1_183_514, 10_000),
        AnnDataset("sift-128-euclidean", 128, "euclidean", 1_000_000, 10_000),
        AnnDataset("gist-960-euclidean", 960, "euclidean", 1_000_000, 1_000),
        AnnDataset("nytimes-256-angular", 256, "angular", 290_000, 10_000),
        AnnDataset("deep-image-96-angular", 96, "angular", 9_990_000, 10_000),
        AnnDataset("mnist-784-euclidean", 784, "euclidean", 60_000, 10_000),
        AnnDataset("fashion-mnist-784-euclidean", 784, "euclidean", 60_000, 10_000),
        AnnDataset("lastfm-64-dot", 65, "angular", 292_385, 50_000, "stored as 65-d angular"),
    )
}


def url_for(name: str) -> str:
    return f"{BASE_URL.rstrip('/')}/{name}.hdf5"


def manifest_path() -> Path:
    return data_dir() / "downloads.json"


def _manifest() -> dict:
    try:
        return json.loads(manifest_path().read_text())
    except (OSError, ValueError):
        return {}


def verify_file(spec: AnnDataset, path: Path) -> None:
    """Check an ann-benchmarks file against what its name and the published table promise."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path} is not a valid HDF5 file ({e}); delete it and download again") from None
    with f:
        missing = [k for k in ("train", "test", "neighbors", "distances") if k not in f]
        if missing:
            raise DatasetError(f"{path} lacks {missing}: not an ann-benchmarks file; delete it and download again")
        distance = f.attrs.get("distance")
        distance = distance.decode() if isinstance(distance, bytes) else distance
        problems = []
        if distance != spec.metric:
            problems.append(f"distance attribute {distance!r}, expected {spec.metric!r}")
        if f["train"].shape != (spec.train, spec.dim):
            problems.append(f"train shape {f['train'].shape}, expected {(spec.train, spec.dim)}")
        if f["test"].shape != (spec.test, spec.dim):
            problems.append(f"test shape {f['test'].shape}, expected {(spec.test, spec.dim)}")
        if f["neighbors"].shape[0] != spec.test:
            problems.append(f"neighbors rows {f['neighbors'].shape[0]}, expected {spec.test}")
    if problems:
        raise DatasetError(f"{path} does not match {spec.name}: " + "; ".join(problems))


def download(name: str, target: Path, *, progress: bool = True, timeout: float = 30.0) -> Path:
    """Fetch ``name`` from ann-benchmarks.com into ``target``, verified; record its sha256."""
    spec = ANN_DATASETS[name]
    url = url_for(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(target.suffix + ".download")
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DatasetError(
            f"cannot reach {url} ({reason}): download {url} manually into {target.parent} "
            f"(as {target.name}) and run again"
        ) from None
    h = hashlib.sha256()
    received = 0
    with response:
        expected = int(response.headers.get("Content-Length") or 0) or None
        from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

        with (
            Progress(
                *Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), disable=not progress
            ) as bar,
            open(part, "wb") as out,
        ):
            task = bar.add_task(f"downloading {name}", total=expected)
            try:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    h.update(block)
                    received += len(block)
                    bar.update(task, advance=len(block))
            except OSError as e:
                part.unlink(missing_ok=True)
                raise DatasetError(f"download of {url} broke off after {received} bytes ({e}); run again") from None
    if expected is not None and received != expected:
        part.unlink(missing_ok=True)
        raise DatasetError(f"download of {url} is incomplete: {received} of {expected} bytes; run again")
    digest = h.hexdigest()
    manifest = _manifest()
    known = manifest.get(name, {}).get("sha256")
    if known and known != digest:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"{url} now has sha256 {digest}, but {manifest_path()} recorded {known} for an earlier download: "
            f"the published file changed; remove the {name!r} entry from {manifest_path()} to accept it"
        )
    try:
        verify_file(spec, part)
    except DatasetError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    manifest[name] = {
        "url": url,
        "bytes": received,
        "sha256": digest,
        "downloaded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    manifest_path().write_text(json.dumps(manifest, indent=1))
    return target


def _register() -> None:
    for spec in ANN_DATASETS.values():
        if spec.name in KNOWN:  # e.g. fashion-mnist comes from a Debian package, no download needed
            continue
        register(
            KnownDataset(
                spec.name,
                f"ann-benchmarks.com download: {spec.train:,} train / {spec.test:,} test"
                + (f"; {spec.note}" if spec.note else ""),
                functools.partial(download, spec.name),
            )
        )


_register()
