"""The demo run under ``opentelemetry-instrument`` against the local stack, and its totals read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_resilience import contract as c
from tests.support.pipeline import Stack

NAMESPACE = "otel-resilience-e2e"
BIN = Path(sys.executable).parent
LABEL_TO_ATTRIBUTE = {c.prometheus_label(a): a for s in c.METRICS for a in s.attributes}


@dataclass(frozen=True)
class DemoRun:
    service: str
    instance: str
    truth: dict[str, Any]
    wall_seconds: float
    ended_at: float
    """Unix time the demo process exited."""


def run_demo(
    stack: Stack, tmp: Path, service: str, instance: str, *extra: str, duration: float = 20
) -> DemoRun:
    truth_file = tmp / f"truth-{instance}.json"
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": service,
        "OTEL_RESOURCE_ATTRIBUTES": f"service.namespace={NAMESPACE},service.instance.id={instance}",
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_grpc,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "none",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    command = [
        str(BIN / "opentelemetry-instrument"),
        str(BIN / "otel-resilience"),
        "demo", "--duration", str(duration), "--seed", "7", "--truth", str(truth_file), *extra,
    ]  # fmt: skip
    began = time.monotonic()
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration + 120, check=False
    )
    wall = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr
    return DemoRun(service, instance, json.loads(truth_file.read_text()), wall, time.time())


def prometheus_points(stack: Stack, selector: str) -> list[tuple[str, dict[str, str], float]]:
    """(OTel metric, attributes, value or histogram count) of every contract series matching ``selector``."""
    points = []
    for spec in c.METRICS:
        series = spec.prometheus_name + ("_count" if spec.kind is c.InstrumentKind.HISTOGRAM else "")
        for item in stack.query(f"{series}{{{selector}}}"):
            attributes = {LABEL_TO_ATTRIBUTE.get(k, k): v for k, v in item["metric"].items()}
            points.append((spec.name, attributes, float(item["value"][1])))
    return points


def totals_table(rows: list[tuple[Any, float, float]]) -> str:
    lines = [f"{'metric':<45}{'attributes':<75}{'truth':>8}{'prometheus':>12}"]
    for (metric, attributes), expected, observed in rows:
        labels = ",".join(v for _, v in attributes)
        mark = "" if expected == observed else "   <-- differs"
        lines.append(f"{metric:<45}{labels:<75}{expected:>8g}{observed:>12g}{mark}")
    return "\n".join(lines)
