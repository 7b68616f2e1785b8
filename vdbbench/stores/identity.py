"""Which engine a store entry actually measured, and how it ran: the ``engine`` record field.

A store name ("milvus", "qdrant", "chroma") says which product a reader will think of; the
figures, though, may come from an embedded stand-in (Milvus Lite, Qdrant edge, Chroma's
embedded client) that behaves nothing like that product's server. The identity is derived
from the version string the adapter reads from the engine at run time (``engine_version``),
so one rule table here serves both the runner (new records) and the report (old records).
"""

from __future__ import annotations

import re
from typing import Any

# Reference implementations measured next to the databases; never a database to choose.
BASELINES = frozenset({"hnswlib", "exact", "bm25"})

# Products that also exist as a server, so an embedded engine only stands in for them.
SERVER_PRODUCTS = frozenset({"Milvus", "Qdrant", "Chroma", "Weaviate", "Elasticsearch"})

# (pattern on engine_version, product, engine, mode, label template); first match wins.
# The templates take the pattern's named groups plus {where} ("local server" / "server").
RULES: tuple[tuple[str, str, str, str, str], ...] = (
    (r"^milvus-lite (?P<v>\S+)", "Milvus", "Milvus Lite", "embedded", "Milvus Lite {v} (embedded)"),
    (r"^milvus v?(?P<v>\S+)", "Milvus", "Milvus", "server", "Milvus {v} {where}"),
    (r"^qdrant-edge-py (?P<v>\S+)", "Qdrant", "Qdrant edge", "embedded", "Qdrant edge {v} (embedded)"),
    (r"^qdrant v?(?P<v>\S+)", "Qdrant", "Qdrant", "server", "Qdrant {v} {where}"),
    (r"^chroma server v?(?P<v>\S+)", "Chroma", "Chroma", "server", "Chroma {v} {where}"),
    (r"^chromadb (?P<v>\S+)", "Chroma", "Chroma embedded client", "embedded", "Chroma {v} (embedded client)"),
    (r"^lancedb (?P<v>\S+)", "LanceDB", "LanceDB", "embedded", "LanceDB {v} (embedded)"),
    (r"^PostgreSQL (?P<v>\S+) \+ pgvector (?P<x>\S+)", "pgvector", "PostgreSQL + pgvector", "server",
     "PostgreSQL {v} + pgvector {x} ({where})"),
    (r"^Redis (?P<v>\S+) \+ RediSearch (?P<x>\S+)", "Redis", "Redis + RediSearch", "server",
     "Redis {v} + RediSearch {x} ({where})"),
    (r"^weaviate v?(?P<v>\S+)", "Weaviate", "Weaviate", "server", "Weaviate {v} {where}"),
    (r"^elasticsearch (?P<v>\S+)", "Elasticsearch", "Elasticsearch", "server", "Elasticsearch {v} {where}"),
    (r"^hnswlib (?P<v>\S+)", "hnswlib", "hnswlib", "in-process", "hnswlib {v} (in-process library)"),
    (r"^numpy (?P<v>\S+)", "exact search", "exact search (numpy)", "in-process",
     "Exact search, numpy {v} (in-process)"),
)  # fmt: skip

# What a store is when its engine did not say (a failed open, or a store without a rule).
FALLBACK = {
    "milvus": ("Milvus", "Milvus Lite", "embedded"),
    "qdrant": ("Qdrant", "Qdrant edge", "embedded"),
    "qdrant-server": ("Qdrant", "Qdrant", "server"),
    "chroma": ("Chroma", "Chroma embedded client", "embedded"),
    "lancedb": ("LanceDB", "LanceDB", "embedded"),
    "pgvector": ("pgvector", "PostgreSQL + pgvector", "server"),
    "redis": ("Redis", "Redis + RediSearch", "server"),
    "weaviate": ("Weaviate", "Weaviate", "server"),
    "elasticsearch": ("Elasticsearch", "Elasticsearch", "server"),
    "hnswlib": ("hnswlib", "hnswlib", "in-process"),
    "exact": ("exact search", "exact search (numpy)", "in-process"),
    "bm25": ("BM25", "BM25", "in-process"),
}


def identify(store: str, engine_version: str | None, options: dict[str, Any] | None = None,
             local: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """The ``engine`` field for a store entry: product, engine, version, mode, baseline and a label.

    ``local`` says whether the harness started the server itself (its adapter owned the process);
    None when unknown (an old record): then a server is called just "server".
    """
    fallback = FALLBACK.get(store, (store, store, "unknown"))
    if store == "milvus" and {"url", "uri"} & {k for k, v in (options or {}).items() if v}:
        fallback = ("Milvus", "Milvus", "server")  # option url / uri: a Milvus server, not the embedded Lite
    where = "local server" if local else "server"
    for pattern, product, engine, mode, template in RULES:
        m = re.match(pattern, engine_version or "")
        if m:
            groups = m.groupdict()
            version = " + ".join(v for v in (groups.get("v"), groups.get("x")) if v)
            return _identity(store, product, engine, version, mode, template.format(where=where, **groups))
    product, engine, mode = fallback
    how = {"embedded": "(embedded)", "in-process": "(in-process)", "server": where}.get(mode)
    label = f"{engine} {how}" if how and mode not in engine else engine
    return _identity(store, product, engine, None, mode, label)


def _identity(store: str, product: str, engine: str, version: str | None, mode: str, label: str) -> dict[str, Any]:
    baseline = store in BASELINES
    if baseline:  # "hnswlib 0.8.0 (in-process library)" -> "hnswlib 0.8.0 (in-process library, baseline)"
        label = label[:-1] + ", baseline)" if label.endswith(")") else label + " (baseline)"
    return {
        "product": product,
        "engine": engine,
        "version": version,
        "mode": mode,
        "baseline": baseline,
        "label": label,
    }


def record_identity(record: dict[str, Any]) -> dict[str, Any]:
    """The record's ``engine`` field, or one derived from store, engine_version and options for old records."""
    engine = record.get("engine")
    if isinstance(engine, dict) and engine.get("label"):
        return engine
    return identify(str(record.get("store")), record.get("engine_version"), record.get("options"))


def stand_in_warning(engine: dict[str, Any]) -> str | None:
    """A sentence when an embedded engine stands in for a server product, else None."""
    if engine.get("mode") != "embedded" or engine.get("product") not in SERVER_PRODUCTS:
        return None
    product = engine["product"]
    return f"the {product} figures are for {engine['label']}, not a {product} server"
