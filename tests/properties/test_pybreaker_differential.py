"""Differential property test: an instrumented breaker behaves exactly like an uninstrumented twin.

Each example draws a breaker configuration and a sequence of operations: calls that return, fail,
raise an excluded exception (by type or by predicate) or raise a ``CircuitBreakerError`` of their
own; through ``breaker.call``, ``@breaker``, ``with breaker.calling():`` and guarded generators
(consumed, failing mid-way, closed early); manual ``open()``/``half_open()``/``close()``; the clock
moving past ``reset_timeout`` or not. The sequence runs on a fresh breaker while pybreaker is not
instrumented, then on a fresh breaker under ``PyBreakerInstrumentor`` with in-memory SDK providers.

- Every step must give the same return value, exception (type, args, ``__context__`` type), state,
  counters and listener events in both runs.
- The instrumented run's spans and metrics must equal the ground truth derived from what the
  uninstrumented run observably did: whether the guarded code ran and in which state, which
  exceptions pybreaker reported to its listeners as failures, which transitions it reported.

The number of examples run: ``nox -s properties -- --hypothesis-show-statistics``.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Union
from unittest import mock

import pybreaker
import wrapt
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind, StatusCode

from otel_resilience.contract import (
    BREAKER_CALL_DURATION,
    BREAKER_CALLS,
    BREAKER_CONSECUTIVE_FAILURES,
    BREAKER_NAME,
    BREAKER_PREVIOUS_STATE,
    BREAKER_STATE,
    BREAKER_STATUS,
    BREAKER_TRANSITIONS,
    ERROR_TYPE,
    OUTCOME,
    STATE_CHANGE_EVENT,
    BreakerOutcome,
    BreakerState,
    MetricSpec,
)
from otel_resilience.pybreaker import PyBreakerInstrumentor
from tests.support.breaker_steps import Other, sequences
from tests.support.telemetry import Telemetry
from tests.support.telemetry import instrumented as instrumented_with

RESET_TIMEOUT = 30.0
_serial = itertools.count()


class ServiceDown(Exception):
    """A failure the breaker counts."""


class BusinessError(Exception):
    """Excluded from the breaker's failures by its type."""


class SoftError(Exception):
    """Excluded from the breaker's failures by a predicate (``Recorder.is_soft``)."""


RAISED = {
    "failure": ServiceDown,
    "excluded": BusinessError,
    "excluded_by_predicate": SoftError,
    # The guarded code's own CircuitBreakerError (a breaker further down): it ran, so not "rejected".
    "own_breaker_error": pybreaker.CircuitBreakerError,
}


# -- operations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call through the breaker."""

    form: str
    """``function``, ``generator`` (a guarded generator function) or ``calling`` (a ``with`` block)."""
    decorated: bool
    """Function and generator forms: through ``@breaker`` rather than ``breaker.call``."""
    ending: str
    """``return``, a key of ``RAISED``, or ``close`` (the caller closes the generator mid-way)."""
    items: int
    """Values a generator yields before its ending."""


# Steps that are not calls (``Other``): ``open``, ``half_open``, ``close`` (the breaker's methods),
# ``wait_past_timeout``, ``wait_briefly``.
Operation = Union[Call, Other]

_ENDINGS = st.one_of(st.just("return"), st.sampled_from(list(RAISED)))  # half the calls return
OPERATIONS = st.one_of(
    st.builds(Call, st.sampled_from(["function", "calling"]), st.booleans(), _ENDINGS, st.just(0)),
    st.builds(Call, st.just("generator"), st.booleans(), _ENDINGS, st.integers(0, 2)),
    st.builds(Call, st.just("generator"), st.booleans(), st.just("close"), st.integers(1, 2)),
    # Waiting past the timeout on its own branch: often enough for half-open probes to be common.
    st.just(Other("wait_past_timeout")),
    st.builds(Other, st.sampled_from(["open", "half_open", "close", "wait_briefly"])),
)
# Lengths drawn uniformly: plain st.lists() makes most sequences too short to trip and recover.
SEQUENCES = sequences(OPERATIONS)
CONFIGS = st.fixed_dictionaries(
    {
        "fail_max": st.integers(1, 4),
        "success_threshold": st.integers(1, 3),
        "throw_new_error_on_trip": st.booleans(),
    }
)


# -- one run of a sequence ----------------------------------------------------------------------


