"""transitions: every outcome on every machine flavour, options, faults and lifecycle."""

from __future__ import annotations

import asyncio
import enum
import gc
from typing import Any

import pytest
from opentelemetry import trace
from transitions import Machine, MachineError
from transitions.core import Event
from transitions.extensions import HierarchicalMachine, LockedMachine
from transitions.extensions.asyncio import AsyncEvent, AsyncMachine, HierarchicalAsyncMachine

from otel_resilience import contract as c
from otel_resilience.transitions import TransitionsInstrumentor, TriggerInfo
from tests.support.state_machines import assert_metrics_only_calls_no_span_hook, machine_telemetry_broken
from tests.support.telemetry import Telemetry, options_fixture, span_hook_infos

instrument = options_fixture(TransitionsInstrumentor)
TRIGGER_KEYS = (
    c.STATEMACHINE_NAME,
    c.STATEMACHINE_TRIGGER,
    c.STATEMACHINE_PREVIOUS_STATE,
    c.STATEMACHINE_OUTCOME,
    c.ERROR_TYPE,
)
MACHINE_ERROR = "transitions.core.MachineError"


class Order:
    def __init__(self) -> None:
        self.fail_on_ship = False

    def on_enter_shipped(self, *_: Any) -> None:
        if self.fail_on_ship:
            raise RuntimeError("label printer down")


ORDER = f"{__name__}.Order"
STATES = ["new", "paid", "shipped"]
TRANSITIONS = [
    {"trigger": "pay", "source": "new", "dest": "paid"},
    {"trigger": "ship", "source": "paid", "dest": "shipped"},
    {"trigger": "hold", "source": "paid", "dest": "shipped", "conditions": "never"},
    {"trigger": "touch", "source": "paid", "dest": None},
]


def never(*_: Any) -> bool:
    return False


def order_machine(cls: type = Machine, **options: Any) -> tuple[Order, Any]:
    order = Order()
    order.never = never  # type: ignore[attr-defined]
    machine = cls(order, states=STATES, transitions=TRANSITIONS, initial="new", **options)
    return order, machine


@pytest.fixture
def telemetry_on(instrument: Any) -> Telemetry:
    return instrument()  # type: ignore[no-any-return]


def test_every_outcome_is_counted_with_its_state_and_error(telemetry_on: Telemetry) -> None:
    order, _ = order_machine()
    assert order.pay() is True
    with pytest.raises(MachineError):
        order.pay()
    assert order.hold() is False
    assert order.touch() is True
    order.fail_on_ship = True
    with pytest.raises(RuntimeError, match="label printer"):
        order.ship()
    assert order.state == "shipped"  # as transitions does: the enter callback ran after the change

    assert telemetry_on.values(c.STATEMACHINE_TRIGGERS.name, *TRIGGER_KEYS) == {
        (ORDER, "pay", "new", "transitioned", None): 1,
        (ORDER, "pay", "paid", "refused", MACHINE_ERROR): 1,
        (ORDER, "hold", "paid", "blocked", None): 1,
        (ORDER, "touch", "paid", "transitioned", None): 1,
        (ORDER, "ship", "paid", "failed", "RuntimeError"): 1,
    }
    assert telemetry_on.values(
        c.STATEMACHINE_TRANSITIONS.name,
        c.STATEMACHINE_PREVIOUS_STATE,
        c.STATEMACHINE_STATE,
        c.STATEMACHINE_TRIGGER,
    ) == {("new", "paid", "pay"): 1, ("paid", "paid", "touch"): 1, ("paid", "shipped", "ship"): 1}
    assert telemetry_on.values(c.STATEMACHINE_TRIGGER_DURATION.name, c.STATEMACHINE_OUTCOME) == {
        ("transitioned",): 2,
        ("refused",): 1,
        ("blocked",): 1,
        ("failed",): 1,
    }
    spans = {
        (s.attributes[c.STATEMACHINE_TRIGGER], s.attributes[c.STATEMACHINE_OUTCOME]): s
        for s in telemetry_on.spans()
    }
    assert spans["pay", "refused"].status.status_code is trace.StatusCode.ERROR
    assert spans["hold", "blocked"].status.status_code is trace.StatusCode.UNSET
    assert spans["ship", "failed"].status.status_code is trace.StatusCode.ERROR
    assert spans["ship", "failed"].attributes[c.STATEMACHINE_STATE] == "shipped"
    assert spans["pay", "transitioned"].name == f"{ORDER} pay"
    assert spans["pay", "transitioned"].kind is trace.SpanKind.INTERNAL


