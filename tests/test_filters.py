"""The filter language, its evaluation over attribute columns, filtered recall, and the written record schema."""

import json

import numpy as np
import pytest

from vdbbench.core.filters import Condition, FilterError, check_filter, mask, parse_filter
from vdbbench.core.metrics import recall_at_k
from vdbbench.core.schema import SchemaError, upgrade, validate_record
from vdbbench.workloads import workloads

COLUMNS = {
    "dept": np.array(["loans", "cards", "fx", "loans", "o'brien"]),
    "year": np.array([2001, 2010, 2015, 2020, 2024], dtype=np.int64),
    "score": np.array([0.1, 0.5, 0.9, 0.3, 0.7]),
}


@pytest.mark.parametrize(
    ("expression", "rows"),
    [
        ({"dept": "loans"}, [0, 3]),
        ({"dept": {"in": ["cards", "fx"]}}, [1, 2]),
        ({"dept": "o'brien"}, [4]),
        ({"year": {"gte": 2010, "lt": 2020}}, [1, 2]),
        ({"year": {"gt": 2010, "lte": 2020}}, [2, 3]),
        ({"year": 2015}, [2]),
        ({"year": {"in": [2001, 2024]}}, [0, 4]),
        ({"score": {"gt": 0.3}}, [1, 2, 4]),
        ({"dept": "loans", "year": {"gte": 2010}}, [3]),
        ({"dept": "none"}, []),
    ],
)
def test_mask_passes_exactly_the_rows_every_condition_admits(expression, rows):
    flt = parse_filter(expression)
    assert check_filter(flt, {"dept": "str", "year": "int", "score": "float"}) == []
    assert np.flatnonzero(mask(flt, COLUMNS)).tolist() == rows


def test_a_filter_has_one_canonical_text_and_round_trips_its_expression():
    a = parse_filter({"year": {"lt": 2020, "gte": 2010}, "dept": "fx"})
    b = parse_filter({"dept": "fx", "year": {"gte": 2010, "lt": 2020}})
    assert a.text() == b.text() == json.dumps({"dept": "fx", "year": {"gte": 2010, "lt": 2020}}, sort_keys=True)
    assert parse_filter(a.expression()).conditions == a.conditions
    assert a.conditions[0] == Condition("year", "gte", 2010) and a.ops == {"eq", "gte", "lt"}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({}, "expected a mapping of attribute → condition"),
        ([{"a": 1}], "expected a mapping"),
        ({"a": [1, 2]}, "filter.a: [1, 2] is not a condition"),
        ({"a": True}, "filter.a: True is not a condition"),
        ({"a": {"in": [1, [2]]}}, "filter.a.in: give a non-empty list of values"),
        ({"a": {"in": [1], "lt": 3}}, "'in' cannot be combined with a range"),
    ],
)
def test_malformed_expressions_name_the_field(expression, message):
    with pytest.raises(FilterError) as e:
        parse_filter(expression)
    assert message in str(e.value)


def test_integer_equality_with_a_fraction_can_never_match_and_is_refused():
    problems = check_filter(parse_filter({"year": 2010.5}), {"year": "int"}, "datasets[0].filters[1]")
    assert problems == ["datasets[0].filters[1].year: 'year' holds integers; [2010.5] can never be equal to one"]


def test_filtered_recall_counts_rows_the_filter_rejects_as_misses_and_shrinks_k():
    train = np.arange(20, dtype=np.float32).reshape(-1, 1)
    test = np.array([[0.0]], dtype=np.float32)
    allowed = np.zeros(20, dtype=bool)
    allowed[[5, 7, 9]] = True  # only three rows pass: k = 10 shrinks to 3
    truth = np.array([[5, 7, 9]])
    exact = recall_at_k([np.array([5, 7, 9])], test, train, truth, 10, "euclidean", allowed=allowed)
    assert exact.recall == 1.0 and exact.short_answers == 0 and exact.filter_violations == 0
    leaky = recall_at_k([np.array([0, 5, 7, 9])], test, train, truth, 10, "euclidean", allowed=allowed)
    assert leaky.filter_violations == 1 and leaky.recall == 1.0  # the three passing rows were all found
    short = recall_at_k([np.array([5, 1])], test, train, truth, 10, "euclidean", allowed=allowed)
    assert short.recall == pytest.approx(1 / 3) and short.short_answers == 1 and short.filter_violations == 1
    nothing = recall_at_k([np.array([], dtype=np.int64), np.array([3])], np.zeros((2, 1), np.float32), train,
                          np.empty((2, 0), dtype=np.int64), 10, "euclidean", allowed=np.zeros(20, bool))  # fmt: skip
    assert nothing.recall == 0.5 and nothing.filter_violations == 1