class Clock:
    """Stands in for ``pybreaker.datetime``: ``now()`` moves only when the sequence says so."""

    def __init__(self) -> None:
        self.current = datetime(2025, 1, 1, tzinfo=timezone.utc)

    def now(self, tz: Any = None) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class Recorder(pybreaker.CircuitBreakerListener):
    """A plain listener on both breakers: what pybreaker itself reports, and when it asks the predicate."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def before_call(
        self, cb: pybreaker.CircuitBreaker, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        self.events.append(("before_call",))

    def success(self, cb: pybreaker.CircuitBreaker) -> None:
        self.events.append(("success",))

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self.events.append(("failure", type(exc)))

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        self.events.append(("state_change", getattr(old_state, "name", None), new_state.name))

    def is_soft(self, exc: BaseException) -> bool:
        """The breaker's exclude predicate: a user predicate must not be asked more often than before."""
        self.events.append(("is_soft", type(exc)))
        return isinstance(exc, SoftError)


@dataclass(frozen=True)
class Step:
    """What the application observes of one operation: must be the same with and without instrumentation."""

    result: Any
    error: tuple[type[BaseException], tuple[Any, ...], type] | None
    """Type, args and ``__context__`` type (``NoneType`` when none) of the exception raised."""
    yielded: tuple[Any, ...]
    state: str
    fail_counter: int
    success_counter: int
    events: tuple[tuple[Any, ...], ...]
    listeners: tuple[type[pybreaker.CircuitBreakerListener], ...]


@dataclass
class Run:
    """The observations of one run, and the telemetry they imply.

    ``calls`` and ``transitions`` hold the attributes (breaker name aside) of each call and each
    transition that must be recorded; ``state`` and ``fail_counter`` are the breaker's at the end.
    """

    steps: list[Step] = field(default_factory=list)
    calls: list[dict[str, str]] = field(default_factory=list)
    transitions: list[dict[str, str]] = field(default_factory=list)
    state: str = pybreaker.STATE_CLOSED
    fail_counter: int = 0


def _state(pybreaker_state: str) -> str:
    return BreakerState(pybreaker_state.replace("-", "_")).value


