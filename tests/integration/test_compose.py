"""collector/docker-compose.yaml, loaded by compose-go (the loader docker compose itself uses).

collector/composecheck prints the project as docker compose sees it (paths resolved, ports expanded).
The file must load, every host path it mounts must exist in the repository, and every port it publishes
must be the port the local stack (devtools/stack/components.py) uses for the same component, bound to the
host's 127.0.0.1. Never skipped: without Go or the compose-go module the checker cannot be built, and the
tests fail saying why.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools.stack import StackError
from devtools.stack.components import BY_NAME, COMPONENTS
from devtools.stack.install import composecheck_binary
from tests.support import ROOT

COMPOSE_FILE = ROOT / "collector" / "docker-compose.yaml"
# The compose file's conventions (its header): the repository's folders are mounted under /repo, every
# service joins the network namespace of `otelcol`, which publishes all ports, and listeners that must
# be reachable through a published port bind 0.0.0.0 inside that namespace.
REPOSITORY_IN_CONTAINERS = "/repo"
NAMESPACE_OWNER = "otelcol"
# Grafana runs in the compose stack only (the local stack cannot build it): its port is the one
# published port that no local component has.
COMPOSE_ONLY_PORTS = {3000: "grafana"}


def load(compose_file: Path) -> subprocess.CompletedProcess[str]:
    try:
        checker = composecheck_binary()
    except StackError as error:
        pytest.fail(f"cannot build collector/composecheck: {error}", pytrace=False)
    return subprocess.run(
        [str(checker), str(compose_file)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    done = load(COMPOSE_FILE)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def strings_of(service: dict[str, Any]) -> list[str]:
    """What a service's command and environment say (where paths and listen addresses are named)."""
    return [*(service.get("command") or []), *(service.get("environment") or {}).values()]


def local_ports() -> dict[int, str]:
    return {port: component.name for component in COMPONENTS for port in component.ports}


def test_compose_file_loads(project: dict[str, Any]) -> None:
    assert project["name"] == "otel-resilience"
    assert set(project["services"]) == {*BY_NAME, *COMPOSE_ONLY_PORTS.values()}
    for name, service in project["services"].items():
        if name != NAMESPACE_OWNER:
            assert service.get("network_mode") == f"service:{NAMESPACE_OWNER}", name


def test_the_checker_reports_what_docker_compose_rejects(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text("services:\n  otelcol:\n    image: x\n    ports: ['127.0.0.1:not-a-port:4317']\n")
    done = load(broken)
    assert done.returncode == 1, done.stdout
    assert "composecheck:" in done.stderr
    assert str(broken) in done.stderr


def test_every_mounted_path_exists_in_the_repository(project: dict[str, Any]) -> None:
    for name, service in project["services"].items():
        binds = {
            volume["target"]: Path(volume["source"])
            for volume in service.get("volumes", [])
            if volume["type"] == "bind"
        }
        for target, source in binds.items():
            assert source.exists(), f"{name} mounts {source}, which does not exist"
            assert source.resolve().is_relative_to(ROOT), f"{name} mounts {source}, outside the repository"
            assert target.startswith(f"{REPOSITORY_IN_CONTAINERS}/"), f"{name}: {target}"
        # Each repository file a service names (--config=/repo/collector/otelcol-config.yaml, ...) must
        # come through one of its own mounts and exist.
        for text in strings_of(service):
            for path in re.findall(rf"{REPOSITORY_IN_CONTAINERS}/[\w./-]+", text):
                mounts = [target for target in binds if path == target or path.startswith(f"{target}/")]
                assert mounts, f"{name} names {path} but mounts none of its folders"
                host_path = binds[mounts[0]] / Path(path).relative_to(mounts[0])
                assert host_path.exists(), f"{name} names {path}: {host_path} does not exist"


def test_published_ports_are_the_local_stacks_on_loopback(project: dict[str, Any]) -> None:
    services = project["services"]
    ports_of_the_stack = local_ports()
    published = set()
    for name, service in services.items():
        for mapping in service.get("ports", []):
            port = mapping["target"]
            where = f"{name} publishes {mapping}"
            assert name == NAMESPACE_OWNER, where
            assert mapping["host_ip"] == "127.0.0.1", where
            assert mapping["published"] == str(port), where
            assert mapping["protocol"] == "tcp", where
            owner = ports_of_the_stack.get(port) or COMPOSE_ONLY_PORTS.get(port)
            assert owner is not None, f"{where}: no component of the local stack uses port {port}"
            assert owner in services, f"{where}: port {port} is {owner}'s, which the compose file lacks"
            published.add(port)
    assert set(COMPOSE_ONLY_PORTS) <= published


def test_each_service_listens_on_its_local_components_ports(project: dict[str, Any]) -> None:
    """A listen address a service names (0.0.0.0:PORT) is its local component's port, and published."""
    published = {mapping["target"] for mapping in project["services"][NAMESPACE_OWNER]["ports"]}
    for name, service in project["services"].items():
        named = {int(port) for text in strings_of(service) for port in re.findall(r"0\.0\.0\.0:(\d+)", text)}
        expected = set(BY_NAME[name].ports) if name in BY_NAME else set()
        assert named <= expected, f"{name} listens on {sorted(named - expected)}, not the local stack's ports"
        assert named <= published, f"{name} listens on {sorted(named - published)}, which are not published"
    grafana_port = int(project["services"]["grafana"]["environment"]["GF_SERVER_HTTP_PORT"])
    assert COMPOSE_ONLY_PORTS[grafana_port] == "grafana"
