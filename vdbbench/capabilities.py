"""The capability matrix (store × family × parameters), generated from the adapters' declarations."""

from __future__ import annotations

from pathlib import Path

from vdbbench.filters import OPS
from vdbbench.stores import get_store_class, store_names


def _params(params) -> str:
    """Each parameter's portable name, the engine's own name(s) in brackets, and the engine default."""
    return ", ".join(f"`{p.name}`" + "".join(f" (`{a}`)" for a in p.aliases) + f"={p.default}" for p in params) or "–"


def capability_markdown() -> str:
    """A Markdown table of every store's families, engine index, parameters and metrics.

    Parameters show the portable name first and the engine's own spelling in brackets; both are accepted.
    """
    rows = [
        "| store | kind | family | engine index | build parameters (engine name) = engine default "
        "| search parameters (engine name) = engine default | metrics |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in store_names():
        cls = get_store_class(name)
        for fam in cls.families.values():
            rows.append(
                f"| {name} | {cls.kind} | {fam.family} | {fam.engine_index} | {_params(fam.build)} "
                f"| {_params(fam.search)} | {', '.join(fam.metrics)} |"
            )
    return "\n".join(rows) + "\n\n" + workload_markdown()


def workload_markdown() -> str:
    """Per store: which filter operators it translates natively, how it filters, and whether it deletes (churn)."""
    rows = [
        "| store | filter operators | how the engine filters | delete (churn) | searched while writing |",
        "|---|---|---|---|---|",
    ]
    for name in store_names():
        cls = get_store_class(name)
        ops = ", ".join(op for op in OPS if op in cls.filter_ops) or "none"
        delete = "yes" if cls.supports_delete else "no: churn can insert only (delete: 0)"
        writes = "yes" if cls.concurrent_writes else "no: churn interleaves writes and searches"
        if cls.input != "vectors":
            delete = writes = "– (searches text; churn is measured on vector stores)"
        rows.append(f"| {name} | {ops} | {cls.filter_note or '–'} | {delete} | {writes} |")
    return "\n".join(rows)


START, END = "<!-- capabilities:start -->", "<!-- capabilities:end -->"


def update_readme(path: Path) -> bool:
    """Rewrite the generated block of the README; True when it changed."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{capability_markdown()}\n{END}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
