"""Registry of store adapters: name → class, imported lazily so a missing client breaks only its store."""

from __future__ import annotations

import importlib

from vdbbench.stores.base import FAMILIES, METRICS, BuildSpec, FamilySpec, Param, Store, StoreError

# store name → "module:Class"; each module imports its engine client only when used.
ADAPTERS: dict[str, str] = {
    "bm25": "vdbbench.stores.bm25:BM25Store",
    "exact": "vdbbench.stores.exact:ExactStore",
    "hnswlib": "vdbbench.stores.hnswlib:HnswlibStore",
    "pgvector": "vdbbench.stores.pgvector:PgvectorStore",
    "redis": "vdbbench.stores.redis:RedisStore",
    "milvus": "vdbbench.stores.milvus:MilvusStore",
    "chroma": "vdbbench.stores.chroma:ChromaStore",
    "lancedb": "vdbbench.stores.lancedb:LanceDBStore",
    "qdrant": "vdbbench.stores.qdrant:QdrantStore",
    "qdrant-server": "vdbbench.stores.qdrant_server:QdrantServerStore",
    "weaviate": "vdbbench.stores.weaviate:WeaviateStore",
    "elasticsearch": "vdbbench.stores.elasticsearch:ElasticsearchStore",
}


def store_names() -> list[str]:
    return sorted(ADAPTERS)


def get_store_class(name: str) -> type[Store]:
    """The adapter class for ``name``; ValueError listing known stores otherwise."""
    try:
        target = ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown store {name!r}: known stores are {', '.join(store_names())}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


__all__ = [
    "ADAPTERS",
    "FAMILIES",
    "METRICS",
    "BuildSpec",
    "FamilySpec",
    "Param",
    "Store",
    "StoreError",
    "get_store_class",
    "store_names",
]
