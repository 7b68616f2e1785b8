"""vdbbench: measure vector databases and their index settings on your own embeddings."""

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("vdbbench")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.1.0"


class _NoShadowDatasets:
    """Meta path finder: ``import datasets`` never resolves to the repository's ``datasets/`` data folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname != "datasets":
            return None
        from importlib.machinery import PathFinder

        elsewhere = [p for p in sys.path if Path(p or ".").resolve() != self.root]
        spec = PathFinder.find_spec(fullname, elsewhere)
        if spec is None:
            raise ModuleNotFoundError("No module named 'datasets'", name="datasets")
        return spec


def _unshadow_huggingface_datasets() -> None:
    """Keep the repository's ``datasets/`` folder from posing as HuggingFace's ``datasets`` package.

    With the repository root on ``sys.path`` (``python -m ...`` run from the root), that folder
    imports as an empty namespace package; sentence-transformers and lancedb probe for
    ``datasets`` and then fail on it. The root stays on the path (so a store's worker process,
    which gets this path, imports this same vdbbench tree, not another installed copy); only the
    name ``datasets`` is kept from resolving to that folder.
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / "datasets").is_dir() or (root / "datasets" / "__init__.py").exists():
        return
    if not any(isinstance(f, _NoShadowDatasets) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoShadowDatasets(root))
    shadow = sys.modules.get("datasets")
    if shadow is not None and getattr(shadow, "__file__", None) is None:
        del sys.modules["datasets"]


_unshadow_huggingface_datasets()
