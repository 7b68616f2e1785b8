"""Writes after the build, for every store declaring them: deleted rows never come back and rows inserted after
the build are found (``supports_delete``), and searches run beside a writing thread (``concurrent_writes``)."""

from __future__ import annotations

import pytest
from storekit import check_delete_and_insert, check_searches_beside_writes

from . import kit


def _deletes(cls):
    return [((case,), case.key) for case in kit.delete_cases(cls)] if cls.supports_delete else []


@pytest.mark.parametrize("store,case", kit.params(_deletes))
def test_deleted_rows_vanish_and_rows_inserted_after_the_build_are_found(pool, store, case):
    """Built on 90% of the contract data; 10% of the built rows deleted (the queries' true neighbours, so a lingering
    one would show); the held-back 10% inserted: none deleted comes back, the last inserted row is found by its own
    vector, and recall against the live rows reaches the floor."""
    s = pool.get(store)
    pool.spoil()
    out = check_delete_and_insert(s, case.family, case.floor, case.build, case.search, k=kit.K)
    assert out["deleted"] > 100


@pytest.mark.parametrize(
    "store,case",
    kit.params(lambda cls: [((kit.writes_case(cls),), "")] if cls.concurrent_writes and cls.supports_delete else []),
)
def test_searches_run_beside_a_writing_thread(pool, store, case):
    """One thread inserts and deletes through the adapter while this one searches without pause: no call fails,
    every answer is whole, and once the writer is done no deleted id comes back."""
    s = pool.get(store)
    pool.spoil()
    assert check_searches_beside_writes(s, case.family, case.build, case.search, k=kit.K) >= 1
