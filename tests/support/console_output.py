"""Run a program under ``opentelemetry-instrument`` with the console exporters and parse what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import ROOT


@dataclass
class ConsoleRun:
    stdout_lines: list[str] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stderr: str = ""

    def metric_values(self, name: str, *keys: str) -> dict[tuple[Any, ...], float]:
        """Values (or histogram counts) of the last export, summed by the given attributes; zeros left out
        (the instrumentation reports some series at 0 before they first count)."""
        values: dict[tuple[Any, ...], float] = {}
        for point in self.metrics.get(name, []):
            key = tuple(point["attributes"].get(k) for k in keys)
            values[key] = values.get(key, 0) + point.get("value", point.get("count"))
        return {k: v for k, v in values.items() if v}


def run_instrumented(script: str, *, env: dict[str, str] | None = None) -> ConsoleRun:
    bin_dir = Path(sys.executable).parent
    command = [
        str(bin_dir / "opentelemetry-instrument"),
        "--traces_exporter", "console",
        "--metrics_exporter", "console",
        "--logs_exporter", "none",
        sys.executable, str(ROOT / script),
    ]  # fmt: skip
    full_env = {
        **os.environ,
        "OTEL_SERVICE_NAME": "example",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        command, env={**full_env, **(env or {})}, capture_output=True, text=True, timeout=120, check=True
    )
    return parse(done.stdout, done.stderr)


def parse(stdout: str, stderr: str) -> ConsoleRun:
    run = ConsoleRun(stderr=stderr)
    decoder = json.JSONDecoder()
    position = 0
    while position < len(stdout):
        if stdout[position].isspace():
            position += 1
            continue
        if stdout[position] != "{":
            end = stdout.find("\n", position)
            end = len(stdout) if end < 0 else end
            run.stdout_lines.append(stdout[position:end])
            position = end + 1
            continue
        document, position = decoder.raw_decode(stdout, position)
        if "resource_metrics" in document:
            # One export: each instrumentation scope (library) has its own points of a metric.
            exported: dict[str, list[dict[str, Any]]] = {}
            for resource in document["resource_metrics"]:
                for scope in resource["scope_metrics"]:
                    for metric in scope["metrics"]:
                        exported.setdefault(metric["name"], []).extend(metric["data"]["data_points"])
            run.metrics.update(exported)
        else:
            run.spans.append(document)
    return run