def test_records_follow_the_written_schema(tmp_path):
    from vdbbench.core.schema import Record

    record = {name: None for name in (f.alias or n for n, f in Record.model_fields.items())}
    record.update(schema=2, key="k", time="t", workload="knn", dataset="d", store="exact", label="exact",
                  index="flat", metric="euclidean", build={}, search={}, k=10, runs=1, options={}, status="ok",
                  settings="portable", settings_note=[], param_source={}, search_param_ignored=False, attributes={},
                  dataset_info={}, provenance={})  # fmt: skip
    names = [w.name for w in workloads()]  # the writer's registry: the schema itself names no workload
    validate_record(record, workloads=names)
    with pytest.raises(SchemaError, match="recal: Extra inputs are not permitted"):
        validate_record({**record, "recal": 0.9}, workloads=names)
    with pytest.raises(SchemaError, match="workload: Input should be 'knn', 'filtered', 'concurrent' or 'churn'"):
        validate_record({**record, "workload": "stream"}, workloads=names)


def test_records_of_the_previous_version_are_read_in_this_shape():
    old = {"key": "a", "kind": "concurrency", "status": "ok"}
    assert upgrade(old) == {"key": "a", "status": "ok", "workload": "concurrent", "filter": None,
                            "selectivity": None, "attributes": {}, "schema": 2}  # fmt: skip
    assert upgrade({"key": "b"})["workload"] == "knn"


def test_typed_casts_values_to_the_column_kinds_passing_the_same_rows():
    """For engines that refuse a float literal on an int column, or the reverse (two of the stores do)."""
    from vdbbench.core.filters import typed

    kinds = {"year": "int", "score": "float", "dept": "str"}
    flt = parse_filter({"year": {"gt": 2010.5, "lt": 2014.5}, "score": {"in": [0, 1]}, "dept": "fx"})
    assert typed(flt, kinds).conditions == (
        Condition("year", "gte", 2011), Condition("year", "lte", 2014),
        Condition("score", "in", (0.0, 1.0)), Condition("dept", "eq", "fx"),
    )  # fmt: skip
    assert [type(v) for v in typed(flt, kinds).conditions[2].value] == [float, float]  # 0 == 0.0: check the type
    assert all(
        type(c.value) is int for c in typed(parse_filter({"year": {"gte": 2010.0, "lte": 2012}}), kinds).conditions
    )
    year = np.arange(2000, 2024)
    for expr in (
        {"year": {"gt": 2010.5}},
        {"year": {"gte": 2010.5}},
        {"year": {"lt": 2010.5}},
        {"year": {"lte": 2010.5}},
    ):
        assert np.array_equal(
            mask(typed(parse_filter(expr), kinds), {"year": year}), mask(parse_filter(expr), {"year": year})
        )
    assert typed(parse_filter({"year": 2003.5}), kinds).conditions[0].value == 2003.5  # check_filter refuses it


def test_membership_compares_whole_values_longer_than_the_column_holds():
    """A value longer than every value of a string column must not be cut to the column's width and match."""
    col = {"dept": np.array(["loans", "営業", "cards"])}
    assert mask(parse_filter({"dept": {"in": ["loansX", "営業部"]}}), col).tolist() == [False, False, False]
    assert mask(parse_filter({"dept": {"in": ["営業", "cards"]}}), col).tolist() == [False, True, True]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_values_are_refused(value):
    with pytest.raises(FilterError, match="finite"):
        parse_filter({"year": {"gte": value}})
    with pytest.raises(FilterError, match="is not a condition"):
        parse_filter({"year": value})
