"""python-statemachine: StateMachine and StateChart, sync and async engines, options, faults, lifecycle."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from opentelemetry import trace
from statemachine import State, StateChart, StateMachine
from statemachine.engines.async_ import AsyncEngine
from statemachine.engines.sync import SyncEngine
from statemachine.event import Event
from statemachine.exceptions import TransitionNotAllowed

from otel_resilience import contract as c
from otel_resilience.statemachine import StateMachineInstrumentor, TriggerInfo
from tests.support.state_machines import assert_metrics_only_calls_no_span_hook, machine_telemetry_broken
from tests.support.telemetry import Telemetry, options_fixture, span_hook_infos

instrument = options_fixture(StateMachineInstrumentor)
TRIGGER_KEYS = (c.STATEMACHINE_TRIGGER, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE)
NOT_ALLOWED = "statemachine.exceptions.TransitionNotAllowed"


class Order(StateMachine):
    new = State(initial=True)
    paid = State()
    shipped = State(final=True)

    pay = new.to(paid)
    ship = paid.to(shipped, cond="ready")

    ready = False
    jam = False

    def on_enter_shipped(self) -> None:
        if self.jam:
            raise RuntimeError("label printer down")


ORDER = f"{__name__}.Order"


class Chart(StateChart):
    a = State(initial=True)
    b = State()

    go = a.to(b)
    back = b.to(a)
    hold = b.to(a, cond="never")

    def never(self) -> bool:
        return False

    def on_enter_b(self) -> None:
        raise ValueError("callback failed")


CHART = f"{__name__}.Chart"


class AsyncOrder(StateMachine):
    new = State(initial=True)
    paid = State()
    done = State(final=True)

    pay = new.to(paid)
    finish = paid.to(done)

    async def on_enter_paid(self) -> None:
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def _collect_machines() -> None:
    gc.collect()


def test_state_machine_outcomes(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    order = Order()
    order.pay()
    with pytest.raises(TransitionNotAllowed):
        order.pay()
    with pytest.raises(TransitionNotAllowed):
        order.ship()  # its guard says no
    order.ready = order.jam = True
    with pytest.raises(RuntimeError, match="label printer") as caught:
        order.ship()
    assert caught.value.__context__ is None
    assert order.current_state_value == "paid"  # a StateMachine rolls back
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, *TRIGGER_KEYS) == {
        ("pay", "new", "transitioned", None): 1,
        ("pay", "paid", "refused", NOT_ALLOWED): 1,
        ("ship", "paid", "blocked", NOT_ALLOWED): 1,
        ("ship", "paid", "failed", "RuntimeError"): 1,
    }
    assert telemetry.values(
        c.STATEMACHINE_TRANSITIONS.name,
        c.STATEMACHINE_NAME,
        c.STATEMACHINE_PREVIOUS_STATE,
        c.STATEMACHINE_STATE,
    ) == {(ORDER, "new", "paid"): 1}
    spans = [s for s in telemetry.spans() if s.attributes[c.STATEMACHINE_NAME] == ORDER]
    assert [s.status.status_code for s in spans] == [
        trace.StatusCode.UNSET,
        trace.StatusCode.ERROR,
        trace.StatusCode.UNSET,
        trace.StatusCode.ERROR,
    ]
    assert spans[0].name == f"{ORDER} pay"


def test_state_chart_ignores_and_turns_errors_into_events(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    chart = Chart()
    chart.send("back")  # not valid in a: silently ignored
    chart.send("go")  # on_enter_b raises: error.execution
    chart.send("hold")  # guarded
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, *TRIGGER_KEYS) == {
        ("back", "a", "refused", None): 1,
        ("go", "a", "failed", "ValueError"): 1,
        ("hold", "b", "blocked", None): 1,
    }
    instances = {
        p.attributes[c.STATEMACHINE_STATE]: p.value
        for p in telemetry.points(c.STATEMACHINE_INSTANCES.name)
        if p.attributes[c.STATEMACHINE_NAME] == CHART
    }
    assert instances == {"a": 0, "b": 1}


def test_async_engine(instrument: Any) -> None:
    telemetry: Telemetry = instrument()

    async def main() -> None:
        order = AsyncOrder()
        await order.activate_initial_state()
        await order.pay()
        with pytest.raises(TransitionNotAllowed):
            await order.pay()
        await order.finish()

    asyncio.run(main())
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_TRIGGER, c.STATEMACHINE_OUTCOME) == {
        ("pay", "transitioned"): 1,
        ("pay", "refused"): 1,
        ("finish", "transitioned"): 1,
    }


def test_callback_spans_are_children(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    tracer = telemetry.tracer_provider.get_tracer("app")

    class Traced(StateMachine):
        a = State(initial=True)
        b = State(final=True)
        go = a.to(b)

        def on_enter_b(self) -> None:
            with tracer.start_as_current_span("work"):
                pass

    Traced().go()
    by_name = {s.name: s for s in telemetry.spans()}
    trigger = by_name[f"{__name__}.test_callback_spans_are_children.<locals>.Traced go"]
    assert by_name["work"].parent.span_id == trigger.context.span_id


def test_machines_before_instrument(instrument: Any) -> None:
    early = Order()
    early.pay()
    telemetry: Telemetry = instrument()
    instances = {
        p.attributes[c.STATEMACHINE_STATE]: p.value
        for p in telemetry.points(c.STATEMACHINE_INSTANCES.name)
        if p.attributes[c.STATEMACHINE_NAME] == ORDER
    }
    assert instances["paid"] >= 1
    early.ready = True
    early.ship()
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_TRIGGER) == {("ship",): 1}


def test_span_hook_and_metrics_only(instrument: Any) -> None:
    assert_metrics_only_calls_no_span_hook(instrument, lambda: Order().pay())


def test_span_hook_receives_the_machine(instrument: Any) -> None:
    infos: list[TriggerInfo] = span_hook_infos(instrument)
    order = Order()
    order.pay()
    (info,) = infos
    assert (info.machine, info.name, info.trigger, info.previous_state, info.state) == (
        order,
        ORDER,
        "pay",
        "new",
        "paid",
    )


@pytest.mark.faults
def test_a_fault_in_telemetry_never_reaches_the_app(instrument: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    instrument()
    with machine_telemetry_broken(monkeypatch):
        order = Order()
        order.pay()
        with pytest.raises(TransitionNotAllowed):
            order.pay()


PATCHED = [
    (StateChart, "__init__"),
    (SyncEngine, "_take_external_event"),
    (AsyncEngine, "_take_external_event"),
    (Event, "put"),
]
