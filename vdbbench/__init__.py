"""vdbbench: measure vector databases and their index settings on your own embeddings."""

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("vdbbench")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.1.0"


def _unshadow_huggingface_datasets() -> None:
    """Keep the repository's ``datasets/`` folder from posing as HuggingFace's ``datasets`` package.

    With the repository root on ``sys.path`` (``python -m ...`` run from the root), that folder
    imports as an empty namespace package; sentence-transformers and lancedb probe for
    ``datasets`` and then fail on it. vdbbench is installed, so the root need not be on the path.
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / "datasets").is_dir() or (root / "datasets" / "__init__.py").exists():
        return
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != root]
    shadow = sys.modules.get("datasets")
    if shadow is not None and getattr(shadow, "__file__", None) is None:
        del sys.modules["datasets"]


_unshadow_huggingface_datasets()
