"""The kit's pieces shared by breaker instrumentations, each on its own: no instrumented library involved."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import pytest
from opentelemetry import trace

from otel_resilience._kit.breakers import notified_transitions
from otel_resilience._kit.instances import InstanceRegistry, registering
from otel_resilience._kit.recording import run_active
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
