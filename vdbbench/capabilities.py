"""The capability matrix (store × family × parameters), generated from the adapters' declarations."""

from __future__ import annotations

from pathlib import Path

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
