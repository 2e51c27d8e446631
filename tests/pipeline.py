"""The local telemetry stack for tests: start it, query Prometheus and Jaeger, wait for data.

Nothing here skips: a missing go, collector, Prometheus or Jaeger fails the test (scripts/stack builds
or installs what is missing; when it cannot, the failure says why).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "scripts" / "stack"
COLLECTOR_CONFIG = ROOT / "collector" / "otelcol-config.yaml"
PROMETHEUS_CONFIG = ROOT / "collector" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "collector" / "alertmanager.yml"

# Generous: a cold machine builds the collector and Jaeger (minutes each) and installs Debian packages.
BUILD_TIMEOUT_S = 3600
# App -> collector (batch 200 ms) -> Prometheus scrape (every 5 s) -> query API.
PIPELINE_TIMEOUT_S = 60


def run_stack(*args: str, timeout: float = BUILD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run scripts/stack; fail the test with its whole output when it fails."""
    done = subprocess.run(
        [sys.executable, str(STACK), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        command = " ".join(args)
        pytest.fail(
            f"scripts/stack {command} failed (exit code {done.returncode}):\n{done.stdout}{done.stderr}",
            pytrace=False,
        )
    return done


def http_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for(what: str, probe: Any, timeout: float = PIPELINE_TIMEOUT_S) -> Any:
    """Call probe() until it returns something truthy; fail naming `what` and the last value or error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = probe()
        except OSError as error:  # includes URLError and connection refused
            found, last = None, error
        else:
            last = found
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what}: nothing after {timeout} s (last: {last!r})", pytrace=False)


@dataclass(frozen=True)
class Stack:
    """The running local stack: where to send OTLP and where to query."""

    otlp_grpc: str = "http://127.0.0.1:4317"
    otlp_http: str = "http://127.0.0.1:4318"
    prometheus: str = "http://127.0.0.1:9090"
    jaeger: str = "http://127.0.0.1:16686"
    alertmanager: str = "http://127.0.0.1:9093"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (each item has `metric` labels and `value`)."""
        url = f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        body = http_json(url)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def traces(self, service: str) -> list[dict[str, Any]]:
        url = f"{self.jaeger}/api/traces?{urllib.parse.urlencode({'service': service, 'limit': 20})}"
        return list(http_json(url).get("data") or [])


def stack_status() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(STACK), "status", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        pytest.fail(
            f"scripts/stack status --json printed no JSON:\n{done.stdout}{done.stderr}", pytrace=False
        )


@pytest.fixture(scope="module")
def binaries() -> dict[str, str]:
    """Paths of the stack's binaries, built or installed when missing (never skipped)."""
    return dict(json.loads(run_stack("install", "--json").stdout))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The local stack, up for the tests of a module and down after them."""
    run_stack("up")
    yield Stack()
    run_stack("down", timeout=120)
