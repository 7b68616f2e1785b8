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
    """The conformance tests run store by store, so each store opens once and one store's servers run at a time;
    within a store and module, the tests of one ``case`` run one after another, so they share its build. Every other
    test keeps its place."""
    slots = [i for i, item in enumerate(items) if _store(item)]
    groups: list[tuple] = []  # (store, module, case) in the order they first appear

    def rank(item) -> tuple:
        group = (_store(item), item.path, item.callspec.params.get("case"))
        if group not in groups:
            groups.append(group)
        first = next(i for i, g in enumerate(groups) if g[:2] == group[:2])
        return _store(item), first, groups.index(group)

    ordered = sorted((items[i] for i in slots), key=rank)
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item


def pytest_runtest_teardown(item, nextitem):
    """A store's last test closes it: its servers stop before the next store's (or any other) test runs."""
    if _store(item) and (nextitem is None or _store(nextitem) != _store(item)):
        POOL.close()
