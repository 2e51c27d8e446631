"""The kit's pieces shared by breaker instrumentations, each on its own: no instrumented library involved."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from otel_resilience import contract as c
from otel_resilience._kit.breakers import BreakerCall, BreakerRecorder, notified_transitions, run_trial
from otel_resilience._kit.instances import InstanceRegistry, registering
from otel_resilience._kit.recording import run_active
from otel_resilience._kit.settings import resolve_settings
from otel_resilience._kit.verdicts import Verdicts, judging
from tests.support.telemetry import Telemetry


class Thing:
    pass


def test_registering_names_each_new_object_after_its_creator() -> None:
    registry: InstanceRegistry[Thing] = InstanceRegistry(Thing, ("otel_resilience",))
    observe = registering(registry, "unit")
    thing = Thing()
    observe(thing, (), {}, None)
    assert registry.site(thing).startswith("tests.unit.test_kit_breakers.test_registering")


def test_judging_keeps_each_verdict_until_taken() -> None:
    verdicts = Verdicts()
    observe = judging(verdicts, "unit")
    counted, excluded = ValueError("x"), KeyError("y")
    observe(None, (counted,), {}, True)
    observe(None, (), {"exception": excluded}, False)
    assert verdicts.take(counted) == (counted, True)
    assert verdicts.take(excluded) == (excluded, False)
    assert verdicts.take(counted) is None  # taken once


def test_notified_transitions_report_only_notified_ones_while_the_gate_is_open() -> None:
    reported: list[tuple[Any, ...]] = []
    gate_open = [False]
    observe = notified_transitions(lambda: gate_open[0], lambda *args: reported.append(args))
    observe("breaker", ("open", "closed-state", True), {}, "new")
    gate_open[0] = True
    observe("breaker", ("open",), {}, "first state")  # a breaker's first state: not notified
    observe("breaker", ("open",), {"prev_state": "closed-state", "notify": True}, "new")
    assert reported == [("breaker", "closed-state", "new")]


def test_run_active_holds_the_call_and_the_span_and_finishes_on_error(telemetry: Telemetry) -> None:
    active: ContextVar[str | None] = ContextVar("unit_active", default=None)
    span = telemetry.tracer_provider.get_tracer("unit").start_span("call")
    finished: list[tuple[str, BaseException]] = []

    def inside() -> tuple[str | None, Any]:
        return active.get(), trace.get_current_span()

    assert run_active(active, "call-1", span, lambda c, e: finished.append((c, e)), inside, (), {}) == (
        "call-1",
        span,
    )
    error = RuntimeError("down")

    def failing() -> None:
        raise error

    with pytest.raises(RuntimeError) as caught:
        run_active(active, "call-2", None, lambda c, e: finished.append((c, e)), failing, (), {})
    assert caught.value is error
    assert finished == [("call-2", error)]
    assert active.get() is None
    assert trace.get_current_span() is trace.INVALID_SPAN


class Recorder(BreakerRecorder[str]):
    """A breaker library's telemetry, reduced to what the kit needs."""

    def states(self) -> list[tuple[str, str]]:
        return []

    def failures(self) -> list[tuple[str, int]]:
        return []


def recorder(telemetry: Telemetry, **options: Any) -> Recorder:
    settings = resolve_settings(
        {"tracer_provider": telemetry.tracer_provider, "meter_provider": telemetry.meter_provider, **options}
    )
    return Recorder(settings, "unit", on_open=lambda: None, rejected_error="lib.Rejected")


def test_breaker_recorder_starts_series_at_zero_and_reports_transitions(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    breakers = recorder(telemetry)
    breakers.report("b")
    tracer = telemetry.tracer_provider.get_tracer("unit")
    with caplog.at_level(logging.INFO, logger="otel_resilience"):
        with tracer.start_as_current_span("call"):
            breakers.transition("b", "closed", "open")  # on the current span
        breakers.transition("b", "open", "half_open")  # on a span of its own
    assert trace.get_current_span() is trace.INVALID_SPAN
    zero_calls = {
        (p.attributes[c.BREAKER_STATE], p.attributes[c.OUTCOME], p.attributes.get(c.ERROR_TYPE))
        for p in telemetry.points(c.BREAKER_CALLS.name)
    }
    assert zero_calls == {
        ("closed", "success", None),
        ("half_open", "success", None),
        ("open", "rejected", "lib.Rejected"),
    }
    assert telemetry.values(c.BREAKER_TRANSITIONS.name, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE) == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
    }
    spans = {s.name: [e.name for e in s.events] for s in telemetry.spans()}
    assert spans == {"call": [c.STATE_CHANGE_EVENT], "b state change": [c.STATE_CHANGE_EVENT]}
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "circuit breaker 'b' changed state: closed -> open"),
        (logging.INFO, "circuit breaker 'b' changed state: open -> half_open"),
    ]


def test_a_deferred_call_span_starts_at_the_outcome_with_all_its_attributes(telemetry: Telemetry) -> None:
    """An open breaker's call defers its span: a rejection starts it when recorded, dated at the
    call's start, with every attribute at once, status ERROR and no exception event."""
    breakers = recorder(telemetry)
    call = BreakerCall("b", "open")
    breakers.start_call(call, defer=True)
    assert call.span is None
    began = call.span_start
    breakers.record_call(call, "rejected", "lib.Rejected", lambda: "info", error=RuntimeError("open"))
    (span,) = telemetry.spans()
    assert span.start_time == began
    assert dict(span.attributes or {}) == {
        c.BREAKER_NAME: "b",
        c.BREAKER_STATE: "open",
        c.OUTCOME: "rejected",
        c.ERROR_TYPE: "lib.Rejected",
    }
    assert span.status.status_code is StatusCode.ERROR
    assert span.events == ()


def test_a_half_open_trial_runs_in_the_deferred_span_that_holds_the_transition(telemetry: Telemetry) -> None:
    breakers = recorder(telemetry)
    call = BreakerCall("b", "open")
    breakers.start_call(call, defer=True)
    breakers.transition("b", "open", "half_open", call=call)  # starts the span: the event goes on it
    call.state = "half_open"
    inner = run_trial(breakers, call, trace.get_current_span, (), {})
    assert inner is call.span
    assert run_trial(breakers, call, trace.get_current_span, (), {}) is trace.INVALID_SPAN, (
        "made current once"
    )
    breakers.record_call(call, "success", None, lambda: "info")
    (span,) = telemetry.spans()
    assert [e.name for e in span.events] == [c.STATE_CHANGE_EVENT]
    assert span.attributes[c.BREAKER_STATE] == "half_open"
    assert span.attributes[c.OUTCOME] == "success"
