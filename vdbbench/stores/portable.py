"""The portable vocabulary and the one table of equal default settings for every store.

Every store names its parameters in the harness's words where the family has them (the engine's
own spellings stay accepted as aliases, see ``Param.aliases``):

======  =============================  ==================
family  build                          search
======  =============================  ==================
hnsw    m, ef_construction             ef
ivf     nlist                          nprobe
pq      nlist, pq_m, nbits             nprobe, refine
======  =============================  ==================

``settings: portable`` (the default) gives every store the same values, from this table:

* hnsw: ``m`` 16, ``ef_construction`` 200; search ``ef`` in 10, 20, 40, 80, 160, 320.
* ivf: ``nlist`` from the dataset size n: sqrt(n) rounded to the nearest power of two, at most
  4096, then halved until every list holds at least 39 vectors on average (faiss's training
  minimum); search ``nprobe`` in 1, 2, 4, 8, 16, 32, 64 (at most ``nlist``).
* pq: ``nlist`` as ivf; ``pq_m`` the largest divisor of the dimension that is at most dim / 4
  (sub-vectors of at least 4 dimensions); ``nbits`` 8; search ``nprobe`` as ivf, ``refine`` 0 and 10.
* Engine-only extras that decide what is built get the value that makes the build the same as on
  the other stores, as each store declares them (``Store.engine_extras``: e.g. one HNSW graph over
  full vectors in one partition, or a graph searched at every segment size).

``settings: engine`` gives each store its engine's own out-of-the-box values (``Param.default``).
Where a store cannot take a portable value (outside its allowed range, or the family lacks the
parameter), the point's ``settings_note`` says what it got instead.
"""

from __future__ import annotations

import math
from typing import Any

from vdbbench.stores.base import FamilySpec, Param, Store

SETTINGS = ("portable", "engine")
EF_GRID = [10, 20, 40, 80, 160, 320]
NPROBE_GRID = [1, 2, 4, 8, 16, 32, 64]
REFINE_GRID = [0, 10]
MAX_NLIST = 4096
MIN_VECTORS_PER_LIST = 39
# The family's main search knob: what recall-target tuning moves.
SEARCH_KNOB = {"hnsw": "ef", "ivf": "nprobe", "pq": "nprobe"}


def nlist_for(n: int) -> int:
    """IVF lists for ``n`` vectors: ~sqrt(n) as a power of two, <= 4096, >= 39 vectors per list."""
    nlist = min(2 ** round(math.log2(max(math.sqrt(max(n, 1)), 1))), MAX_NLIST)
    while nlist > 1 and n < MIN_VECTORS_PER_LIST * nlist:
        nlist //= 2
    return nlist


def pq_m_for(dim: int) -> int:
    """PQ sub-vectors: the largest divisor of ``dim`` that is at most dim / 4."""
    return max(d for d in range(1, max(dim // 4, 1) + 1) if dim % d == 0)


def portable_table(family: str, n: int | None, dim: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(build, search) portable values of ``family``; search values are lists (the default grid).

    ``n`` / ``dim`` unknown (a dry run before the data exists): the rules are given as text.
    """
    if family == "hnsw":
        return {"m": 16, "ef_construction": 200}, {"ef": EF_GRID}
    if family not in ("ivf", "pq"):
        return {}, {}
    nlist = nlist_for(n) if n else "~sqrt(n)"
    nprobe = [p for p in NPROBE_GRID if not isinstance(nlist, int) or p <= nlist]
    if family == "ivf":
        return {"nlist": nlist}, {"nprobe": nprobe}
    return {"nlist": nlist, "pq_m": pq_m_for(dim) if dim else "divisor <= dim/4", "nbits": 8}, {
        "nprobe": nprobe,
        "refine": REFINE_GRID,
    }


def _fit(p: Param, value: Any) -> tuple[Any, str | None]:
    """``value`` if the parameter takes it, else the nearest value it takes and a note saying so."""
    if isinstance(value, str) and p.type is not str:
        return value, None  # a rule shown in a dry run
    try:
        return p.coerce(value), None
    except ValueError as e:
        if p.choices:
            got = p.default
        elif p.maximum is not None and value > p.maximum:
            got = p.type(p.maximum)
        else:
            got = p.type(p.minimum)
        return got, f"{p.name}: portable value {value!r} not accepted ({e}); {got!r} used"


def default_values(
    store: type[Store], fam: FamilySpec, settings: str, n: int | None = None, dim: int | None = None
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Build values, search values (a value or a list) and notes for one store entry's family: with ``portable``
    settings the table's values plus the store's own ``engine_extras`` for the family."""
    build = {p.name: p.default for p in fam.build}
    search: dict[str, Any] = {p.name: p.default for p in fam.search}
    if settings == "engine":
        return build, search, []
    notes: list[str] = []
    table_build, table_search = portable_table(fam.family, n, dim)
    table_build = table_build | dict(store.engine_extras.get(fam.family, {}))
    for section, table, params, out in (
        ("build", table_build, fam.build, build),
        ("search", table_search, fam.search, search),
    ):
        declared = {p.name: p for p in params}
        for name, value in table.items():
            if name not in declared:
                notes.append(f"{name}: {store.name} {fam.family} has no {section} parameter {name!r}; not applied")
                continue
            p = declared[name]
            if isinstance(value, list):
                fitted = []
                for v in value:
                    got, note = _fit(p, v)
                    if note:
                        notes.append(note)
                    if got not in fitted:
                        fitted.append(got)
                out[name] = fitted
            else:
                out[name], note = _fit(p, value)
                if note:
                    notes.append(note)
    return build, search, notes
