"""Registry of store adapters: every folder ``stores/<name>/`` with an ``adapter.py`` is a store.

A store's folder holds its adapter and the facts about it; nothing else lists it. The adapter
modules import their engine clients only inside methods, so finding the stores imports no client
and a missing client breaks only its own store.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from vdbbench.stores.base import FAMILIES, METRICS, BuildSpec, FamilySpec, Param, Store, StoreError


@cache
def _found() -> dict[str, str]:
    """store name → ``"module:Class"`` of every adapter folder."""
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg:
            continue
        module_name = f"{__name__}.{info.name}.adapter"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                continue  # a folder without an adapter (a helper package), not a store
            raise
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, Store) and obj.__module__ == module_name
                    and getattr(obj, "name", None)):  # fmt: skip
                if obj.name in found:
                    raise RuntimeError(f"two store folders declare the store name {obj.name!r}: rename one")
                found[obj.name] = f"{module_name}:{obj.__qualname__}"
    return dict(sorted(found.items()))


# store name → "module:Class"; the worker process imports the class from this string. Tests may add an entry.
ADAPTERS: dict[str, str] = _found()


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


def store_packages() -> list[str]:
    """The Python packages of every store's engine and client (``Store.packages``), for provenance."""
    return list(dict.fromkeys(p for name in store_names() for p in get_store_class(name).packages))


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
    "store_packages",
]
