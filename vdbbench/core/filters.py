"""Metadata filters: the small expression language of configs, checked, evaluated and named one way.

An expression is a mapping of attribute name → condition, all of which must hold (and):

- ``{department: "loans"}``: equality
- ``{department: {in: ["loans", "cards"]}}``: membership
- ``{year: {gte: 2020, lt: 2024}}``: a range (``gt``, ``gte``, ``lt``, ``lte``; one or two bounds)

It parses to a ``Filter``: a tuple of ``Condition(field, op, value)``, every one of which an
adapter translates into its engine's own filter (one translator per store, in the store's
module). ``mask`` evaluates a filter over the dataset's attribute columns: exact filtered
ground truth, the selectivity recorded with each point, and the in-process baselines use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

OPS = ("eq", "in", "gt", "gte", "lt", "lte")
RANGE_OPS = ("gt", "gte", "lt", "lte")
RANGE_SYMBOLS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}  # the range ops as SQL and Milvus write them
KINDS = ("int", "float", "str")


class FilterError(ValueError):
    """A filter expression is malformed or does not fit the dataset's attributes; the message says the fix."""


@dataclass(frozen=True)
class Condition:
    """One condition: ``op`` is eq, in (``value`` a tuple), gt, gte, lt or lte."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Filter:
    """Conditions that must all hold; ``expression`` is the config's own form, kept for records and keys."""

    conditions: tuple[Condition, ...]

    @property
    def fields(self) -> list[str]:
        """The attributes the filter reads: the columns a build must insert and index."""
        return sorted({c.field for c in self.conditions})

    @property
    def ops(self) -> set[str]:
        """The operators used: a store must translate them all (``Store.filter_ops``)."""
        return {c.op for c in self.conditions}

    def expression(self) -> dict[str, Any]:
        """The filter in the config's language (one canonical form), as records and reports show it."""
        out: dict[str, Any] = {}
        for c in self.conditions:
            if c.op == "eq":
                out[c.field] = c.value
            else:
                slot = out.setdefault(c.field, {})
                slot[c.op] = list(c.value) if c.op == "in" else c.value
        return out

    def text(self) -> str:
        """Canonical JSON of the expression: equal filters give equal text (point keys, labels)."""
        return json.dumps(self.expression(), sort_keys=True, ensure_ascii=False)


def _scalar(value: Any) -> bool:
    """A string or a finite number (no bool: YAML's true is not a value of any attribute kind)."""
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def parse_filter(expr: Any, where: str = "filter") -> Filter:
    """``expr`` (a config mapping) as a Filter; FilterError naming ``where`` and the fix otherwise."""
    form = "write {field: value}, {field: {in: [a, b]}} or {field: {gte: x, lt: y}}"
    if not isinstance(expr, Mapping) or not expr:
        raise FilterError(f"{where}: expected a mapping of attribute → condition; {form}")
    conditions: list[Condition] = []
    for name, cond in expr.items():
        if not isinstance(name, str) or not name:
            raise FilterError(f"{where}: attribute names must be non-empty strings, got {name!r}")
        at = f"{where}.{name}"
        if _scalar(cond):
            conditions.append(Condition(name, "eq", cond))
            continue
        if not isinstance(cond, Mapping) or not cond:
            raise FilterError(f"{at}: {cond!r} is not a condition; {form}")
        unknown = [op for op in cond if op not in ("in", *RANGE_OPS)]
        if unknown:
            raise FilterError(f"{at}: unknown operator(s) {unknown}; use in, gt, gte, lt or lte (or a plain value)")
        if "in" in cond:
            values = cond["in"]
            if len(cond) > 1:
                raise FilterError(f"{at}: 'in' cannot be combined with a range on the same attribute")
            if not isinstance(values, list) or not values or not all(_scalar(v) for v in values):
                raise FilterError(f"{at}.in: give a non-empty list of values, e.g. in: [a, b]")
            conditions.append(Condition(name, "in", tuple(values)))
            continue
        if ("gt" in cond and "gte" in cond) or ("lt" in cond and "lte" in cond):
            raise FilterError(f"{at}: give one lower bound (gt or gte) and one upper bound (lt or lte) at most")
        for op in RANGE_OPS:
            if op in cond:
                bound = cond[op]
                if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound):
                    raise FilterError(f"{at}.{op}: a range bound must be a finite number, got {bound!r}")
                conditions.append(Condition(name, op, bound))
    return Filter(tuple(conditions))


