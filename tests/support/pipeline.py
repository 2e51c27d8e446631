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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from tests.support.redis_server import free_port

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

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query (now, or at the Unix time ``at``); the result (items with `metric` and `value`)."""
        return prometheus_query(self.prometheus, promql, at)

    def traces(self, service: str) -> list[dict[str, Any]]:
        url = f"{self.jaeger}/api/traces?{urllib.parse.urlencode({'service': service, 'limit': 20})}"
        return list(http_json(url).get("data") or [])


def prometheus_query(base_url: str, promql: str, at: float | None = None) -> list[dict[str, Any]]:
    parameters = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
    body = http_json(f"{base_url}/api/v1/query?{urllib.parse.urlencode(parameters)}")
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@contextmanager
def prometheus_with_rules(rules: str, workdir: Path, scrape: str = "127.0.0.1:8889") -> Iterator[str]:
    """A Prometheus of its own on 127.0.0.1 that scrapes the collector every second and evaluates
    ``rules`` every second; yields its base URL and stops it afterwards."""
    binaries = json.loads(run_stack("install", "--json").stdout)
    (workdir / "rules.yml").write_text(rules)
    (workdir / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs: [{job_name: otelcol, honor_labels: true,"
        f" static_configs: [{{targets: ['{scrape}']}}]}}]\n"
    )
    port = free_port()
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binaries["prometheus"],
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            "the test Prometheus to be ready", lambda: urllib.request.urlopen(f"{url}/-/ready").status == 200
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


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
