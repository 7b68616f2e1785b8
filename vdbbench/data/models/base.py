"""The model backend interface: how ``vdbbench.data.embed`` turns texts into vectors, whatever library does it.

A backend is a small ``Backend`` subclass in its own module of this package, listed in ``BACKENDS``
(``vdbbench/data/models/__init__.py``). ``embed`` owns everything every model shares — the cache,
prompts, length sorting, the progress bar, passages/s, the dataset file — and asks the backend only:

* ``resolve(spec)``: the ``ModelRef`` (name, what to load, a revision that changes when the weights do,
  a human-readable source) for a model name or folder it serves, else ``None`` (the next backend is asked);
* ``device(asked)``: the device it will run on for ``auto``/``cpu``/``cuda``, refusing one it cannot use;
* ``load(ref, device, dtype)``: a ``LoadedModel`` (its prompts, similarity, max tokens, if it has any);
* ``batch_size(lm, texts)``: texts per ``encode`` call when the user gave none;
* ``encode(lm, texts, prefix, batch_size)``: float32 rows, one per text, in input order;
* ``versions()``: ``{"<package>_version": ...}`` of the packages that produced the vectors (provenance).

``describe_device``, ``peak_memory`` and ``release`` have CPU defaults. A static-embedding model
(model2vec) or an ONNX file on disk is one more module of this size.
"""

from __future__ import annotations

import gc
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.data.datasets import DatasetError, data_dir

# Incremented by the shared code: tests read them to prove a cache hit loaded and ran nothing.
CALLS = {"model_loads": 0, "encode_calls": 0, "texts_encoded": 0}

MODEL_FIELD = "text.model (--model)"  # how configs and the embed command name the model setting


class EmbedError(DatasetError):
    """The model cannot be found or loaded, or produced unusable vectors; the message says what to do."""


@dataclass
class ModelRef:
    """What to load and how to name it in keys and results."""

    name: str  # as the user wrote it (or the packaged model's name)
    load_from: str  # hub id, local folder or package
    revision: str  # hub commit, or sha256 of the weight files
    source: str  # human-readable origin, naming the package and its version where one ships the weights
    local: bool


@dataclass
class LoadedModel:
    ref: ModelRef
    device: str
    dtype: str
    model: Any
    backend: Backend
    prompts: dict[str, str] = field(default_factory=dict)
    similarity: str | None = None
    max_seq_length: int | None = None


class Backend:
    """One library that turns texts into vectors; see the module docstring for what each method must do."""

    name = ""  # recorded as the dataset's embed_backend

    def resolve(self, spec: str) -> ModelRef | None:
        raise NotImplementedError

    def device(self, asked: str) -> str:
        """CPU-only by default: ``auto`` and ``cpu`` mean the CPU; ``cuda`` is refused."""
        if asked == "cuda":
            raise EmbedError(f"{MODEL_FIELD}: {self.name} models run on the CPU only; use device auto or cpu")
        return "cpu"

    def dtypes(self, device: str) -> tuple[str, ...]:
        """Precisions it can run in on ``device``, the default first."""
        return ("float32",)

    def load(self, ref: ModelRef, device: str, dtype: str) -> LoadedModel:
        raise NotImplementedError

    def batch_size(self, lm: LoadedModel, texts: list[str]) -> int:
        raise NotImplementedError

    def encode(self, lm: LoadedModel, texts: list[str], prefix: str, batch_size: int) -> np.ndarray:
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        raise NotImplementedError

    def describe_device(self, device: str) -> str:
        return device

    def peak_memory(self, device: str) -> int | None:
        """Peak accelerator memory while embedding; None on the CPU, where it is not measured apart."""
        return None

    def release(self, device: str) -> None:
        """After the model is dropped: give back what it held beyond Python memory (GPU caches)."""


def package_versions(*packages: str) -> dict[str, str]:
    """``{"<package>_version": version}`` of the installed ones among ``packages`` (dashes as underscores)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in packages:
        try:
            out[pkg.replace("-", "_") + "_version"] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def folder_sha256(folder: Path) -> str:
    """Hash of every file (relative path + content) in a model folder, memoised by path, size and mtime."""
    memo_path = data_dir() / "embeddings" / "model-hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts and ".cache" not in p.parts)
    stamp = hashlib.sha256(
        "\n".join(f"{p.relative_to(folder)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files).encode()
    ).hexdigest()
    key = str(folder.resolve())
    if memo.get(key, {}).get("stamp") == stamp:
        return memo[key]["sha256"]
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(folder)).encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    digest = h.hexdigest()
    memo[key] = {"stamp": stamp, "sha256": digest}
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        memo_path.write_text(json.dumps(memo, indent=1))
    except OSError:
        pass
    return digest


_loaded: LoadedModel | None = None  # one model kept between calls in a process (tests, several datasets)


def load_model(backend: Backend, ref: ModelRef, device: str, dtype: str) -> LoadedModel:
    """Load ``ref`` through ``backend``, or reuse the model kept from the last call when it is the same."""
    global _loaded
    same = (ref.load_from, ref.revision, device, dtype)
    if _loaded and (_loaded.ref.load_from, _loaded.ref.revision, _loaded.device, _loaded.dtype) == same:
        return _loaded
    release_model()
    _loaded = backend.load(ref, device, dtype)
    CALLS["model_loads"] += 1
    return _loaded


def release_model() -> None:
    """Drop the kept model and give its memory back (before stores and ground truth run)."""
    global _loaded
    if _loaded is None:
        return
    backend, device = _loaded.backend, _loaded.device
    _loaded = None
    gc.collect()
    backend.release(device)
