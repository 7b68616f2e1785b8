"""The facts each store declares on its adapter class, as the shared modules read them: provenance packages and
the engine extras of ``settings: portable`` (identity: test_engines.py; compose services: test_compose.py)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pytest

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


EXTRAS = [(name, family) for name in store_names() for family in get_store_class(name).engine_extras]


def test_some_store_declares_engine_extras():
    assert EXTRAS  # else the test below checks nothing


@pytest.mark.parametrize("name,family", EXTRAS, ids=[f"{n}-{f}" for n, f in EXTRAS])
def test_engine_extras_are_build_parameters_the_portable_plan_sets(name, family):
    """Each extra is a build parameter of the family that takes the value, and settings: portable builds with it
    (settings: engine with the engine's own default)."""
    from vdbbench.config import parse_config

    cls = get_store_class(name)
    fam = cls.families[family]
    extras = cls.engine_extras[family]
    for key, value in extras.items():
        param = fam.build_param(key)
        assert param is not None and param.name == key, f"{name} {family} has no build parameter {key}"
        assert param.coerce(value) == value
    for settings, want in (("portable", extras), ("engine", {k: fam.build_param(k).default for k in extras})):
        cfg = parse_config({"datasets": [{"name": "d", "synthetic": {"n": 1000, "dim": 32}}],
                            "stores": [{"store": name, "index": family}], "settings": settings})  # fmt: skip
        plan = cfg.plan(cfg.stores[0], n=1000, dim=32)
        assert all(build[k] == v for build in plan.builds for k, v in want.items()), (settings, plan.builds)
        assert not [n for n in plan.notes if n.split(":")[0] in extras]  # taken as they are
