"""State-machine telemetry that does not depend on the library: triggers, transitions, instances.

A library's patches find out, for each event fired at a machine, the machine's name, the trigger,
the state it was fired in, and afterwards the outcome and the state after; this module records
them as the contract says (``statemachine.*``). The library also supplies a *census*: the live
machines (models) with every state of their machine and the state(s) each is in now, read at
collection time for ``statemachine.instances``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable, Optional

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import Observation
from opentelemetry.trace import Status, StatusCode

from otel_resilience._kit.exceptions import error_type, is_cancellation, record_exception
from otel_resilience._kit.faults import report_fault
from otel_resilience._kit.gate import gated
from otel_resilience._kit.instruments import create_instrument, create_observable
from otel_resilience._kit.names import AttributeSets, NameRegistry
from otel_resilience._kit.recording import Recorder, make_current, restore
from otel_resilience.contract import (
    ERROR_TYPE,
    STATEMACHINE_INSTANCES,
    STATEMACHINE_NAME,
    STATEMACHINE_OUTCOME,
    STATEMACHINE_PREVIOUS_STATE,
    STATEMACHINE_STATE,
    STATEMACHINE_TRANSITIONS,
    STATEMACHINE_TRIGGER,
    STATEMACHINE_TRIGGER_DURATION,
    STATEMACHINE_TRIGGERS,
    TriggerOutcome,
)

if TYPE_CHECKING:
    from types import TracebackType

    from opentelemetry.trace import Span

    from otel_resilience._kit.patching import Wrapper
    from otel_resilience._kit.settings import Settings

TRANSITIONED = TriggerOutcome.TRANSITIONED.value
REFUSED = TriggerOutcome.REFUSED.value
BLOCKED = TriggerOutcome.BLOCKED.value
FAILED = TriggerOutcome.FAILED.value
CANCELLED = TriggerOutcome.CANCELLED.value
_ERROR_OUTCOMES = frozenset({REFUSED, FAILED})

PARALLEL_SEPARATOR = ","
"""Joins the leaves of a parallel configuration into one state value."""


@dataclass(frozen=True)
class TriggerInfo:
    """What the ``span_hook`` receives about a trigger fired at a state machine."""

    machine: Any
    """The library's machine object (for automat and python-statemachine, the instance)."""
    model: Any
    """The object whose state changed (the machine itself where the library has no model)."""
    name: str
    """The reported machine name (``statemachine.name``)."""
    trigger: str
    previous_state: str
    state: str
    """The state after the trigger."""
    outcome: str
    """``transitioned``, ``refused``, ``blocked``, ``failed`` or ``cancelled``."""
    error: BaseException | None


Verdict = tuple[str, Optional[BaseException]]
"""(outcome, the exception that explains it)."""
Instance = tuple[str, Iterable[str], Iterable[str]]
"""One live machine (model): (machine name, every state of its machine, the state(s) it is in now)."""


def state_name(value: Any) -> str:
    """A state or trigger as reported: strings as they are, Enum members (and state objects) by name.

    A parallel configuration (a list, possibly nested) is reported as its leaves joined by ``,``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, (list, tuple)):
        return PARALLEL_SEPARATOR.join(leaf_states(value))
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else str(value)


def leaf_states(value: Any) -> list[str]:
    """The state names a (possibly parallel, nested list) configuration is in."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in leaf_states(item)]
    return [state_name(value)]


def type_name(cls: type) -> str:
    """``module.QualName`` of a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def class_name(obj: object) -> str:
    """``module.QualName`` of an object's class: the name of a machine without one of its own."""
    return type_name(type(obj))


class ActiveTrigger:
    """One trigger being processed, from the wrapper's entry to its end."""

    __slots__ = ("machine", "model", "name", "previous_state", "span", "started", "token", "trigger")

    def __init__(self, machine: Any, model: Any, name: str, trigger: str, previous_state: str) -> None:
        self.machine = machine
        self.model = model
        self.name = name
        self.trigger = trigger
        self.previous_state = previous_state
        self.span: Span | None = None
        self.token: object | None = None
        self.started = perf_counter()


