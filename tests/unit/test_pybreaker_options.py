"""Options, bad configuration and faults in our own telemetry path."""

from __future__ import annotations

import logging
from typing import Any

import pybreaker
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_resilience import contract as c
from otel_resilience._kit.instruments import active_recorder
from otel_resilience.pybreaker import BreakerCallInfo, PyBreakerInstrumentor
from tests.support.breaker_scenario import UNINSTRUMENTED, Boom, exercise
from tests.support.faulty import RaisingInstrument, RaisingProcessor, faulty_hook
from tests.support.telemetry import Telemetry, options_fixture

instrument = options_fixture(PyBreakerInstrumentor)


def test_breaker_scenario_uninstrumented() -> None:
    assert exercise(pybreaker.CircuitBreaker(fail_max=2)) == UNINSTRUMENTED


def test_breaker_metrics_only(instrument: Any) -> None:
    telemetry = instrument(metrics_only=True)
    assert exercise(pybreaker.CircuitBreaker(name="db", fail_max=2)) == UNINSTRUMENTED
    assert telemetry.spans() == ()
    assert sum(telemetry.values(c.BREAKER_CALLS.name, c.OUTCOME).values()) == 4


def test_span_hook_adds_attributes(instrument: Any) -> None:
    seen: list[BreakerCallInfo] = []

    def hook(span: Any, info: BreakerCallInfo) -> None:
        seen.append(info)
        span.set_attribute("app.tenant", "acme")

    telemetry = instrument(span_hook=hook)
    breaker = pybreaker.CircuitBreaker(name="db", fail_max=2)
    exercise(breaker)
    assert [(i.name, i.state, i.outcome, type(i.error)) for i in seen] == [
        ("db", "closed", "success", type(None)),
        ("db", "closed", "failure", Boom),
        ("db", "closed", "failure", Boom),
        ("db", "open", "rejected", pybreaker.CircuitBreakerError),
    ]
    assert all(i.breaker is breaker for i in seen)
    assert all(s.attributes["app.tenant"] == "acme" for s in telemetry.spans() if s.name == "db")


def test_breaker_names_are_capped(instrument: Any, caplog: pytest.LogCaptureFixture) -> None:
    telemetry = instrument(max_names=2)
    breakers = [pybreaker.CircuitBreaker(name=f"b{i}") for i in range(4)]
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        for breaker in breakers:
            breaker.call(lambda: None)
    assert set(telemetry.values(c.BREAKER_CALLS.name, c.BREAKER_NAME)) == {
        ("b0",),
        ("b1",),
        (c.OVERFLOW_NAME,),
    }
    assert telemetry.values(c.BREAKER_CALLS.name, c.BREAKER_NAME)[(c.OVERFLOW_NAME,)] == 2
    assert len([r for r in caplog.records if "distinct circuit breaker names" in r.getMessage()]) == 1


class RaisingExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        raise RuntimeError("exporter")


@pytest.mark.faults
@pytest.mark.parametrize("fault", ["processor", "exporter", "instrument", "hook", "observable"])
def test_faults_never_reach_a_breaker_call(
    instrument: Any, telemetry: Telemetry, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    if fault == "processor":
        telemetry.tracer_provider.add_span_processor(RaisingProcessor())
    if fault == "exporter":
        telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(RaisingExporter()))
    instrument(span_hook=faulty_hook if fault == "hook" else None)
    recorder: Any = active_recorder("otel_resilience.pybreaker")
    if fault == "instrument":
        recorder.calls = recorder.duration = recorder.transitions = RaisingInstrument()
    if fault == "observable":
        recorder.report_name = lambda breaker: 1 / 0
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        for _ in range(3):
            assert exercise(pybreaker.CircuitBreaker(name="db", fail_max=2)) == UNINSTRUMENTED
            telemetry.reader.collect()
    ours = [r for r in caplog.records if r.getMessage().startswith("otel-resilience: telemetry failed")]
    if fault != "exporter":  # the SDK span processor reports exporter failures itself
        assert ours, "a fault in our own path is reported"
        assert len(ours) == len({r.getMessage() for r in ours}), "each kind of fault is logged once"


