"""Every store × each filtered build it declares × each filter operator in its ``filter_ops``: no answer holds a
row that fails the filter, and recall against the exact neighbours among the passing rows reaches the floor."""

from __future__ import annotations

import numpy as np
import pytest
from storekit import build_with_attributes, filtered_search

from vdbbench.core.filters import parse_filter
from vdbbench.core.metrics import recall_at_k
from vdbbench.stores import get_store_class

from . import kit

KINDS = {"kind": "str", "year": "int", "score": "float"}


def attribute_build(pool, store: str, case):
    """``case`` over the contract data with its attribute columns (shared while it stands)."""
    return pool.build(store, ("attributes", case),
                      lambda s: build_with_attributes(s, case.family, case.build, case.search))  # fmt: skip


def check(store, name: str, expression: dict, data, floor: float):
    """The answers to every contract query under ``expression`` (one batch where the store takes one: the joined
    test shows it answers as single searches under a filter)."""
    got = filtered_search(store, expression, data, kit.K, batch=type(store).supports_batch_search)
    assert got.violations == 0, f"{name}: {got.violations} returned ids fail the filter {expression}"
    assert all(len(a) <= kit.K for a in got.answers), f"{name}: an answer holds more than k ids"
    if got.selectivity == 0:
        assert all(len(a) == 0 for a in got.answers), f"{name}: nothing passes, yet ids were returned"
    assert got.recall >= floor, f"{name} ({got.selectivity:.3f} pass): recall {got.recall:.4f} < {floor}"
    return got


def _operators(cls):
    return [((case, op), f"{case.key}-{op}") for case in kit.filter_cases(cls) for op in sorted(cls.filter_ops)]


@pytest.mark.parametrize("store,case,op", kit.params(_operators))
def test_filter_operator(pool, store, case, op):
    data = attribute_build(pool, store, case)
    s = pool.get(store)
    for kind, expression in kit.OPERATOR_FILTERS[op].items():
        check(s, f"{op}-{kind}", expression, data, case.floor)


def _filtered_builds(cls):
    return [((case,), case.key) for case in kit.filter_cases(cls)] if cls.filter_ops else []


@pytest.mark.parametrize("store,case", kit.params(_filtered_builds))
def test_joined_filters_read_back_and_clear(pool, store, case):
    """Operators joined on one or two columns, a filter nothing passes (no ids at all); the engine reads back an
    index (or "none") for every attribute column and the filter it applies; batch search answers as single
    searches under a filter; and set_filter(None) makes searches unfiltered again."""
    cls = get_store_class(store)
    data = attribute_build(pool, store, case)
    s = pool.get(store)
    joined = {name: e for name, e in kit.JOINED_FILTERS.items() if kit.operators(e) <= cls.filter_ops}
    for name, expression in joined.items():
        check(s, name, expression, data, case.floor)
    effective = s.effective_config()
    indexes = effective.get("attribute_indexes") or {}
    assert set(indexes) == set(KINDS), effective
    declared = cls.conformance.attribute_indexes
    if declared:
        assert indexes == {name: declared[kind] for name, kind in KINDS.items()}
    assert "filter" not in effective
    expression = kit.OPERATOR_FILTERS[sorted(cls.filter_ops)[0]]
    flt = parse_filter(next(iter(expression.values())))
    s.set_filter(flt)
    try:
        assert s.effective_config().get("filter"), "the effective config does not say which filter it applies"
        if cls.supports_batch_search:
            batch = s.search_batch(data.test, kit.K)
            single = [s.search(q, kit.K) for q in data.test]
            assert all(np.array_equal(a, b) for a, b in zip(batch, single, strict=True)), "batch != single, filtered"
    finally:
        s.set_filter(None)
    assert "filter" not in s.effective_config()
    unfiltered = [np.asarray(s.search(q, kit.K)) for q in data.test]
    recall = recall_at_k(unfiltered, data.test, data.train, data.neighbors, kit.K, data.metric).recall
    assert recall >= case.floor, "set_filter(None) must make searches unfiltered again"
