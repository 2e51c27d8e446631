"""transitions' patch points: the method that runs once per event fired, on each machine flavour.

Models hold ``partial(event.trigger, model)`` bound at ``add_model``, so the per-event methods are
wrapped, on the class, where every machine (made before or after ``instrument()``) looks them up:

- ``Event._trigger(event_data)``: plain, locked and queued machines (a queued event runs here when
  its turn comes);
- ``AsyncEvent._trigger``: the async override (a separate ``async def``);
- ``HierarchicalMachine._trigger_event(event_data, trigger)`` and its async override on
  ``HierarchicalAsyncMachine``: nested machines, which do not use ``Event._trigger``;
- ``Machine.__init__``: a new machine, for the instance census.

Nothing is registered with transitions: ``on_exception``, for one, turns raising into swallowing
by its mere presence. Outcomes are read from the ``EventData`` transitions fills in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from transitions.core import Event, Machine, MachineError
from transitions.extensions.asyncio import AsyncEvent, HierarchicalAsyncMachine
from transitions.extensions.nesting import HierarchicalMachine

from otel_resilience._kit.faults import contain
from otel_resilience._kit.instances import InstanceRegistry
from otel_resilience._kit.patching import Observer, PatchPlan, PatchTarget, Wrapper, after_call
from otel_resilience._statemachines import (
    BLOCKED,
    FAILED,
    REFUSED,
    TRANSITIONED,
    Instance,
    MachineTelemetry,
    TriggerInfo,
    TriggerRecording,
    Verdict,
    cancelled_or,
    class_name,
    leaf_states,
    trigger_wrappers,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from otel_resilience._kit.settings import Settings

_SKIPPED_PACKAGES = ("transitions", "wrapt", "otel_resilience")
_NAME_SUFFIX = ": "  # Machine(name="x") stores "x: "


def machine_name(machine: Any, model: Any) -> str:
    """The machine's ``name=`` when given, else the model's class."""
    name = machine.name
    if isinstance(name, str) and name:
        return name[: -len(_NAME_SUFFIX)] if name.endswith(_NAME_SUFFIX) else name
    return class_name(model)


def _current(event_data: Any) -> Any:
    return getattr(event_data.model, event_data.machine.model_attribute)


def _verdict(event_data: Any, trigger: str, raised: BaseException | None) -> Verdict:
    """The outcome transitions left in ``event_data`` (``on_exception`` swallows into ``.error``)."""
    error = raised if raised is not None else event_data.error
    if error is not None:
        # No transition chosen yet: the trigger was not valid in that state (a nested machine raises
        # AttributeError for a trigger it does not know at all).
        refused = event_data.transition is None and (
            isinstance(error, MachineError)
            or (isinstance(error, AttributeError) and not event_data.machine.has_trigger(trigger))
        )
        return cancelled_or(error, REFUSED if refused else FAILED)
    if event_data.result:
        return TRANSITIONED, None
    return (REFUSED if event_data.transition is None else BLOCKED), None


class _Recorded(TriggerRecording):
    """One event run by transitions: its outcome is in the ``EventData`` transitions fills in."""

    __slots__ = ("event_data", "trigger")

    def __init__(self, telemetry: MachineTelemetry, event_data: Any, trigger: str) -> None:
        super().__init__(telemetry)
        self.event_data = event_data
        self.trigger = trigger
        model = event_data.model
        machine = event_data.machine
        try:
            name = machine_name(machine, model)
            previous = _current(event_data)
        except Exception:  # a model without its state: transitions will say so itself
            return
        self.begin(machine, model, name, trigger, previous)

    def verdict(self, raised: BaseException | None) -> Verdict:
        return _verdict(self.event_data, self.trigger, raised)

    def state_after(self) -> Any:
        return _current(self.event_data)


def _wrappers(
    telemetry: MachineTelemetry, trigger_of: Callable[[Any, tuple[Any, ...]], str]
) -> tuple[Wrapper, Wrapper]:
    """The sync and async wrappers of a method whose first argument is the ``EventData``."""
    return trigger_wrappers(
        telemetry, lambda instance, args, kwargs: _Recorded(telemetry, args[0], trigger_of(instance, args))
    )


def _event_trigger(event: Any, args: tuple[Any, ...]) -> str:
    """``Event._trigger(event_data)``: the event is the instance."""
    return event.name  # type: ignore[no-any-return]


def _nested_trigger(machine: Any, args: tuple[Any, ...]) -> str:
    """``HierarchicalMachine._trigger_event(event_data, trigger)``."""
    return args[1]  # type: ignore[no-any-return]


def _state_names(states: Any, separator: str, prefix: str = "") -> Iterator[str]:
    """Every state's full name, nested ones included (``B``, ``B_1``...), without entering the machine.

    ``HierarchicalMachine.get_nested_state_names()`` would change the machine's context stack, which a
    trigger running in another thread reads.
    """
    for key, state in list(states.items()):
        full = f"{prefix}{separator}{key}" if prefix else key
        yield full
        children = getattr(state, "states", None)
        if children:
            yield from _state_names(children, separator, full)


def _census(machines: InstanceRegistry[Machine]) -> Callable[[], Iterator[Instance]]:
    def census() -> Iterator[Instance]:
        for machine in machines.snapshot():
            separator = getattr(machine.state_cls, "separator", "_")
            states = list(_state_names(machine.states, separator))
            attribute = machine.model_attribute
            for model in list(machine.models):
                yield machine_name(machine, model), states, leaf_states(getattr(model, attribute))

    return census


def _registration_observer(machines: InstanceRegistry[Machine]) -> Observer:
    @contain("transitions machine registration")
    def init(machine: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        machines.register(machine)

    return init


def instrumentation(
    settings: Settings[TriggerInfo], scope: str, on_open: Callable[[], None]
) -> tuple[MachineTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    machines: InstanceRegistry[Machine] = InstanceRegistry(Machine, _SKIPPED_PACKAGES)
    machines.adopt_existing()
    telemetry = MachineTelemetry(settings, scope, on_open=on_open, census=_census(machines))
    event_trigger, async_event_trigger = _wrappers(telemetry, _event_trigger)
    nested_trigger, async_nested_trigger = _wrappers(telemetry, _nested_trigger)
    eager: list[PatchTarget] = [
        (Machine, "__init__", after_call(_registration_observer(machines))),
        (Event, "_trigger", event_trigger),
        (AsyncEvent, "_trigger", async_event_trigger),
        (HierarchicalMachine, "_trigger_event", nested_trigger),
        (HierarchicalAsyncMachine, "_trigger_event", async_nested_trigger),
    ]
    return telemetry, PatchPlan(eager)