def _error_type(cls: type[BaseException]) -> str:
    """The contract's ``error.type``: ``module.QualName``, builtins without module."""
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class Runner:
    """Runs a sequence on a fresh breaker, recording each step and the telemetry it must produce."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.listener = Recorder()
        self.run = Run()
        self.breaker = pybreaker.CircuitBreaker(
            # A name of its own: a breaker of an earlier run lingers until the garbage collector runs.
            name=f"differential-{next(_serial)}",
            reset_timeout=RESET_TIMEOUT,
            exclude=[BusinessError, self.listener.is_soft],
            listeners=[self.listener],
            **config,
        )
        self.clock = Clock()
        # Per call: the state the guarded code saw when it started (None: it never ran), what it raised.
        self.ran_in: str | None = None
        self.raised: type[BaseException] | None = None
        self.yielded: list[Any] = []

    def __call__(self, operations: Sequence[Operation]) -> Run:
        with mock.patch.object(pybreaker, "datetime", self.clock):
            for index, operation in enumerate(operations):
                self.step(index, operation)
        self.run.state, self.run.fail_counter = self.breaker.current_state, self.breaker.fail_counter
        return self.run

    def step(self, index: int, operation: Operation) -> None:
        seen = len(self.listener.events)
        state_before = self.breaker.current_state
        self.ran_in, self.raised, self.yielded = None, None, []
        result = error = None
        try:
            result = self.perform(index, operation)
        except Exception as exc:
            error = (type(exc), exc.args, type(exc.__context__))
        events = tuple(self.listener.events[seen:])
        breaker = self.breaker
        self.run.steps.append(
            Step(
                result,
                error,
                tuple(self.yielded),
                breaker.current_state,
                breaker.fail_counter,
                breaker.success_counter,
                events,
                tuple(type(listener) for listener in breaker.listeners),
            )
        )
        if isinstance(operation, Call):
            self.run.calls.append(self.call_truth(events, state_before, error))
        for kind, *details in events:
            if kind == "state_change":
                old, new = details
                self.run.transitions.append({BREAKER_PREVIOUS_STATE: _state(old), BREAKER_STATE: _state(new)})

    def call_truth(
        self, events: tuple[tuple[Any, ...], ...], state_before: str, error: Any
    ) -> dict[str, str]:
        """The attributes the call must be recorded with, from what pybreaker visibly did."""
        failures = [details[0] for kind, *details in events if kind == "failure"]
        if self.ran_in is None:
            assert state_before == pybreaker.STATE_OPEN
            assert error is not None
            assert error[0] is pybreaker.CircuitBreakerError
            state, outcome, etype = BreakerState.OPEN.value, BreakerOutcome.REJECTED, error[0]
        elif failures:
            state, outcome, etype = _state(self.ran_in), BreakerOutcome.FAILURE, failures[0]
        elif self.raised is not None:
            state, outcome, etype = _state(self.ran_in), BreakerOutcome.IGNORED, self.raised
        else:
            state, outcome, etype = _state(self.ran_in), BreakerOutcome.SUCCESS, None
        truth = {BREAKER_STATE: state, OUTCOME: outcome.value}
        if etype is not None:
            truth[ERROR_TYPE] = _error_type(etype)
        return truth

    def perform(self, index: int, operation: Operation) -> Any:
        if isinstance(operation, Other):
            if operation.action == "wait_past_timeout":
                return self.clock.advance(RESET_TIMEOUT + 1)
            if operation.action == "wait_briefly":
                return self.clock.advance(RESET_TIMEOUT / 3)
            return getattr(self.breaker, operation.action)()
        if operation.form == "calling":
            with self.breaker.calling():
                return self.body(operation, index)
        if operation.form == "generator":
            return self.consume(self.guarded(self.generator, operation)(operation, index), operation)
        return self.guarded(self.body, operation)(operation, index)

    def guarded(self, func: Callable[..., Any], operation: Call) -> Callable[..., Any]:
        if operation.decorated:
            return self.breaker(func)
        return functools.partial(self.breaker.call, func)

    def body(self, operation: Call, index: int) -> Any:
        """The guarded code: notes the state it runs in, then ends as the operation says."""
        self.ran_in = self.breaker.current_state
        return self.end(operation, index)

    def generator(self, operation: Call, index: int) -> Generator[Any, None, Any]:
        self.ran_in = self.breaker.current_state
        for item in range(operation.items + (operation.ending == "close")):
            yield (index, item)
        return self.end(operation, index)

    def end(self, operation: Call, index: int) -> Any:
        error = RAISED.get(operation.ending)
        if error is None:
            return ("value", index)
        self.raised = error
        raise error(operation.ending, index)

    def consume(self, generator: Generator[Any, None, Any], operation: Call) -> None:
        if operation.ending == "close":
            self.yielded.extend(next(generator) for _ in range(operation.items))
            generator.close()
        else:
            for item in generator:
                self.yielded.append(item)


# -- instrumentation on and off -----------------------------------------------------------------


def _wrapped_attributes() -> list[str]:
    """pybreaker's class attributes currently replaced by a wrapt wrapper."""
    return [
        f"{cls.__name__}.{attribute}"
        for cls in (pybreaker.CircuitBreaker, pybreaker.CircuitBreakerState)
        for attribute, value in vars(cls).items()
        if isinstance(value, wrapt.FunctionWrapper)
    ]


# -- checks -------------------------------------------------------------------------------------


def _keyed(spec: MetricSpec, rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], int]:
    """Rows of attributes counted by the metric's attribute tuple, as ``Telemetry.values`` keys them."""
    return dict(Counter(tuple(row.get(attribute) for attribute in spec.attributes) for row in rows))


def _series(telemetry: Telemetry, spec: MetricSpec, name: str) -> dict[tuple[Any, ...], float]:
    """The metric's values for the breaker ``name`` only."""
    at = spec.attributes.index(BREAKER_NAME)
    values = telemetry.values(spec.name, *spec.attributes)
    return {key: value for key, value in values.items() if key[at] == name}


def _assert_telemetry(telemetry: Telemetry, name: str, truth: Run) -> None:
    """The telemetry of breaker ``name`` is exactly the ground truth ``truth``."""
    calls = [{BREAKER_NAME: name, **call} for call in truth.calls]
    transitions = [{BREAKER_NAME: name, **transition} for transition in truth.transitions]
    assert _series(telemetry, BREAKER_CALLS, name) == _keyed(BREAKER_CALLS, calls)
    assert _series(telemetry, BREAKER_CALL_DURATION, name) == _keyed(BREAKER_CALL_DURATION, calls)
    assert _series(telemetry, BREAKER_TRANSITIONS, name) == _keyed(BREAKER_TRANSITIONS, transitions)
    assert _series(telemetry, BREAKER_STATUS, name) == {(name, _state(truth.state)): 1}
    failures = {(name,): truth.fail_counter} if truth.fail_counter else {}
    assert _series(telemetry, BREAKER_CONSECUTIVE_FAILURES, name) == failures

    spans = telemetry.spans()
    call_spans = [span for span in spans if OUTCOME in (span.attributes or {})]
    assert [dict(span.attributes or {}) for span in call_spans] == calls
    assert all(span.name == name and span.kind is SpanKind.INTERNAL for span in call_spans)
    errors = {BreakerOutcome.FAILURE.value, BreakerOutcome.REJECTED.value}
    assert [span.status.status_code is StatusCode.ERROR for span in call_spans] == [
        call[OUTCOME] in errors for call in calls
    ]
    changes = [
        dict(span_event.attributes or {})
        for span in spans
        for span_event in span.events
        if span_event.name == STATE_CHANGE_EVENT
    ]
    assert _keyed(BREAKER_TRANSITIONS, changes) == _keyed(BREAKER_TRANSITIONS, transitions)
    # Any other span is the short span of a transition made while no call span was current.
    assert all(
        any(span_event.name == STATE_CHANGE_EVENT for span_event in span.events)
        for span in spans
        if span not in call_spans
    )


