"""The processes of the local stack: what each one is, its binary, command line, ports and health check.

Every port here is fixed: collector/prometheus.yml, collector/otelcol-config.yaml,
collector/jaeger-config.yaml and collector/docker-compose.yaml name the same ones (the compose test
checks the compose file against these definitions).
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devtools.stack import COLLECTOR_DIR, HOST, STATE, StackError
from devtools.stack.install import collector_binary, debian_binary, jaeger_binary, which

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _no_preparation(keep_data: bool) -> None:
    """Most components keep no state of their own."""


@dataclass(frozen=True)
class Component:
    """One process of the stack: how to get its binary, run it, and check its health."""

    name: str
    what: str
    ports: dict[int, str]  # port -> what it serves
    health: list[str]  # URLs that must answer 200
    binary: Callable[[], Path] = field(repr=False)
    argv: Callable[[Path], list[str]] = field(repr=False)
    before_start: Callable[[bool], None] = field(default=_no_preparation, repr=False)

    @property
    def pid_file(self) -> Path:
        """JSON record of the running process."""
        return STATE / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """Its stdout and stderr (overwritten by each start)."""
        return STATE / f"{self.name}.log"

    def health_check(self) -> tuple[bool, str]:
        """(healthy, what was seen): every health URL must answer 200."""
        for url in self.health:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status != 200:
                        return False, f"{url} -> HTTP {response.status}"
            except urllib.error.HTTPError as error:
                return False, f"{url} -> HTTP {error.code}"
            except (OSError, ValueError) as error:
                return False, f"{url} -> {getattr(error, 'reason', error)}"
        return True, "ok"


def _fresh_prometheus_data(keep_data: bool) -> None:
    """Each `up` starts Prometheus on an empty database unless asked to keep the last one."""
    data = STATE / "prometheus-data"
    if data.exists() and not keep_data:
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)


def _alertmanager_data(keep_data: bool) -> None:
    (STATE / "alertmanager-data").mkdir(parents=True, exist_ok=True)


COMPONENTS = [
    Component(
        name="jaeger",
        what="Jaeger v2 (traces: OTLP in, query UI/API)",
        ports={
            14317: "OTLP gRPC",
            14318: "OTLP HTTP",
            16686: "UI + query API",
            16685: "query gRPC",
            13134: "health",
        },
        health=[f"http://{HOST}:13134/status", f"http://{HOST}:16686/api/services"],
        binary=jaeger_binary,
        argv=lambda binary: [str(binary), "--config", str(COLLECTOR_DIR / "jaeger-config.yaml")],
    ),
    Component(
        name="alertmanager",
        what="Alertmanager (Debian)",
        ports={9093: "UI + API"},
        health=[f"http://{HOST}:9093/-/ready"],
        binary=debian_binary("prometheus-alertmanager", "prometheus-alertmanager", "prometheus-alertmanager"),
        argv=lambda binary: [
            str(binary),
            f"--config.file={COLLECTOR_DIR / 'alertmanager.yml'}",
            f"--storage.path={STATE / 'alertmanager-data'}",
            f"--web.listen-address={HOST}:9093",
            "--cluster.listen-address=",  # no HA cluster: nothing on 9094
        ],
        before_start=_alertmanager_data,
    ),
    Component(
        name="prometheus",
        what="Prometheus (Debian)",
        ports={9090: "UI + API"},
        health=[f"http://{HOST}:9090/-/ready"],
        binary=debian_binary("prometheus", "prometheus", "prometheus"),
        argv=lambda binary: [
            str(binary),
            f"--config.file={COLLECTOR_DIR / 'prometheus.yml'}",
            f"--storage.tsdb.path={STATE / 'prometheus-data'}",
            f"--web.listen-address={HOST}:9090",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=2d",
            # Exemplars (trace ids of recorded durations) from the collector's OpenMetrics exposition.
            "--enable-feature=exemplar-storage",
        ],
        before_start=_fresh_prometheus_data,
    ),
    Component(
        name="otelcol",
        what="OpenTelemetry Collector",
        ports={
            4317: "OTLP gRPC",
            4318: "OTLP HTTP",
            8889: "Prometheus exporter",
            8888: "own metrics",
            13133: "health",
        },
        health=[f"http://{HOST}:13133/"],
        binary=collector_binary,
        argv=lambda binary: [str(binary), "--config", str(COLLECTOR_DIR / "otelcol-config.yaml")],
    ),
]
BY_NAME = {component.name: component for component in COMPONENTS}


def _companion(command: str, component: Component) -> Path:
    """A command that comes in the same Debian package as a component's binary."""
    component.binary()
    found = which(command)
    if found is None:
        raise StackError(f"{command} not found although {component.name}'s Debian package is installed")
    return found


def promtool_binary() -> Path:
    """Promtool comes with Debian's prometheus package."""
    return _companion("promtool", BY_NAME["prometheus"])


def amtool_binary() -> Path:
    """Amtool comes with Debian's prometheus-alertmanager package."""
    return _companion("amtool", BY_NAME["alertmanager"])