def test_the_exception_is_the_callbacks_own(telemetry_on: Telemetry) -> None:
    order, _ = order_machine()
    order.pay()
    order.fail_on_ship = True
    with pytest.raises(RuntimeError) as caught:
        order.ship()
    assert caught.value.__context__ is None
    assert caught.traceback[-1].name == "on_enter_shipped"


def test_on_exception_swallows_and_the_failure_is_still_counted(telemetry_on: Telemetry) -> None:
    seen: list[BaseException] = []
    order, _ = order_machine(on_exception=lambda event: seen.append(event.error), send_event=True)
    order.pay()
    order.fail_on_ship = True
    assert order.ship() is False
    assert len(seen) == 1
    assert telemetry_on.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE) == {
        ("transitioned", None): 1,
        ("failed", "RuntimeError"): 1,
    }


def test_ignored_invalid_triggers_are_refused_without_an_error(telemetry_on: Telemetry) -> None:
    order, _ = order_machine(ignore_invalid_triggers=True)
    assert order.ship() is False
    assert telemetry_on.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE) == {
        ("refused", None): 1
    }


def test_named_machine_and_callback_spans_are_children(telemetry_on: Telemetry) -> None:
    tracer = telemetry_on.tracer_provider.get_tracer("app")

    class Traced:
        def on_enter_paid(self) -> None:
            with tracer.start_as_current_span("charge card"):
                pass

    model = Traced()
    Machine(model, states=STATES, transitions=TRANSITIONS, initial="new", name="orders")
    model.pay()  # type: ignore[attr-defined]
    by_name = {s.name: s for s in telemetry_on.spans()}
    assert by_name["charge card"].parent.span_id == by_name["orders pay"].context.span_id


def test_queued_machine_counts_each_event_when_it_runs(telemetry_on: Telemetry) -> None:
    class Chain:
        def on_enter_paid(self) -> None:
            assert self.ship() is True  # type: ignore[attr-defined] # queued: runs after pay
            assert self.state == "paid"  # type: ignore[attr-defined]

    model = Chain()
    Machine(model, states=STATES, transitions=TRANSITIONS[:2], initial="new", queued=True)
    model.pay()  # type: ignore[attr-defined]
    assert model.state == "shipped"  # type: ignore[attr-defined]
    assert telemetry_on.values(
        c.STATEMACHINE_TRANSITIONS.name, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_STATE
    ) == {
        ("new", "paid"): 1,
        ("paid", "shipped"): 1,
    }


class Phase(enum.Enum):
    ONE = 1
    TWO = 2


def test_enum_states_and_models_of_one_machine(telemetry_on: Telemetry) -> None:
    machine = Machine(
        model=None,
        states=Phase,
        initial=Phase.ONE,
        transitions=[["next", Phase.ONE, Phase.TWO]],
        name="phases",
    )
    first, second = Order(), Order()
    machine.add_model([first, second])
    first.next()  # type: ignore[attr-defined]
    assert telemetry_on.values(
        c.STATEMACHINE_TRANSITIONS.name, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_STATE
    ) == {("ONE", "TWO"): 1}
    assert _all_values(telemetry_on, c.STATEMACHINE_INSTANCES.name, "phases") == {"ONE": 1, "TWO": 1}


def test_hierarchical_and_parallel_states(telemetry_on: Telemetry) -> None:
    states = ["A", {"name": "B", "children": ["1", "2"]}, {"name": "P", "parallel": ["x", "y"]}]
    machine = HierarchicalMachine(
        states=states,
        transitions=[["go", "A", "B_1"], ["next", "B_1", "B_2"], ["split", "B_2", "P"]],
        initial="A",
        name="nested",
    )
    machine.go()
    machine.next()
    with pytest.raises(MachineError):
        machine.go()
    machine.split()
    assert telemetry_on.values(
        c.STATEMACHINE_TRIGGERS.name,
        c.STATEMACHINE_TRIGGER,
        c.STATEMACHINE_PREVIOUS_STATE,
        c.STATEMACHINE_OUTCOME,
    ) == {
        ("go", "A", "transitioned"): 1,
        ("next", "B_1", "transitioned"): 1,
        ("go", "B_2", "refused"): 1,
        ("split", "B_2", "transitioned"): 1,
    }
    assert (
        telemetry_on.values(c.STATEMACHINE_TRANSITIONS.name, c.STATEMACHINE_STATE, c.STATEMACHINE_TRIGGER)[
            ("P_x,P_y", "split")
        ]
        == 1
    )
    assert _all_values(telemetry_on, c.STATEMACHINE_INSTANCES.name, "nested") == {
        "A": 0,
        "B": 0,
        "B_1": 0,
        "B_2": 0,
        "P": 0,
        "P_x": 1,
        "P_y": 1,
    }