def _label(truth: Run) -> None:
    """Name what the example exercised, for ``--hypothesis-show-statistics``."""
    for call in truth.calls:
        event(f"call: {call[BREAKER_STATE]} {call[OUTCOME]}")
    for transition in truth.transitions:
        event(f"transition: {transition[BREAKER_PREVIOUS_STATE]} -> {transition[BREAKER_STATE]}")


# A tour of the paths that matter, run first in the property test and checked by hand below.
TOUR_CONFIG = {"fail_max": 1, "success_threshold": 2, "throw_new_error_on_trip": True}
TOUR = [
    Call("function", False, "failure", 0),  # trips: CircuitBreakerError with the failure as context
    Call("function", True, "return", 0),  # rejected
    Other("wait_past_timeout"),
    Call("generator", True, "return", 2),  # half-open probe; one success of the two needed
    Call("calling", False, "failure", 0),  # half-open failure: open again
    Other("wait_past_timeout"),
    Call("generator", False, "close", 1),  # probe closed early: GeneratorExit is a failure
    Other("open"),  # open -> open
    Other("half_open"),
    Call("calling", False, "excluded_by_predicate", 0),  # ignored, yet a success for the threshold
    Call("generator", True, "excluded", 1),  # ignored; the second success closes the breaker
    Call("function", False, "own_breaker_error", 0),  # ran, so a failure (and a trip), not rejected
    Other("close"),
]


@settings(max_examples=300, deadline=None)
@given(config=CONFIGS, operations=SEQUENCES)
@example(config=TOUR_CONFIG, operations=TOUR)
def test_instrumented_breaker_behaves_as_uninstrumented_twin(
    config: dict[str, Any], operations: list[Operation]
) -> None:
    assert _wrapped_attributes() == [], "the twin must run on uninstrumented pybreaker"
    truth = Runner(config)(operations)
    _label(truth)

    with instrumented_with(PyBreakerInstrumentor) as telemetry:
        assert "CircuitBreaker.call" in _wrapped_attributes()
        instrumented = Runner(config)
        assert instrumented(operations).steps == truth.steps
        _assert_telemetry(telemetry, instrumented.breaker.name, truth)


def test_ground_truth_of_the_tour() -> None:
    """The oracle itself, against outcomes worked out by hand from pybreaker's rules."""
    truth = Runner(TOUR_CONFIG)(TOUR)
    module = __name__
    assert [(call[BREAKER_STATE], call[OUTCOME], call.get(ERROR_TYPE)) for call in truth.calls] == [
        ("closed", "failure", f"{module}.ServiceDown"),
        ("open", "rejected", "pybreaker.CircuitBreakerError"),
        ("half_open", "success", None),
        ("half_open", "failure", f"{module}.ServiceDown"),
        ("half_open", "failure", "GeneratorExit"),
        ("half_open", "ignored", f"{module}.SoftError"),
        ("half_open", "ignored", f"{module}.BusinessError"),
        ("closed", "failure", "pybreaker.CircuitBreakerError"),
    ]
    assert [(t[BREAKER_PREVIOUS_STATE], t[BREAKER_STATE]) for t in truth.transitions] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
        ("closed", "open"),
        ("open", "closed"),
    ]
    tripped, probe_closed = truth.steps[0], truth.steps[6]
    assert tripped.error == (
        pybreaker.CircuitBreakerError,
        ("Failures threshold reached, circuit breaker opened",),
        ServiceDown,
    )
    assert probe_closed.error == (
        pybreaker.CircuitBreakerError,
        ("Trial call failed, circuit breaker opened",),
        GeneratorExit,
    )
    assert probe_closed.yielded == ((6, 0),)
