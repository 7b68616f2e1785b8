from pathlib import Path

import pytest

from .kit import Pool

HERE = Path(__file__).parent
POOL = Pool()


@pytest.fixture(scope="session")
def pool():
    """The opened instance the conformance tests of one store share (kit.Pool)."""
    yield POOL
    POOL.close()


def _store(item) -> str | None:
    """The store a conformance test runs on; None for any other test."""
    callspec = getattr(item, "callspec", None)
    store = callspec.params.get("store") if callspec is not None else None
    return store if isinstance(store, str) and HERE in Path(item.path).parents else None


def pytest_collection_modifyitems(items):
    """The conformance tests run store by store (in their own order within a store), so each store opens once
    and one store's servers run at a time; every other test keeps its place."""
    slots = [i for i, item in enumerate(items) if _store(item)]
    ordered = sorted((items[i] for i in slots), key=_store)
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item


def pytest_runtest_teardown(item, nextitem):
    """A store's last test closes it: its servers stop before the next store's (or any other) test runs."""
    if _store(item) and (nextitem is None or _store(nextitem) != _store(item)):
        POOL.close()