def _all_values(telemetry: Telemetry, metric: str, name: str) -> dict[str, int]:
    """Every state's value (zeros included) of one machine name."""
    return {
        p.attributes[c.STATEMACHINE_STATE]: p.value
        for p in telemetry.points(metric)
        if p.attributes[c.STATEMACHINE_NAME] == name
    }


def test_locked_machine(telemetry_on: Telemetry) -> None:
    order, _ = order_machine(LockedMachine)
    order.pay()
    assert telemetry_on.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_OUTCOME) == {("transitioned",): 1}


def test_async_machines_and_a_superseded_transition(telemetry_on: Telemetry) -> None:
    started = asyncio.Event()

    class Slow:
        async def on_enter_paid(self) -> None:
            started.set()
            await asyncio.sleep(10)

    async def main() -> None:
        model = Slow()
        AsyncMachine(
            model, states=STATES, transitions=[*TRANSITIONS[:2], ["cancel", "paid", "new"]], initial="new"
        )
        paying = asyncio.ensure_future(model.pay())  # type: ignore[attr-defined]
        await started.wait()
        assert await model.cancel() is True  # type: ignore[attr-defined]
        assert await paying is False
        nested = HierarchicalAsyncMachine(
            states=["A", "B"], transitions=[["go", "A", "B"]], initial="A", name="h"
        )
        assert await nested.go() is True
        with pytest.raises(MachineError):
            await nested.go()

    asyncio.run(main())
    assert telemetry_on.values(
        c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_TRIGGER, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE
    ) == {
        ("pay", "cancelled", "asyncio.exceptions.CancelledError"): 1,
        ("cancel", "transitioned", None): 1,
        ("go", "transitioned", None): 1,
        ("go", "refused", MACHINE_ERROR): 1,
    }


def test_machines_made_before_instrument_and_collected_ones(instrument: Any) -> None:
    before, _ = order_machine(name="lifecycle")
    telemetry = instrument()
    before.pay()
    after, after_machine = order_machine(name="lifecycle")
    instances = c.STATEMACHINE_INSTANCES.name
    assert _all_values(telemetry, instances, "lifecycle") == {"new": 1, "paid": 1, "shipped": 0}
    del after, after_machine
    gc.collect()
    assert _all_values(telemetry, instances, "lifecycle") == {"new": 0, "paid": 1, "shipped": 0}
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_OUTCOME) == {("transitioned",): 1}


def test_metrics_only_and_span_hook(instrument: Any) -> None:
    def pay() -> None:
        order, _ = order_machine()  # made once instrumented, as the other tests' machines
        order.pay()

    assert_metrics_only_calls_no_span_hook(instrument, pay)


def test_span_hook_receives_the_trigger(instrument: Any) -> None:
    infos: list[TriggerInfo] = span_hook_infos(instrument)
    order, machine = order_machine()
    order.pay()
    (info,) = infos
    assert (info.machine, info.model, info.name, info.trigger) == (machine, order, ORDER, "pay")
    assert (info.previous_state, info.state, info.outcome, info.error) == (
        "new",
        "paid",
        "transitioned",
        None,
    )


def test_name_cap(instrument: Any) -> None:
    telemetry = instrument(max_names=1)
    for name in ("a", "b"):
        order, _ = order_machine(name=name)
        order.pay()
    assert set(telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_NAME)) == {("a",), ("_OTHER",)}


@pytest.mark.faults
def test_a_fault_in_telemetry_never_reaches_the_app(
    telemetry_on: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    with machine_telemetry_broken(monkeypatch):
        order, _ = order_machine()
        assert order.pay() is True
        order.fail_on_ship = True
        with pytest.raises(RuntimeError):
            order.ship()


PATCHED = [
    (Machine, "__init__"),
    (Event, "_trigger"),
    (AsyncEvent, "_trigger"),
    (HierarchicalMachine, "_trigger_event"),
    (HierarchicalAsyncMachine, "_trigger_event"),
]


def _originals() -> list[Any]:
    return [vars(cls)[attribute] for cls, attribute in PATCHED]


@pytest.fixture(autouse=True)
def _collect_machines() -> None:
    """Machines of earlier tests would show in the instance census until collected."""
    gc.collect()
