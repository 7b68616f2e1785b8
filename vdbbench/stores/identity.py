"""Which engine a store entry actually measured, and how it ran: the ``engine`` record field.

A store name says which product a reader will think of; the figures, though, may come from an
embedded stand-in (an embedded client or library build of a server product) that behaves
nothing like that product's server. The identity is derived from the version string the adapter
reads from the engine at run time (``engine_version``) by the rules each store declares
(``Store.identity_rules``, ``Store.identity_fallback``), so the same rules serve both the runner
(new records, ``Store.engine_identity``) and the report (old records, ``record_identity``).
"""

from __future__ import annotations

from typing import Any

from vdbbench.stores import ADAPTERS, get_store_class, store_names
from vdbbench.stores.base import identify_engine


def identify(store: str, engine_version: str | None, options: dict[str, Any] | None = None,
             local: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """The ``engine`` field for an entry of store ``store``: product, engine, version, mode, baseline and a label.

    A store no longer registered (a record from elsewhere) is named by any store's rule its version matches, else
    by its own name, mode "unknown".
    """
    if store in ADAPTERS:
        return get_store_class(store).identify(engine_version, options, local)
    rules = [rule for name in store_names() for rule in get_store_class(name).identity_rules]
    return identify_engine(rules, (store, store, "unknown"), False, engine_version, local)


def record_identity(record: dict[str, Any]) -> dict[str, Any]:
    """The record's ``engine`` field, or one derived from store, engine_version and options for old records."""
    engine = record.get("engine")
    if isinstance(engine, dict) and engine.get("label"):
        return engine
    return identify(str(record.get("store")), record.get("engine_version"), record.get("options"))


def server_products() -> frozenset[str]:
    """Products some store measures as a server, so an embedded engine of one only stands in for it."""
    products = set()
    for name in store_names():
        cls = get_store_class(name)
        products |= {rule.product for rule in cls.identity_rules if rule.mode == "server"}
        if cls.identity_fallback and cls.identity_fallback[2] == "server":
            products.add(cls.identity_fallback[0])
    return frozenset(products)


def stand_in_warning(engine: dict[str, Any]) -> str | None:
    """A sentence when an embedded engine stands in for a server product, else None."""
    if engine.get("mode") != "embedded" or engine.get("product") not in server_products():
        return None
    product = engine["product"]
    return f"the {product} figures are for {engine['label']}, not a {product} server"
