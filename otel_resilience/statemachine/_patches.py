"""python-statemachine's patch points: the engines' method that runs one external event.

``SyncEngine._take_external_event`` and ``AsyncEngine._take_external_event`` (a separate
``async def``) run every event sent to a ``StateMachine`` or ``StateChart`` from outside, queued
or not: they select the enabled transitions and run them (``microstep``), or find none. Around
them:

- none enabled: ``TransitionNotAllowed`` (``StateMachine``) or a silent return (``StateChart``):
  ``blocked`` when a transition for the event leaves an active state (its guard said no), else
  ``refused``;
- a callback raised: ``StateMachine`` re-raises (``failed``); ``StateChart`` turns the error into an
  ``error.execution`` event (``Event.put``, observed): ``failed`` too.

``StateChart.__init__`` registers each machine for the instance census. No listener is added:
an async listener switches the machine's engine.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable

from statemachine import StateChart
from statemachine.engines.async_ import AsyncEngine
from statemachine.engines.base import _ERROR_EXECUTION
from statemachine.engines.sync import SyncEngine
from statemachine.event import Event
from statemachine.exceptions import TransitionNotAllowed

from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.instances import InstanceRegistry
from otel_resilience._kit.patching import Observer, PatchPlan, PatchTarget, after_call
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
    trigger_wrappers,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from otel_resilience._kit.settings import Settings

_SKIPPED_PACKAGES = ("statemachine", "wrapt", "otel_resilience")
_INITIAL = "__initial__"


def current_states(sm: Any) -> list[str]:
    """The active atomic states' ids (a compound state's active child stands for it)."""
    return [state.id for state in sm.configuration if state.is_atomic]


def _has_transition_for(sm: Any, event: Any) -> bool:
    """Whether a transition for ``event`` leaves an active state, whatever its guards say."""
    return any(transition.match(event) for state in sm.configuration for transition in state.transitions)


class _Recorded(TriggerRecording):
    """One external event run by an engine; made current for ``error.execution`` to find it."""

    __slots__ = ("engine", "error", "event", "found_none", "sm", "token")

    def __init__(self, telemetry: MachineTelemetry, engine: Any, trigger_data: Any) -> None:
        super().__init__(telemetry)
        self.error: Exception | None = None
        self.found_none = False
        """Set when the engine returned its sentinel: no transition was enabled (a StateChart)."""
        self.token: Any = None
        self.engine = engine
        self.sm = sm = engine.sm
        self.event = trigger_data.event
        if str(self.event) == _INITIAL:
            return
        try:
            name, previous = class_name(sm), current_states(sm)
        except Exception as fault:
            report_fault("python-statemachine trigger telemetry", fault)
            return
        self.begin(sm, sm.model, name, str(self.event), previous)
        if self.active is not None:
            self.token = recording.set(self)

    def returned(self, result: Any) -> Any:
        self.found_none = result is self.engine._sentinel
        return result

    def ended(self) -> None:
        recording.reset(self.token)

    def verdict(self, raised: BaseException | None) -> Verdict:
        if isinstance(raised, TransitionNotAllowed) or (raised is None and self.found_none):
            outcome = BLOCKED if _has_transition_for(self.sm, self.event) else REFUSED
            return outcome, raised
        if raised is not None:
            return cancelled_or(raised, FAILED)
        if self.error is not None:
            return FAILED, self.error
        return TRANSITIONED, None

    def state_after(self) -> Any:
        return current_states(self.sm)


recording: ContextVar[_Recorded | None] = ContextVar("otel_resilience_statemachine_event", default=None)


@contain("python-statemachine error observation")
def _event_put(event: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    """A StateChart turned a callback's error into ``error.execution``: the event being run failed."""
    if str(event) != _ERROR_EXECUTION:
        return
    current = recording.get()
    if current is not None and current.sm is event._sm and current.error is None:
        current.error = kwargs.get("error")


def _census(machines: InstanceRegistry[StateChart[Any]]) -> Callable[[], Iterator[Instance]]:
    def census() -> Iterator[Instance]:
        for sm in machines.snapshot():
            states = [state.id for state in type(sm).states_map.values()]
            yield class_name(sm), states, current_states(sm)

    return census


def _registration_observer(machines: InstanceRegistry[StateChart[Any]]) -> Observer:
    @contain("python-statemachine machine registration")
    def init(sm: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        machines.register(sm)

    return init


def instrumentation(
    settings: Settings[TriggerInfo], scope: str, on_open: Callable[[], None]
) -> tuple[MachineTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    machines: InstanceRegistry[StateChart[Any]] = InstanceRegistry(StateChart, _SKIPPED_PACKAGES)
    machines.adopt_existing()
    telemetry = MachineTelemetry(settings, scope, on_open=on_open, census=_census(machines))
    take_event, take_event_async = trigger_wrappers(
        telemetry,
        lambda engine, args, kwargs: _Recorded(
            telemetry, engine, args[0] if args else kwargs["external_event"]
        ),
    )
    eager: list[PatchTarget] = [
        (StateChart, "__init__", after_call(_registration_observer(machines))),
        (SyncEngine, "_take_external_event", take_event),
        (AsyncEngine, "_take_external_event", take_event_async),
        (Event, "put", after_call(_event_put)),
    ]
    return telemetry, PatchPlan(eager)
