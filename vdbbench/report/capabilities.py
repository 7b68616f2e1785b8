"""The capability matrix (store × family × parameters, filters, deletes), generated from the adapters' declarations;
and the README's generated blocks."""

from __future__ import annotations

from pathlib import Path

from vdbbench.core.filters import OPS
from vdbbench.core.schema import schema_markdown
from vdbbench.stores import get_store_class, store_names


def _params(params) -> str:
    """Each parameter's portable name, the engine's own name(s) in brackets, and the engine default."""
    return ", ".join(f"`{p.name}`" + "".join(f" (`{a}`)" for a in p.aliases) + f"={p.default}" for p in params) or "–"


def capability_markdown() -> str:
    """A Markdown table of every store's families, engine index, parameters and metrics.

    Parameters show the portable name first and the engine's own spelling in brackets; both are accepted.
    """
    rows = [
        "| store | mode | family | engine index | build parameters (engine name) = engine default "
        "| search parameters (engine name) = engine default | metrics |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in store_names():
        cls = get_store_class(name)
        for fam in cls.families.values():
            rows.append(
                f"| {name} | {cls.mode} | {fam.family} | {fam.engine_index} | {_params(fam.build)} "
                f"| {_params(fam.search)} | {', '.join(fam.metrics)} |"
            )
    return "\n".join(rows) + "\n\n" + workload_markdown() + "\n\n" + hybrid_markdown()


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


def hybrid_markdown() -> str:
    """Per vector store: its own full-text + vector search (``hybrid: {native: true}``, recorded as
    ``retrieval: native-hybrid``), naming the engine's tokenizer and fusion; "no" where the adapter has none."""
    rows = ["| store | native hybrid search (`hybrid: {native: true}`): tokenizer, text scoring, fusion |", "|---|---|"]
    for name in store_names():
        cls = get_store_class(name)
        if cls.input == "vectors":
            rows.append(f"| {name} | {cls.native_hybrid or 'no (ranx fusion with bm25 only: `hybrid: rrf`)'} |")
    return "\n".join(rows)


START, END = "<!-- capabilities:start -->", "<!-- capabilities:end -->"
SCHEMA_START, SCHEMA_END = "<!-- record-schema:start -->", "<!-- record-schema:end -->"


def generated_blocks() -> dict[tuple[str, str], str]:
    """The README's generated blocks (capability tables, results-record fields), by their markers."""

    return {(START, END): capability_markdown(), (SCHEMA_START, SCHEMA_END): schema_markdown()}


def update_readme(path: Path) -> bool:
    """Rewrite the generated blocks of the README; True when one changed."""
    text = path.read_text(encoding="utf-8")
    new = text
    for (start, end), content in generated_blocks().items():
        head, rest = new.split(start, 1)
        _, tail = rest.split(end, 1)
        new = f"{head}{start}\n{content}\n{end}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