def column_kind(values: np.ndarray) -> str:
    """int, float or str: the kind of an attribute column, as stores declare their schema."""
    if values.dtype.kind in "iu":
        return "int"
    if values.dtype.kind == "f":
        return "float"
    if values.dtype.kind in "USO":
        return "str"
    raise FilterError(f"attribute columns must be int64, float64 or UTF-8 strings, got dtype {values.dtype}")


def check_filter(flt: Filter, kinds: Mapping[str, str], where: str = "filter") -> list[str]:
    """Problems with ``flt`` against the dataset's attribute columns (name → kind); [] when it fits."""
    problems = []
    for c in flt.conditions:
        at = f"{where}.{c.field}"
        if c.field not in kinds:
            offered = ", ".join(sorted(kinds)) or "none (add attributes to the dataset)"
            problems.append(f"{at}: the dataset has no attribute {c.field!r}; its attributes are: {offered}")
            continue
        kind = kinds[c.field]
        values = c.value if c.op == "in" else (c.value,)
        if c.op in RANGE_OPS and kind == "str":
            problems.append(f"{at}.{c.op}: {c.field!r} holds strings; ranges need a numeric attribute (use in)")
        elif kind == "str" and not all(isinstance(v, str) for v in values):
            problems.append(f"{at}: {c.field!r} holds strings; compare it with strings, got {list(values)}")
        elif kind != "str" and not all(isinstance(v, int | float) for v in values):
            problems.append(f"{at}: {c.field!r} holds numbers ({kind}); compare it with numbers, got {list(values)}")
        elif kind == "int" and c.op in ("eq", "in") and not all(float(v).is_integer() for v in values):
            problems.append(f"{at}: {c.field!r} holds integers; {list(values)} can never be equal to one")
    return problems


def mask(flt: Filter, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Boolean mask of the rows that pass every condition of ``flt``."""
    n = len(next(iter(columns.values()))) if columns else 0
    keep = np.ones(n, dtype=bool)
    for c in flt.conditions:
        col = columns[c.field]
        if c.op == "eq":
            keep &= col == c.value
        elif c.op == "in":
            keep &= np.isin(col, np.asarray(c.value))  # the values' own width: a longer value must not be cut to fit
        elif c.op == "gt":
            keep &= col > c.value
        elif c.op == "gte":
            keep &= col >= c.value
        elif c.op == "lt":
            keep &= col < c.value
        else:
            keep &= col <= c.value
    return keep


def range_bounds(conditions: list[Condition]) -> dict[str, Any]:
    """The range conditions of one field as {op: bound}, for translators whose engine takes a range object."""
    return {c.op: c.value for c in conditions if c.op in RANGE_OPS}


def by_field(flt: Filter) -> dict[str, list[Condition]]:
    """The filter's conditions grouped by attribute, in the expression's order."""
    out: dict[str, list[Condition]] = {}
    for c in flt.conditions:
        out.setdefault(c.field, []).append(c)
    return out


def _as_kind(kind: str, value: Any) -> Any:
    return float(value) if kind == "float" else int(value) if float(value).is_integer() else value


def typed(flt: Filter, kinds: Mapping[str, str]) -> Filter:
    """``flt`` with each value as its column's kind (``kinds``: column → int/float/str), for engines that refuse
    a float literal on an integer column or the reverse: ints on int columns, where a fractional range bound
    becomes the integer bound that passes the same rows (gt 2010.5 → gte 2011), floats on float columns."""
    out = []
    for c in flt.conditions:
        kind, value, op = kinds.get(c.field), c.value, c.op
        if kind == "int" and op in RANGE_OPS and not float(value).is_integer():
            op = "gte" if op in ("gt", "gte") else "lte"
            value = math.ceil(value) if op == "gte" else math.floor(value)
        elif kind in ("int", "float"):  # a fractional value on an int column (refused by check_filter) stays as given
            value = tuple(_as_kind(kind, v) for v in value) if op == "in" else _as_kind(kind, value)
        out.append(Condition(c.field, op, value))
    return Filter(tuple(out))
