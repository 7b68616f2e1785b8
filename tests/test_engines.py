"""Engine identity: which engine a store entry measured and how it ran, from the version the engine reports, by the
rules each store declares."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest

from vdbbench.stores import ADAPTERS, Store, get_store_class, store_names
from vdbbench.stores.base import IdentityRule
from vdbbench.stores.identity import identify, record_identity, server_products, stand_in_warning

MODES = ("embedded", "server", "in-process")


# The version strings are the adapters' own engine_version() formats, as read from each engine at run time.
@pytest.mark.parametrize(
    ("store", "reported", "local", "engine", "mode", "label"),
    [
        ("milvus", "milvus-lite 3.2.2 (pymilvus 3.0.2)", False, "Milvus Lite", "embedded",
         "Milvus Lite 3.2.2 (embedded)"),
        ("milvus", "milvus v2.3.5 (pymilvus 3.0.2)", False, "Milvus", "server", "Milvus 2.3.5 server"),
        # what PyPI's milvus 2.3.5 standalone server (milvus-server) reports: its version as the server says it
        ("milvus", "milvus v2.3.5-lite (pymilvus 3.0.2)", False, "Milvus", "server", "Milvus 2.3.5-lite server"),
        ("qdrant", "qdrant-edge-py 0.9.0", False, "Qdrant edge", "embedded", "Qdrant edge 0.9.0 (embedded)"),
        ("qdrant-server", "qdrant 1.17.0 (qdrant-client 1.20.0)", False, "Qdrant", "server", "Qdrant 1.17.0 server"),
        ("pgvector", "PostgreSQL 16.2 + pgvector 0.6.2", True, "PostgreSQL + pgvector", "server",
         "PostgreSQL 16.2 + pgvector 0.6.2 (local server)"),
        ("pgvector", "PostgreSQL 17.1 + pgvector 0.8.0", None, "PostgreSQL + pgvector", "server",
         "PostgreSQL 17.1 + pgvector 0.8.0 (server)"),
        ("redis", "Redis 7.4.1 + RediSearch 2.10.5", True, "Redis + RediSearch", "server",
         "Redis 7.4.1 + RediSearch 2.10.5 (local server)"),
        ("weaviate", "weaviate 1.27.0 (weaviate-client 4.9)", False, "Weaviate", "server", "Weaviate 1.27.0 server"),
        ("elasticsearch", "elasticsearch 8.15.0 (elasticsearch-py 8.15)", False, "Elasticsearch", "server",
         "Elasticsearch 8.15.0 server"),
        ("hnswlib", "hnswlib 0.8.0", False, "hnswlib", "in-process", "hnswlib 0.8.0 (in-process library, baseline)"),
        ("exact", "numpy 2.4.6", False, "exact search (numpy)", "in-process",
         "Exact search, numpy 2.4.6 (in-process, baseline)"),
    ],
)  # fmt: skip
def test_identity_from_the_reported_version(store, reported, local, engine, mode, label):
    ident = identify(store, reported, {}, local=local)
    assert (ident["engine"], ident["mode"], ident["label"]) == (engine, mode, label)
    assert ident["baseline"] == (store in ("hnswlib", "exact"))
    assert ident["version"] and all(part in label for part in ident["version"].split(" + "))


def test_old_records_without_a_version_still_say_what_ran():
    assert identify("milvus", None)["label"] == "Milvus Lite (embedded)"
    assert identify("milvus", None, {"url": "http://db:19530"})["label"] == "Milvus server"  # option url: a server
    assert identify("milvus", None, {"uri": "http://db:19530"})["label"] == "Milvus server"  # pymilvus's name
    assert identify("pgvector", None)["label"] == "PostgreSQL + pgvector server"
    assert identify("my-store", "whatever 1")["label"] == "my-store" and identify("my-store", None)["mode"] == "unknown"
    recorded = {"store": "milvus", "engine": {"label": "Milvus 2.6.0 server", "product": "Milvus", "mode": "server"}}
    assert record_identity(recorded) is recorded["engine"]  # a recorded identity is used as it is
    assert record_identity({"store": "qdrant", "engine_version": "qdrant-edge-py 0.9.0"})["engine"] == "Qdrant edge"


def test_embedded_stand_ins_for_server_products_are_named():
    assert stand_in_warning(identify("milvus", "milvus-lite 3.2.2 (pymilvus 3.0.2)")).startswith(
        "the Milvus figures are for Milvus Lite 3.2.2 (embedded), not a Milvus server"
    )
    assert "not a Qdrant server" in stand_in_warning(identify("qdrant", "qdrant-edge-py 0.9.0"))
    assert stand_in_warning(identify("milvus", "milvus v2.3.5 (pymilvus 3.0.2)")) is None  # a real server
    assert stand_in_warning(identify("hnswlib", "hnswlib 0.8.0")) is None


def test_adapters_report_their_identity_at_run_time(tmp_path):
    """The version comes from the installed engine, not from a string in the code."""
    for name, package, label in (("hnswlib", "hnswlib", "hnswlib {} (in-process library, baseline)"),
                                 ("exact", "numpy", "Exact search, numpy {} (in-process, baseline)"),
                                 ("qdrant", "qdrant-edge-py", "Qdrant edge {} (embedded)")):  # fmt: skip
        store = get_store_class(name)(tmp_path / name, {})
        try:
            store.open()
            assert store.engine_identity()["label"] == label.format(version(package))
        finally:
            store.close()


@pytest.mark.parametrize("name", store_names())
def test_every_store_declares_how_its_engine_is_named(name):
    """A fallback for records without a version, and rules whose groups and labels fit the identity."""
    cls = get_store_class(name)
    product, engine, mode = cls.identity_fallback
    assert product and engine and mode in MODES, name
    assert cls.identify(None)["mode"] == mode and cls.identify(None)["baseline"] == cls.baseline
    for rule in cls.identity_rules:
        assert isinstance(rule, IdentityRule) and rule.mode in MODES and rule.product and rule.engine, rule
        assert "(?P<v>" in rule.pattern and "{v}" in rule.label, rule  # the version is named and shown
        assert not set(re.findall(r"\{(\w+)\}", rule.label)) - {"v", "x", "where"}, rule
    assert cls.identify("not a version string of any engine")["engine"] == engine  # no rule matches it


class ToyStore(Store):
    """An embedded engine of a product that has no server: never a stand-in."""

    name = "toy-embedded"
    mode = "embedded"
    identity_rules = (IdentityRule(r"^toy (?P<v>\S+)", "Toy", "Toy engine", "embedded", "Toy {v} (embedded)"),)
    identity_fallback = ("Toy", "Toy engine", "embedded")


class ToyServerStore(Store):
    """The same product as a server: now the embedded one stands in for it."""

    name = "toy-server"
    mode = "server"
    identity_fallback = ("Toy", "Toy engine", "server")


def test_stand_ins_are_embedded_engines_of_products_some_store_serves(monkeypatch):
    monkeypatch.setitem(ADAPTERS, "toy-embedded", "test_engines:ToyStore")
    assert identify("toy-embedded", "toy 1.2")["label"] == "Toy 1.2 (embedded)"
    assert "Toy" not in server_products() and stand_in_warning(identify("toy-embedded", "toy 1.2")) is None
    monkeypatch.setitem(ADAPTERS, "toy-server", "test_engines:ToyServerStore")
    assert "Toy" in server_products()
    assert (
        stand_in_warning(identify("toy-embedded", "toy 1.2"))
        == "the Toy figures are for Toy 1.2 (embedded), not a Toy server"
    )
    # a store no longer registered is still named by any registered store's rule, else by its own name
    monkeypatch.delitem(ADAPTERS, "toy-embedded")
    assert identify("toy-embedded", "toy 1.2")["label"] == "toy-embedded"
    gone = identify("gone", "hnswlib 0.8.0")
    assert (gone["engine"], gone["label"], gone["baseline"]) == ("hnswlib", "hnswlib 0.8.0 (in-process library)", False)
