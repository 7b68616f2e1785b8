"""vdbbench: measure vector databases and their index settings on your own embeddings."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vdbbench")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.1.0"
