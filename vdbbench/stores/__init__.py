"""Registry of store adapters: name → class, imported lazily so a missing client breaks only its store."""

from __future__ import annotations

import importlib

from vdbbench.stores.base import FAMILIES, METRICS, BuildSpec, FamilySpec, Param, Store, StoreError

# store name → "module:Class"; each module imports its engine client only when used.
ADAPTERS: dict[str, str] = {
    "bm25": "vdbbench.stores.bm25.adapter:BM25Store",
    "exact": "vdbbench.stores.exact.adapter:ExactStore",
    "hnswlib": "vdbbench.stores.hnswlib.adapter:HnswlibStore",
    "pgvector": "vdbbench.stores.pgvector.adapter:PgvectorStore",
    "redis": "vdbbench.stores.redis.adapter:RedisStore",
    "milvus": "vdbbench.stores.milvus.adapter:MilvusStore",
    "chroma": "vdbbench.stores.chroma.adapter:ChromaStore",
    "lancedb": "vdbbench.stores.lancedb.adapter:LanceDBStore",
    "qdrant": "vdbbench.stores.qdrant.adapter:QdrantStore",
    "qdrant-server": "vdbbench.stores.qdrant_server.adapter:QdrantServerStore",
    "weaviate": "vdbbench.stores.weaviate.adapter:WeaviateStore",
    "elasticsearch": "vdbbench.stores.elasticsearch.adapter:ElasticsearchStore",
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