NO_SDK_THEN_SDK = """
import collections, json, time, pybreaker
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otel_resilience.pybreaker import PyBreakerInstrumentor

def fail(exc):
    raise exc

PyBreakerInstrumentor().instrument()
breaker = pybreaker.CircuitBreaker(name="late", exclude=[KeyError])
for _ in range(100):
    breaker.call(lambda: None)  # no SDK yet: nothing can record, nothing is done
unwrapped = [hasattr(pybreaker.CircuitBreakerState.before_call, "__wrapped__"),
             hasattr(pybreaker.CircuitBreaker.is_system_error, "__wrapped__")]
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
time.sleep(1.1)
for _ in range(7):
    breaker.call(lambda: None)
for exc in (ValueError(), ValueError(), KeyError()):
    try:
        breaker.call(fail, exc)
    except Exception:
        pass
outcomes = collections.Counter()
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            if m.name == "resilience.circuit_breaker.calls":
                for p in m.data.data_points:
                    outcomes[p.attributes["resilience.outcome"]] += p.value
print(json.dumps({"wrapped before an SDK": unwrapped, "outcomes": outcomes}))
"""


def test_without_an_sdk_nothing_is_recorded_until_one_is_set() -> None:
    """Until an SDK is set, the patches only recorded calls need stay off; once set, calls are recorded
    with pybreaker's own verdict on each exception."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", NO_SDK_THEN_SDK], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {
        "wrapped before an SDK": [False, False],
        "outcomes": {"success": 7, "failure": 2, "ignored": 1, "rejected": 0},
    }, done.stderr


COUNTS_REPORTED = """
import json
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
reader = InMemoryMetricReader()
{setup}
successes = sum(
    point.value
    for rm in reader.get_metrics_data().resource_metrics
    for sm in rm.scope_metrics
    for metric in sm.metrics
    if metric.name == "resilience.circuit_breaker.calls"
    for point in metric.data.data_points
    if point.attributes["resilience.outcome"] == "success"
)
print(json.dumps(successes))
"""
CYCLES = {
    "proxy meters first": """
import time, pybreaker
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from otel_resilience.pybreaker import PyBreakerInstrumentor

instrumentor = PyBreakerInstrumentor()
instrumentor.instrument()  # no SDK yet: the API hands out a proxy meter
instrumentor.uninstrument()
instrumentor.instrument()  # a second proxy meter, of the same scope
breaker = pybreaker.CircuitBreaker(name="cycled")
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
time.sleep(1.1)  # the SDK gate looks at the providers again
for _ in range(3):
    breaker.call(lambda: None)
instrumentor.uninstrument()
instrumentor.instrument()  # now the SDK's meter
for _ in range(4):
    breaker.call(lambda: None)
""",
    "the SDK meter first": """
import pybreaker
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from otel_resilience.pybreaker import PyBreakerInstrumentor

provider = MeterProvider(metric_readers=[reader])
instrumentor = PyBreakerInstrumentor()
breaker = pybreaker.CircuitBreaker(name="cycled")
instrumentor.instrument(meter_provider=provider)  # the SDK meter's counter comes first
breaker.call(lambda: None)
instrumentor.uninstrument()
instrumentor.instrument()  # no SDK set globally yet: a proxy meter
metrics.set_meter_provider(provider)  # ... which now stands for the same SDK meter
for _ in range(2):
    breaker.call(lambda: None)
instrumentor.uninstrument()
instrumentor.instrument(meter_provider=provider)
for _ in range(4):
    breaker.call(lambda: None)
""",
}


@pytest.mark.parametrize("cycles", list(CYCLES))
def test_counts_are_reported_after_instrumenting_again_before_and_after_an_sdk_is_set(cycles: str) -> None:
    """Before an SDK is set, each ``instrument()`` gets a new proxy meter, and the SDK keeps the first
    observable counter of a name: every call counted after such cycles is still reported (7 calls)."""
    import json
    import subprocess
    import sys

    script = COUNTS_REPORTED.format(setup=CYCLES[cycles])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == 7, done.stderr


def test_exception_messages_can_be_kept_out_of_spans(instrument: Any) -> None:
    telemetry = instrument(exception_messages=False)
    breaker = pybreaker.CircuitBreaker(name="db", fail_max=2)

    def leak(email: str) -> None:
        raise Boom(f"no account for {email}")

    with pytest.raises(Boom):
        breaker.call(leak, "alice@example.com")
    (span,) = telemetry.spans()
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("exception", {"exception.type": f"{Boom.__module__}.Boom"})
    ]
    assert "alice" not in str(telemetry.reader.get_metrics_data().to_json())


def test_breaker_metric_attributes_never_carry_arguments_or_messages(instrument: Any) -> None:
    telemetry = instrument()
    breaker = pybreaker.CircuitBreaker(name="db", fail_max=2)
    with pytest.raises(Boom):
        breaker.call(fail_with, "s3cr3t-token")
    assert "s3cr3t" not in telemetry.reader.get_metrics_data().to_json()


def fail_with(message: str) -> None:
    raise Boom(message)