class MachineTelemetry(Recorder[TriggerInfo]):
    """Instruments, names and the instance census of one state-machine library's ``instrument()``."""

    def __init__(
        self,
        settings: Settings[TriggerInfo],
        scope: str,
        *,
        on_open: Callable[[], None],
        census: Callable[[], Iterable[Instance]],
    ) -> None:
        super().__init__(settings, scope, on_open=on_open)
        meter = self.meter
        self.triggers = create_instrument(meter, STATEMACHINE_TRIGGERS)
        self.transitions = create_instrument(meter, STATEMACHINE_TRANSITIONS)
        self.duration = create_instrument(meter, STATEMACHINE_TRIGGER_DURATION)
        self.census = census
        create_observable(self, STATEMACHINE_INSTANCES, MachineTelemetry.observe_instances)
        self.names = NameRegistry("state machine", settings.max_names, _no_series_in_advance)
        self.trigger_attributes = AttributeSets(
            STATEMACHINE_NAME,
            STATEMACHINE_TRIGGER,
            STATEMACHINE_PREVIOUS_STATE,
            STATEMACHINE_OUTCOME,
            ERROR_TYPE,
        )
        self.transition_attributes = AttributeSets(
            STATEMACHINE_NAME, STATEMACHINE_PREVIOUS_STATE, STATEMACHINE_STATE, STATEMACHINE_TRIGGER
        )
        self.duration_attributes = AttributeSets(
            STATEMACHINE_NAME, STATEMACHINE_TRIGGER, STATEMACHINE_OUTCOME
        )

    def report_name(self, name: str) -> str:
        return self.names.reported.get(name) or self.names.report(name)

    def start(
        self, machine: Any, model: Any, name: str, trigger: Any, previous_state: Any, *, current: bool = True
    ) -> ActiveTrigger | None:
        """A trigger starts: its span becomes current (callbacks' spans are its children).

        With ``current=False`` the library's patches make the span current around each callback
        themselves (``ActiveTrigger.span``). None when the trigger is not to be recorded
        (``suppress_instrumentation``) or the telemetry failed.
        """
        if not is_instrumentation_enabled():
            return None
        try:
            reported = self.report_name(name)
            trigger_name = state_name(trigger)
            previous = state_name(previous_state)
            active = ActiveTrigger(machine, model, reported, trigger_name, previous)
            span = self.start_span(
                f"{reported} {trigger_name}",
                {
                    STATEMACHINE_NAME: reported,
                    STATEMACHINE_TRIGGER: trigger_name,
                    STATEMACHINE_PREVIOUS_STATE: previous,
                },
            )
            if span is not None and span.is_recording():
                active.span = span
                if current:
                    active.token = make_current(span)
        except Exception as fault:
            report_fault("state machine trigger telemetry", fault)
            return None
        return active

    def finish(
        self, active: ActiveTrigger, verdict: Callable[[], Verdict], state_after: Callable[[], Any]
    ) -> None:
        """The trigger ended: ``verdict()`` says how, ``state_after()`` where the machine is now."""
        elapsed = perf_counter() - active.started
        if active.token is not None:
            try:
                restore(active.token)
            except Exception as fault:
                report_fault("state machine trigger telemetry", fault)
        try:
            outcome, error = verdict()
            state = state_name(state_after())
            self.record(active, outcome, state, error, elapsed)
        except Exception as fault:
            report_fault("state machine trigger telemetry", fault)
            if active.span is not None:
                active.span.end()

    def record(
        self, active: ActiveTrigger, outcome: str, state: str, error: BaseException | None, elapsed: float
    ) -> None:
        etype = None if error is None else error_type(error)
        name, trigger, previous = active.name, active.trigger, active.previous_state
        self.triggers.add(1, self.trigger_attributes.get(name, trigger, previous, outcome, etype))
        self.duration.record(elapsed, self.duration_attributes.get(name, trigger, outcome))
        if outcome == TRANSITIONED or (outcome == FAILED and state != previous):
            self.transitions.add(1, self.transition_attributes.get(name, previous, state, trigger))
        span = active.span
        if span is None:
            return
        span.set_attributes({STATEMACHINE_STATE: state, STATEMACHINE_OUTCOME: outcome})
        if error is not None:
            span.set_attribute(ERROR_TYPE, error_type(error))
            record_exception(span, error, messages=self.exception_messages)
        if outcome in _ERROR_OUTCOMES:
            span.set_status(Status(StatusCode.ERROR))
        self.call_hook(
            span,
            lambda: TriggerInfo(active.machine, active.model, name, trigger, previous, state, outcome, error),
        )
        span.end()

    def observe_instances(self) -> list[Observation]:
        counts: dict[str, dict[str, int]] = {}
        try:
            for name, states, current in self.census():
                per_state = counts.setdefault(self.report_name(name), {})
                for state in states:
                    per_state.setdefault(state, 0)
                for state in current:
                    per_state[state] = per_state.get(state, 0) + 1
        except Exception as fault:
            report_fault("state machine instance observation", fault)
        return [
            Observation(value, {STATEMACHINE_NAME: name, STATEMACHINE_STATE: state})
            for name, per_state in counts.items()
            for state, value in per_state.items()
        ]


