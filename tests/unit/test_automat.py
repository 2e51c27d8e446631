"""automat: MethodicalMachine and TypeMachine, every outcome, re-entry, options, faults and lifecycle."""

from __future__ import annotations

import gc
from typing import Any, Protocol

import pytest
from automat import MethodicalMachine, NoTransition, TypeMachineBuilder
from automat._core import Transitioner
from opentelemetry import trace

from otel_resilience import contract as c
from otel_resilience.automat import AutomatInstrumentor, TriggerInfo
from tests.support.door import DOOR, Door
from tests.support.state_machines import assert_metrics_only_calls_no_span_hook, machine_telemetry_broken
from tests.support.telemetry import Telemetry, options_fixture, span_hook_infos

instrument = options_fixture(AutomatInstrumentor)
TRIGGER_KEYS = (c.STATEMACHINE_TRIGGER, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE)
NO_TRANSITION = "automat._core.NoTransition"


class Light(Protocol):
    def toggle(self) -> None:
        "toggle"

    def poke(self) -> None:
        "poke"


class Core:
    def __init__(self) -> None:
        self.light: Light | None = None
        self.log: list[str] = []


def _light_machine() -> Any:
    builder = TypeMachineBuilder(Light, Core)
    off = builder.state("off")
    on = builder.state("on")

    @off.upon(Light.toggle).to(on)
    def turn_on(light: Light, core: Core) -> None:
        core.log.append("on")
        light.poke()  # re-entrant: postponed until this input is done

    @on.upon(Light.toggle).to(off)
    def turn_off(light: Light, core: Core) -> None:
        core.log.append("off")

    @on.upon(Light.poke).loop()
    def poked(light: Light, core: Core) -> None:
        core.log.append("poked")

    return builder.build()


LightMachine = _light_machine()
LIGHT = f"{__name__}.Light"


@pytest.fixture(autouse=True)
def _collect_machines() -> None:
    gc.collect()


def test_methodical_outcomes(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    door = Door()
    assert door.open() == ["creak", "slam"]
    with pytest.raises(NoTransition):
        door.open()
    assert door.close() == []
    door.jammed = True
    with pytest.raises(RuntimeError, match="jammed") as caught:
        door.open()
    assert caught.value.__context__ is None
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, *TRIGGER_KEYS) == {
        ("open", "closed", "transitioned", None): 1,
        ("open", "opened", "refused", NO_TRANSITION): 1,
        ("close", "opened", "transitioned", None): 1,
        ("open", "closed", "failed", "RuntimeError"): 1,
    }
    assert telemetry.values(
        c.STATEMACHINE_TRANSITIONS.name,
        c.STATEMACHINE_NAME,
        c.STATEMACHINE_PREVIOUS_STATE,
        c.STATEMACHINE_STATE,
    ) == {(DOOR, "closed", "opened"): 2, (DOOR, "opened", "closed"): 1}
    spans = [s for s in telemetry.spans() if s.attributes[c.STATEMACHINE_NAME] == DOOR]
    assert [s.name for s in spans] == [f"{DOOR} open", f"{DOOR} open", f"{DOOR} close", f"{DOOR} open"]
    assert [s.status.status_code for s in spans] == [
        trace.StatusCode.UNSET,
        trace.StatusCode.ERROR,
        trace.StatusCode.UNSET,
        trace.StatusCode.ERROR,
    ]
    assert spans[-1].attributes[c.STATEMACHINE_STATE] == "opened"  # automat moved before the output raised
    instances = {
        p.attributes[c.STATEMACHINE_STATE]: p.value
        for p in telemetry.points(c.STATEMACHINE_INSTANCES.name)
        if p.attributes[c.STATEMACHINE_NAME] == DOOR
    }
    assert instances == {"closed": 0, "opened": 1}


class Bell:
    _machine = MethodicalMachine()
    tracer: Any = None

    @_machine.state(initial=True)
    def quiet(self) -> None:
        "quiet"

    @_machine.input()
    def ring(self) -> None:
        "ring"

    @_machine.output()
    def _sound(self) -> None:
        with self.tracer.start_as_current_span("ding"):
            pass

    quiet.upon(ring, enter=quiet, outputs=[_sound])


def test_outputs_run_inside_the_trigger_span(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    bell = Bell()
    bell.tracer = telemetry.tracer_provider.get_tracer("app")
    bell.ring()
    by_name = {s.name: s for s in telemetry.spans()}
    trigger = by_name[f"{__name__}.Bell ring"]
    assert by_name["ding"].parent.span_id == trigger.context.span_id
    assert trigger.attributes[c.STATEMACHINE_OUTCOME] == "transitioned"
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_typed_machine_and_postponed_reentry(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    core = Core()
    light = LightMachine(core)
    light.toggle()
    light.toggle()
    with pytest.raises(NoTransition):
        light.poke()
    assert core.log == ["on", "poked", "off"]
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_NAME, *TRIGGER_KEYS) == {
        (LIGHT, "toggle", "off", "transitioned", None): 1,
        (LIGHT, "poke", "on", "transitioned", None): 1,  # postponed: ran after toggle ended
        (LIGHT, "toggle", "on", "transitioned", None): 1,
        (LIGHT, "poke", "off", "refused", NO_TRANSITION): 1,
    }
    order = [s.attributes[c.STATEMACHINE_TRIGGER] for s in telemetry.spans()]
    assert order == ["toggle", "poke", "toggle", "poke"]


def test_machines_before_instrument_are_named_and_counted(instrument: Any) -> None:
    early = Door()
    early.open()
    light = LightMachine(Core())
    telemetry: Telemetry = instrument()
    early.close()
    light.toggle()
    instances = {
        (p.attributes[c.STATEMACHINE_NAME], p.attributes[c.STATEMACHINE_STATE]): p.value
        for p in telemetry.points(c.STATEMACHINE_INSTANCES.name)
    }
    assert instances[DOOR, "closed"] >= 1
    assert instances[LIGHT, "on"] == 1
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_NAME) == {(DOOR,): 1, (LIGHT,): 2}


def test_direct_transitioner_use_is_recorded_when_transition_returns(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    door = Door()
    door.open()
    transitioner = next(v for v in vars(door).values() if isinstance(v, Transitioner))
    outputs, _ = transitioner.transition(vars(Door)["close"])
    assert outputs == []
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_TRIGGER) == {
        ("open",): 1,
        ("close",): 1,
    }


def test_span_hook_and_metrics_only(instrument: Any) -> None:
    assert_metrics_only_calls_no_span_hook(instrument, lambda: Door().open())


def test_span_hook_receives_the_instance(instrument: Any) -> None:
    infos: list[TriggerInfo] = span_hook_infos(instrument)
    door = Door()
    door.open()
    (info,) = infos
    assert (info.model, info.name, info.trigger, info.previous_state, info.state) == (
        door,
        DOOR,
        "open",
        "closed",
        "opened",
    )


@pytest.mark.faults
def test_a_fault_in_telemetry_never_reaches_the_app(instrument: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    instrument()
    with machine_telemetry_broken(monkeypatch):
        door = Door()
        assert door.open() == ["creak", "slam"]
        with pytest.raises(NoTransition):
            door.open()
