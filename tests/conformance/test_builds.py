"""Every store × each case it declares × each metric of the family: the build reaches its recall floor on the
contract data, the engine reads back what was built (``param_source`` engine, or sent where the store says no
API reports it); k above the row count answers every row; each search knob takes effect on hard data; batch
search answers as single searches; and another process attached with ``client_handle()`` answers the same."""

from __future__ import annotations

import numpy as np
import pytest
from attachkit import assert_same_answers, search_from_second_process
from storekit import assert_answers_valid, build_and_search, small_data

from vdbbench.core.metrics import recall_at_k
from vdbbench.execution.points import config_mismatches, param_sources
from vdbbench.stores import StoreError, get_store_class

from . import kit


def _cases_by_metric(cls):
    return [((case, metric), f"{case.key}-{metric}") for case in kit.default_cases(cls)
            for metric in cls.families[case.family].metrics]  # fmt: skip


@pytest.mark.parametrize("store,case,metric", kit.params(_cases_by_metric))
def test_build_reaches_its_floor_and_reads_back(pool, store, case, metric):
    cls = get_store_class(store)
    data, out = kit.contract_build(pool, store, case, metric)
    n = data.train.shape[0]
    assert out.recall >= case.floor_for(metric), f"{case.key}/{metric}: recall {out.recall:.4f}"
    assert_answers_valid(out, kit.K, n)
    assert out.effective["family"] == case.family and out.effective["metric"] == metric, out.effective
    assert out.mismatches == []
    asked = kit.asked_params(cls, case.family, case.build, case.search)
    assert param_sources(asked, out.effective) == {p: "sent" if p in case.sent else "engine" for p in asked}, (
        f"read back: {out.effective['params']}"
    )
    for figure in cls.conformance.resources:
        assert out.resources.get(figure, 0) > 0, f"resources() reports {figure} = {out.resources.get(figure)}"


@pytest.mark.parametrize("store", kit.params(lambda cls: [((), "")] if cls.supports_batch_search else []))
def test_batch_search_answers_as_single_searches(pool, store):
    data, _ = kit.any_contract_build(pool, store)
    s = pool.get(store)
    batch = s.search_batch(data.test, kit.K)
    single = [s.search(q, kit.K) for q in data.test]
    assert len(batch) == len(single)
    for i, (a, b) in enumerate(zip(batch, single, strict=True)):
        assert np.array_equal(np.asarray(a), np.asarray(b)), f"query {i}: batch {a} != single {b}"


@pytest.mark.parametrize("store", kit.params(lambda cls: [((), "")]))
def test_second_process_searches_the_builders_index(pool, store):
    """What concurrent clients do: a new process attaches with ``client_handle()`` and answers as the builder;
    its close() leaves the builder's index as it was. A store offering no handle refuses ``attach``."""
    data, out = kit.any_contract_build(pool, store)
    s = pool.get(store)
    handle = s.client_handle()
    if handle is None:
        with pytest.raises(StoreError, match="second process"):
            get_store_class(store)(pool.workdir, dict(s.options)).attach({})
        return
    builder = [s.search(q, kit.K) for q in data.test]
    assert_same_answers(builder, out.answers)
    attached = search_from_second_process(store, pool.workdir, dict(s.options), handle, data.test, s.search_params)
    assert_same_answers(attached, builder)
    assert_same_answers([s.search(q, kit.K) for q in data.test], builder)


@pytest.mark.parametrize("store,tiny_case", kit.params(lambda cls: [((kit.k_beyond_case(cls),), "")]))
def test_k_above_the_row_count_answers_every_row(pool, store, tiny_case):
    """30 rows, k 50: every row, once; built over a 2000-row build, so no id of that one may come back (create()
    replaces an earlier build)."""
    kit.any_contract_build(pool, store)
    c, tiny = tiny_case, small_data("euclidean", n=30, dim=8, queries=5)
    out = pool.build(
        store, ("tiny", c), lambda s: build_and_search(s, c.family, "euclidean", c.build, c.search, k=50, data=tiny)
    )
    assert_answers_valid(out, 50, 30)
    assert out.recall == 1.0


def _knobs(cls):
    return [((knob,), f"{knob.family}-{'-'.join(knob.high)}") for knob in kit.knobs(cls)]


@pytest.mark.parametrize("store,knob", kit.params(_knobs))
def test_search_knob_takes_effect(pool, store, knob):
    """On data hard enough that the lowest setting misses neighbours, recall at the lowest setting is below 0.95 and
    below recall at the highest: an adapter that ignored its search parameter would score the same at both. The
    build parameters read back as asked, and so does the lowest setting where the engine reports it."""
    cls = get_store_class(store)
    data = kit.hard_data()
    high = pool.build(
        store, ("hard", knob), lambda s: build_and_search(s, knob.family, data.metric, knob.build, knob.high, data=data)
    )
    s = pool.get(store)
    fam = cls.families[knob.family]
    lowest = {p.name: p.default for p in fam.search} | fam.portable_params(knob.low, "search")
    try:
        s.set_search_params(lowest)
        answers = [s.search(q, kit.K) for q in data.test]
        lowered = s.effective_config()
    finally:
        pool.spoil()  # the build now searches with the lowest setting
    low = recall_at_k(answers, data.test, data.train, data.neighbors, kit.K, data.metric).recall
    assert low < 0.95, f"lowest setting {knob.low} already gives recall {low}: data too easy"
    assert low < high.recall, f"recall {low} at {knob.low} vs {high.recall} at {knob.high}: knob ignored?"
    assert high.recall >= knob.floor, f"recall {high.recall:.4f} at {knob.high} < {knob.floor}"
    build = fam.portable_params(knob.build)
    assert {k: high.effective["params"].get(k) for k in build} == build, f"read back {high.effective['params']}"
    assert high.mismatches == [] and high.effective["family"] == knob.family
    assert config_mismatches(knob.family, lowest, lowered) == [], "the lowest setting reads back otherwise"
