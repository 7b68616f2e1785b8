from pathlib import Path

import pytest

from .kit import Pool

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def pool():
    """The opened instance the conformance tests of one store share (kit.Pool)."""
    shared = Pool()
    yield shared
    shared.close()


def pytest_collection_modifyitems(items):
    """The conformance tests run store by store (in their own order within a store), so each store opens once
    and one store's servers run at a time; every other test keeps its place."""
    slots = [
        i
        for i, item in enumerate(items)
        if HERE in Path(item.path).parents and isinstance(_params(item).get("store"), str)
    ]
    ordered = sorted((items[i] for i in slots), key=lambda item: _params(item)["store"])
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item


def _params(item) -> dict:
    callspec = getattr(item, "callspec", None)
    return callspec.params if callspec is not None else {}
