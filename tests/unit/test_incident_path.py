"""What the cheap incident path keeps: rejections, failures and sampled-out calls as a user reads them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pybreaker
import pytest
import tenacity
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, StatusCode, TraceFlags

from otel_resilience import contract as c
from otel_resilience._kit.exceptions import record_exception
from otel_resilience.tenacity import TenacityInstrumentor
from tests.support.telemetry import Telemetry


class Down(Exception):
    pass


def fail() -> None:
    raise Down("the dependency is down")


def call_spans(telemetry: Telemetry, name: str) -> list[ReadableSpan]:
    return [s for s in telemetry.spans() if s.name == name]


def test_a_rejection_is_an_error_span_without_exception_event_or_exemplar(
    breaker_telemetry: Telemetry,
) -> None:
    breaker = pybreaker.CircuitBreaker(name="db", reset_timeout=60)
    assert breaker.call(lambda: "ok") == "ok"
    breaker.open()
    app = breaker_telemetry.tracer_provider.get_tracer("app")
    with app.start_as_current_span("request"), pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(lambda: "never runs")  # in the app's request: that span is not its exemplar either

    success, rejected = call_spans(breaker_telemetry, "db")
    assert rejected.status.status_code is StatusCode.ERROR
    assert dict(rejected.attributes or {}) == {
        c.BREAKER_NAME: "db",
        c.BREAKER_STATE: "open",
        c.OUTCOME: "rejected",
        c.ERROR_TYPE: "pybreaker.CircuitBreakerError",
    }
    assert rejected.events == (), "nothing ran: status, outcome and error.type say it"
    exemplars = {
        point.attributes[c.OUTCOME]: [e.span_id for e in point.exemplars]
        for point in breaker_telemetry.points(c.BREAKER_CALL_DURATION.name)
    }
    assert exemplars == {"success": [success.context.span_id], "rejected": []}


def test_a_breaker_that_half_opens_runs_the_function_in_the_calls_span(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db", reset_timeout=0.01)
    breaker.open()
    time.sleep(0.02)
    inside: list[int] = []

    def function() -> Span:
        inside.append(time.time_ns())
        return trace.get_current_span()

    entered = time.time_ns()
    seen = breaker.call(function)

    (probe,) = call_spans(breaker_telemetry, "db")
    assert seen.get_span_context().span_id == probe.context.span_id
    assert entered <= probe.start_time <= inside[0]
    assert probe.attributes[c.BREAKER_STATE] == "half_open"
    assert [e.attributes[c.BREAKER_STATE] for e in probe.events] == ["half_open", "closed"]


@pytest.mark.parametrize(("shared_state", "reported"), [("closed", "closed"), ("half-open", "half_open")])
def test_a_call_through_a_breaker_another_process_moved_on_runs_in_the_calls_span(
    breaker_telemetry: Telemetry, shared_state: str, reported: str
) -> None:
    """This process still holds the breaker as open: the call's span is left for later, and the
    function, which runs because the shared state says otherwise, still runs in it."""
    breaker = pybreaker.CircuitBreaker(name="db", reset_timeout=60)
    breaker.open()
    breaker._state_storage.state = shared_state  # what another process sharing the storage did
    app = breaker_telemetry.tracer_provider.get_tracer("app")
    with app.start_as_current_span("request"):
        seen = breaker.call(trace.get_current_span)
        assert trace.get_current_span().get_span_context().span_id != seen.get_span_context().span_id

    (probe,) = call_spans(breaker_telemetry, "db")
    assert seen.get_span_context().span_id == probe.context.span_id
    assert probe.attributes[c.BREAKER_STATE] == reported
    assert probe.attributes[c.OUTCOME] == "success"


def test_a_failure_event_locates_the_failure_and_repeats_it_exactly(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db", fail_max=100)
    for _ in range(3):
        with pytest.raises(Down):
            breaker.call(fail)

    stacks = []
    for span in call_spans(breaker_telemetry, "db"):
        (event,) = span.events
        assert event.attributes["exception.type"] == f"{__name__}.Down"
        assert event.attributes["exception.message"] == "the dependency is down"
        stacks.append(event.attributes["exception.stacktrace"])
    assert stacks[0] == stacks[1] == stacks[2], "the same place, formatted once, reads the same"
    last_frame, last_line = stacks[0].splitlines()[-2:]
    assert last_frame == f'  File "{__file__}", line {fail.__code__.co_firstlineno + 1}, in fail'
    assert last_line == f"{__name__}.Down: the dependency is down"


def test_the_same_place_with_another_message_keeps_its_own_message() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for message in ("first", "second"):
        try:
            raise Down(message)
        except Down as exc:
            span = provider.get_tracer("test").start_span("s")
            record_exception(span, exc, messages=True)
            span.end()
    spans = exporter.get_finished_spans()
    first, second = (str(s.events[0].attributes["exception.stacktrace"]) for s in spans)
    assert first.splitlines()[:-1] == second.splitlines()[:-1]
    assert (first.splitlines()[-1], second.splitlines()[-1]) == (
        f"{__name__}.Down: first",
        f"{__name__}.Down: second",
    )


def sampled_out_parent() -> NonRecordingSpan:
    """A request whose trace the upstream service did not sample (traceparent flags 00)."""
    return NonRecordingSpan(
        SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=True, trace_flags=TraceFlags(0))
    )


def test_under_a_sampled_out_parent_a_call_starts_no_span_and_stays_in_its_trace(
    breaker_telemetry: Telemetry,
) -> None:
    breaker = pybreaker.CircuitBreaker(name="db")
    parent = sampled_out_parent()
    with trace.use_span(parent):
        seen = breaker.call(trace.get_current_span)
    assert seen is parent, "what the call runs stays in the parent's (sampled-out) trace"
    assert call_spans(breaker_telemetry, "db") == []
    assert breaker_telemetry.values(c.BREAKER_CALLS.name, c.OUTCOME) == {("success",): 1}, (
        "metrics count every call, sampled or not"
    )


@pytest.fixture
def sampled_out_retries() -> Iterator[InMemorySpanExporter]:
    """tenacity instrumented with a tracer provider that samples nothing (1 % of 0)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = TenacityInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield exporter
    instrumentor.uninstrument()


def test_attempts_of_a_sampled_out_operation_run_in_its_trace(
    sampled_out_retries: InMemorySpanExporter,
) -> None:
    seen: list[SpanContext] = []

    @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())
    def flaky() -> str:
        seen.append(trace.get_current_span().get_span_context())
        if len(seen) < 3:
            raise Down("again")
        return "ok"

    assert flaky() == "ok"
    assert len(seen) == 3
    assert len({(s.trace_id, s.span_id) for s in seen}) == 1, "every attempt runs in the operation's span"
    # The app's spans in an attempt join the sampled-out trace instead of starting traces of their own.
    assert seen[0].is_valid
    assert not seen[0].trace_flags.sampled
    assert sampled_out_retries.get_finished_spans() == ()
