"""The telemetry pipeline: collector config, Prometheus config, and the local stack end to end.

OTLP from the Python SDK -> collector (collector/otelcol-config.yaml) -> Prometheus (collector/prometheus.yml)
and Jaeger (collector/jaeger-config.yaml), started by `scripts/stack up` on 127.0.0.1.

Nothing here is skipped: a missing go, collector, Prometheus or Jaeger fails the tests (scripts/stack builds
or installs what is missing; when it cannot, the failure says why). A cold first run builds the collector
and Jaeger from source (several minutes each).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

from tests.support.pipeline import (
    ALERTMANAGER_CONFIG,
    COLLECTOR_CONFIG,
    PROMETHEUS_CONFIG,
    ROOT,
    Stack,
    run_stack,
    stack_status,
    wait_for,
)

# --------------------------------------------------------------------------------- configurations


def checked(*command: str) -> str:
    """Run a configuration check; its output, once it has passed."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_collector_validates_config(binaries: dict[str, str]) -> None:
    output = checked(binaries["otelcol"], "validate", "--config", str(COLLECTOR_CONFIG))
    # Deprecated spellings (`otlp`/`otlphttp` exporters, ...) load with a warning: keep the config clean.
    assert "deprecated" not in output.lower(), output


def test_promtool_checks_prometheus_config(binaries: dict[str, str]) -> None:
    checked(binaries["promtool"], "check", "config", str(PROMETHEUS_CONFIG))


def test_amtool_checks_alertmanager_config(binaries: dict[str, str]) -> None:
    checked(binaries["amtool"], "check-config", str(ALERTMANAGER_CONFIG))


# ------------------------------------------------------------------------------------ local stack


def test_stack_is_healthy_on_loopback_only(stack: Stack) -> None:
    status = stack_status()
    assert status["healthy"], json.dumps(status, indent=2)
    names = {c["name"] for c in status["components"]}
    assert names == {"otelcol", "prometheus", "jaeger", "alertmanager"}
    for component in status["components"]:
        assert component["listening"], component
        for address in component["listening"]:
            assert address.startswith("127.0.0.1:"), component


def _send_metric(endpoint: str, service: str, instance: str, value: int) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create(
        {
            "service.name": service,
            "service.namespace": "otel-resilience-tests",
            "service.instance.id": instance,
        }
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=3_600_000
    )
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    try:
        counter = provider.get_meter("tests.test_stack").create_counter(
            "otel_resilience.stack_test.pings",
            unit="{ping}",
            description="pings sent by the stack's e2e test",
        )
        counter.add(value, {"error.type": "none"})
        assert provider.force_flush(timeout_millis=10_000), "the metric export to the collector failed"
    finally:
        provider.shutdown()


def test_metric_reaches_prometheus_with_service_labels(stack: Stack) -> None:
    service = f"stack-test-{uuid.uuid4().hex[:8]}"
    instances = {str(uuid.uuid4()): 3, str(uuid.uuid4()): 5}
    for instance, value in instances.items():
        _send_metric(stack.otlp_grpc, service, instance, value)

    query = f'otel_resilience_stack_test_pings_total{{service_name="{service}"}}'
    result = wait_for(
        f"Prometheus query {query}", lambda: (r := stack.query(query)) and len(r) == len(instances) and r
    )
    by_instance = {item["metric"]["service_instance_id"]: item for item in result}
    assert set(by_instance) == set(instances)
    for instance, value in instances.items():
        labels = by_instance[instance]["metric"]
        assert float(by_instance[instance]["value"][1]) == value
        # Promoted resource attributes, and the job/instance the exporter derives from them (kept by
        # honor_labels: no exported_job/exported_instance).
        assert labels["service_name"] == service
        assert labels["service_namespace"] == "otel-resilience-tests"
        assert labels["job"] == f"otel-resilience-tests/{service}"
        assert labels["instance"] == instance
        assert labels["error_type"] == "none"
        assert "exported_job" not in labels
        assert "exported_instance" not in labels
    # The same series, selected the portable way (what Prometheus's OTLP receiver would produce too).
    by_job = f'otel_resilience_stack_test_pings_total{{job="otel-resilience-tests/{service}"}}'
    assert len(stack.query(by_job)) == len(instances)


def test_span_reaches_jaeger(stack: Stack) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    service = f"stack-test-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=stack.otlp_grpc, insecure=True)))
    try:
        tracer = provider.get_tracer("tests.test_stack")
        with tracer.start_as_current_span("stack-test.operation") as parent:
            parent.set_attribute("test.marker", service)
            with tracer.start_as_current_span("stack-test.attempt"):
                pass
        assert provider.force_flush(timeout_millis=10_000), "the span export to the collector failed"
    finally:
        provider.shutdown()

    traces = wait_for(f"Jaeger traces of service {service}", lambda: stack.traces(service))
    spans = {span["operationName"]: span for span in traces[0]["spans"]}
    assert set(spans) == {"stack-test.operation", "stack-test.attempt"}
    child = spans["stack-test.attempt"]
    assert child["references"][0]["spanID"] == spans["stack-test.operation"]["spanID"]
    tags = {tag["key"]: tag["value"] for tag in spans["stack-test.operation"]["tags"]}
    assert tags["test.marker"] == service


def test_stack_down_leaves_nothing_listening(stack: Stack) -> None:
    """Last test of the module: stops the stack itself (the fixture's own `down` then finds nothing)."""
    before = stack_status()
    pids = [c["pid"] for c in before["components"] if c["pid"]]
    assert len(pids) == 4, before

    began = time.monotonic()
    run_stack("down", timeout=120)
    took = time.monotonic() - began

    after = stack_status()
    for component in after["components"]:
        assert not component["running"], component
        assert not component["listening"], component
    for pid in pids:
        assert not _process_alive(pid), f"pid {pid} still alive after scripts/stack down"
    assert not list((ROOT / ".cache" / "stack").glob("*.pid"))
    for port in (4317, 4318, 8888, 8889, 13133, 9090, 9093, 14317, 14318, 16685, 16686, 13134):
        assert not _listening(port), f"something still listens on 127.0.0.1:{port} after scripts/stack down"
    assert took < 60, f"scripts/stack down took {took:.1f} s"


def _process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # an unreaped zombie has exited


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