class TriggerRecording:
    """One trigger recorded around the library's method that runs it, sync or async alike.

    A library subclasses it with how to read the outcome (:meth:`verdict`) and the state after
    (:meth:`state_after`), and starts it with :meth:`begin`. ``__exit__`` never swallows: the
    application gets the library's own result or exception.
    """

    __slots__ = ("active", "telemetry")

    def __init__(self, telemetry: MachineTelemetry) -> None:
        self.telemetry = telemetry
        self.active: ActiveTrigger | None = None

    def begin(self, machine: Any, model: Any, name: str, trigger: Any, previous_state: Any) -> None:
        self.active = self.telemetry.start(machine, model, name, trigger, previous_state)

    def returned(self, result: Any) -> Any:
        """See the method's result (and hand it back)."""
        return result

    def verdict(self, raised: BaseException | None) -> Verdict:
        raise NotImplementedError

    def state_after(self) -> Any:
        raise NotImplementedError

    def __enter__(self) -> TriggerRecording:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        active = self.active
        if active is not None:
            self.ended()
            self.telemetry.finish(active, lambda: self.verdict(exc), self.state_after)
        return False

    def ended(self) -> None:
        """The method returned or raised: undo what :meth:`begin` set up besides the span."""


Recording = Callable[[Any, tuple[Any, ...], dict[str, Any]], TriggerRecording]
"""``recording(instance, args, kwargs)``: a trigger's recording, begun, for one call of the method."""


def trigger_wrappers(telemetry: MachineTelemetry, recording: Recording) -> tuple[Wrapper, Wrapper]:
    """Gated wrappers, for a sync and an ``async def`` method, that record each call as one trigger."""

    def sync(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        with recording(instance, args, kwargs) as recorded:
            return recorded.returned(wrapped(*args, **kwargs))

    async def asynchronous(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        with recording(instance, args, kwargs) as recorded:
            return recorded.returned(await wrapped(*args, **kwargs))

    return gated(telemetry.gate, sync), gated(telemetry.gate, asynchronous)


def cancelled_or(error: BaseException, outcome: str) -> Verdict:
    """``cancelled`` for a cancellation, else ``outcome``; with the exception either way."""
    return (CANCELLED if is_cancellation(error) else outcome), error


def _no_series_in_advance(name: str) -> None:
    """Triggers and states are the machine's own: no series can be started at 0 before they occur."""
