"""`python -m vdbbench services`: store → service resolution, the compose command line, and the
messages given on this machine, which has no Docker engine (the real engine path runs on users' hosts)."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from vdbbench.cli import main
from vdbbench.stores import get_store_class, services, store_names
from vdbbench.stores.servers import RemoteStore
from vdbbench.stores.services import ServicesError, compose_command, container_resources, services_for, store_services

SERVER_STORES = sorted(store_services())
SERVERLESS = [name for name in store_names() if name not in SERVER_STORES]  # embedded and in-process stores

no_engine = pytest.mark.skipif(
    os.path.exists("/var/run/docker.sock") or bool(os.environ.get("DOCKER_HOST")),
    reason="a Docker engine may be reachable here; these tests check the message given without one",
)


def test_milvus_brings_its_dependencies_first():
    assert services_for(["milvus"]) == ["etcd", "minio", "milvus"]
    assert services_for(["weaviate", "milvus", "etcd"]) == ["weaviate", "etcd", "minio", "milvus"]
    assert services_for(["qdrant-server", "qdrant"]) == ["qdrant"]  # store name and service name alike
    assert services_for([]) == services.all_services()


@pytest.mark.parametrize("name", [n for n in SERVERLESS if n not in services.all_services()])
def test_unknown_or_embedded_store_is_refused_with_the_choices(name):
    with pytest.raises(ServicesError, match=f"unknown store or service '{name}'.*need no service") as e:
        services_for([name])
    assert all(store in str(e.value) for store in (*SERVER_STORES, *SERVERLESS))  # the choices, both kinds


def test_compose_command_uses_repository_files_and_project():
    cmd = compose_command("up", "-d", "qdrant")
    assert cmd[:2] == ["docker", "compose"] or cmd[0].endswith("/docker-compose")  # plugin, else standalone
    assert cmd[cmd.index("-f") + 1].endswith("docker/docker-compose.yml")
    assert cmd[cmd.index("--env-file") + 1].endswith("docker/.env")
    assert cmd[cmd.index("-p") + 1] == "vdbbench"
    assert cmd[-3:] == ["up", "-d", "qdrant"]


def test_compose_volumes_of_a_store():
    assert services.compose_volumes(["etcd", "minio", "milvus"]) == ["etcd_data", "minio_data", "milvus_data"]


@no_engine
def test_no_docker_engine_is_said_plainly():
    with pytest.raises(ServicesError) as e:
        services.docker_client()
    text = str(e.value)
    assert text.startswith("no Docker engine is reachable")
    assert "sudo systemctl start docker" in text and "DOCKER_HOST" in text


@no_engine
@pytest.mark.parametrize("action", ["up", "down", "status"])
def test_cli_services_without_docker_exits_2_with_the_message(action, capsys):
    assert main(["services", action, "qdrant-server"]) == 2
    err = capsys.readouterr().err
    assert "no Docker engine is reachable" in err
    assert "Traceback" not in err


def test_cli_services_unknown_store_exits_2(capsys):
    assert main(["services", "up", "nosuchstore"]) == 2
    assert "unknown store or service 'nosuchstore'" in capsys.readouterr().err


@no_engine
def test_container_resources_without_docker_is_empty_with_a_reason():
    figures = container_resources("weaviate")
    assert figures == {}
    assert "no Docker engine is reachable" in figures.reason


def test_container_resources_of_unknown_store_is_empty_with_a_reason():
    figures = container_resources("nosuchstore")
    assert figures == {} and "unknown store" in figures.reason


def test_missing_docker_cli_is_said_plainly(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    with pytest.raises(ServicesError, match="the docker command is not installed"):
        services.run_compose("ps")


@pytest.mark.parametrize("name", SERVER_STORES)
def test_server_modes_name_their_compose_store_and_embedded_modes_none(tmp_path, name, monkeypatch):
    """With its compose address a store says its containers serve it; without one, a remote store still uses the
    compose service, and any other store runs an engine of its own, which no container serves."""
    cls = get_store_class(name)
    address = cls.compose_address
    if address.env:
        monkeypatch.delenv(address.env, raising=False)
    assert cls(tmp_path, {address.option: address.url}).compose_service() == name
    assert cls(tmp_path, {}).compose_service() == (name if issubclass(cls, RemoteStore) else None)


def test_every_store_with_compose_services_says_where_they_answer():
    for name in store_names():
        cls = get_store_class(name)
        assert bool(cls.compose_services) == (cls.compose_address is not None), name
        if cls.compose_address is not None:
            assert cls.compose_address.option in cls.options_help, name  # the option names another server
            assert cls.compose_address.env is None or cls.compose_address.env.startswith("VDBBENCH_"), name


def test_standalone_compose_runs_without_a_daemon_and_its_errors_are_reported(monkeypatch):
    """Here only the standalone binary exists: commands that need no engine work, failures carry its message."""
    names = services.run_compose("config", "--services", capture=True).split()
    assert sorted(names) == sorted(services.all_services())
    with pytest.raises(ServicesError, match="failed with exit status .*no such service: nosuch"):
        services.run_compose("config", "nosuch", capture=True)


CLOSED = [
    ("milvus", {"uri": "http://127.0.0.1:{port}", "timeout_s": 3}, "http://127.0.0.1:{port}"),
    ("redis", {"url": "redis://127.0.0.1:{port}/0"}, "127.0.0.1:{port}"),
    ("pgvector", {"dsn": "postgresql://postgres@127.0.0.1:{port}/postgres"}, "port {port}"),
    ("qdrant-server", {"url": "http://127.0.0.1:{port}", "timeout_s": 2}, "http://127.0.0.1:{port}"),
    ("elasticsearch", {"url": "http://127.0.0.1:{port}", "timeout_s": 2}, "http://127.0.0.1:{port}"),
]  # fmt: skip


@pytest.mark.parametrize("name,options,named", CLOSED, ids=[c[0] for c in CLOSED])
def test_server_address_that_does_not_answer_is_an_error_naming_it(tmp_path, name, options, named):
    """Never a silent fallback: the embedded engine of the same adapter must not start in its place."""
    from conftest import free_port

    from vdbbench.stores import StoreError, get_store_class

    port = free_port()
    options = {k: v.format(port=port) if isinstance(v, str) else v for k, v in options.items()}
    store = get_store_class(name)(tmp_path, options)
    with pytest.raises(StoreError, match=re.escape(named.format(port=port))):
        store.open()
    store.close()
    assert store.owned_processes() == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no embedded data dir was created


def test_services_check_targets_the_compose_server_never_the_embedded_engine(monkeypatch):
    for name in SERVER_STORES:
        address = get_store_class(name).compose_address
        if address.env:
            monkeypatch.delenv(address.env, raising=False)
        assert services.server_options(name, {"index_timeout_s": 5}) == {
            "index_timeout_s": 5,
            address.option: address.url,
        }
    assert services.server_options("milvus", {}) == {"uri": "http://127.0.0.1:19530"}
    assert services.server_options("milvus", {"url": "http://h:1"}) == {"url": "http://h:1"}  # the user's own
    monkeypatch.setenv("VDBBENCH_REDIS_URL", "redis://h:2/0")
    assert services.server_options("redis", {}) == {}  # the adapter reads the variable itself
    assert services.server_options("hnswlib", {"ef": 1}) == {"ef": 1}  # no server: nothing to add


def test_cli_services_check_rejects_unknown_store_and_bad_option(capsys):
    assert main(["services", "check", "nosuchstore", "--no-up"]) == 2
    assert "unknown store(s) nosuchstore" in capsys.readouterr().err
    assert main(["services", "check", "milvus", "--no-up", "--option", "uri"]) == 2
    assert "write KEY=VALUE" in capsys.readouterr().err
