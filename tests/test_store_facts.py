"""The facts each store declares on its adapter class, as the shared modules read them: provenance packages and
the engine extras of ``settings: portable`` (identity: test_engines.py; compose services: test_compose.py)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from vdbbench.core.provenance import collect
from vdbbench.stores import get_store_class, store_names, store_packages


def test_provenance_records_the_packages_every_store_declares():
    packages = collect(None, store_packages())["packages"]
    for name in store_names():
        for package in get_store_class(name).packages:
            try:
                installed = version(package)
            except PackageNotFoundError:
                assert package not in packages, package
                continue
            assert packages[package] == installed, (name, package)
    assert not set(store_packages()) & set(collect(None)["packages"])  # the harness lists no store's package itself
