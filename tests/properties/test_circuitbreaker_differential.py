"""Differential property test: an instrumented circuitbreaker behaves exactly like an uninstrumented twin.

Each example draws a breaker configuration (threshold, fallback or not) and a sequence of steps:
calls that return, fail (``expected_exception``), raise an exception the breaker does not count,
through ``@breaker`` on functions and generators (consumed, or closed mid-way), ``breaker.call`` and
``with breaker:``; reads of ``state``; manual ``reset()``; the clock moving past
``recovery_timeout`` or not. The sequence runs on a fresh breaker while circuitbreaker is not
instrumented, then on a fresh breaker under ``CircuitBreakerInstrumentor`` with in-memory providers.

- Every step gives the same return value, exception (type, args, ``__context__`` type), yielded
  values, ``_state``, failure count and failure-predicate calls in both runs.
- The instrumented run's calls, spans and transitions equal the ground truth derived from what the
  uninstrumented run observably did: whether the guarded code ran and in which state, what it
  raised, the states the breaker went through (a lazy half-open step once per open period, when a
  step first looked at the breaker after ``recovery_timeout``).

The number of examples: ``pytest tests/properties/test_circuitbreaker_differential.py
--hypothesis-show-statistics``.
"""

from __future__ import annotations

import gc
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import circuitbreaker
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_resilience import contract as c
from otel_resilience.circuitbreaker import CircuitBreakerInstrumentor
from tests.support.breaker_steps import Call, Other, Step, sequences
from tests.support.telemetry import in_memory_telemetry

RECOVERY = 30
_serial = itertools.count()


class ServiceDown(Exception):
    """Counted by the breaker."""


class BusinessError(Exception):
    """Not counted: circuitbreaker resets (closes) the breaker on it."""


RAISED = {"failure": ServiceDown, "business": BusinessError}
ERROR_TYPES = {ServiceDown: f"{__name__}.ServiceDown", BusinessError: f"{__name__}.BusinessError"}


# Calls: ``decorated``, ``generator`` (a decorated generator function), ``call`` or ``with``, ending in
# ``return``, a key of ``RAISED``, or ``close`` (generators: closed after the first item). Other steps:
# ``wait_past_timeout``, ``wait_briefly``, ``read_state``, ``reset``.
ENDINGS = st.sampled_from(["return", "return", "failure", "failure", "business"])
STEPS = st.one_of(
    st.builds(Call, st.sampled_from(["decorated", "call", "with"]), ENDINGS),
    st.builds(Call, st.just("generator"), st.one_of(ENDINGS, st.just("close"))),
    st.just(Other("wait_past_timeout")),
    st.builds(Other, st.sampled_from(["wait_briefly", "read_state", "reset"])),
)
SEQUENCES = sequences(STEPS)
CONFIGS = st.fixed_dictionaries({"threshold": st.integers(1, 3), "fallback": st.booleans()})


class Clock:
    """Stands in for ``circuitbreaker.monotonic``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Seen:
    """What the application observes of one step."""

    result: Any
    error: tuple[type[BaseException], tuple[Any, ...], type] | None
    yielded: tuple[Any, ...]
    state: str
    failures: int
    asked: tuple[type[BaseException], ...]


@dataclass
class Run:
    seen: list[Seen] = field(default_factory=list)
    calls: Counter[tuple[str, str, str | None, bool]] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)


def observed(breaker: circuitbreaker.CircuitBreaker) -> str:
    if breaker._state == "open" and breaker.open_remaining <= 0:
        return "half_open"
    return str(breaker._state)


def run(config: dict[str, Any], steps: list[Step], clock: Clock) -> tuple[Run, circuitbreaker.CircuitBreaker]:
    asked: list[type[BaseException]] = []

    def is_failure(exc_type: type[BaseException], exc: BaseException) -> bool:
        asked.append(exc_type)
        return issubclass(exc_type, ServiceDown)

    def fallback(*args: Any) -> Any:
        return "fallback"

    def gen_fallback(*args: Any) -> Iterator[str]:
        yield "fallback"

    name = f"diff{next(_serial)}"  # breakers of earlier examples may live on (in tracebacks) and be observed
    breaker = circuitbreaker.CircuitBreaker(
        failure_threshold=config["threshold"],
        recovery_timeout=RECOVERY,
        expected_exception=is_failure,
        name=name,
        fallback_function=fallback if config["fallback"] else None,
    )
    ran: list[bool] = []

    def body(ending: str) -> str:
        ran.append(True)
        if ending in RAISED:
            raise RAISED[ending](ending)
        return "value"

    def gen_body(ending: str) -> Iterator[int]:
        ran.append(True)
        yield 1
        if ending in RAISED:
            raise RAISED[ending](ending)
        yield 2

    decorated = breaker(body)
    decorated_gen = breaker.decorate(gen_body)  # one breaker may guard several functions
    out = Run()
    noticed: float | None = None
    for step in steps:
        asked.clear()
        ran.clear()
        result: Any = None
        error = None
        yielded: list[Any] = []
        touches = not (isinstance(step, Other) and step.action.startswith("wait"))
        if (
            touches
            and breaker._state == "open"
            and breaker.open_remaining <= 0
            and noticed != breaker._opened
        ):
            noticed = breaker._opened
            out.transitions["open", "half_open"] += 1
        before, opened_before = observed(breaker), breaker._opened
        if config["fallback"]:  # a generator's fallback must be a generator function too
            generator = isinstance(step, Call) and step.form == "generator"
            breaker._fallback_function = gen_fallback if generator else fallback
        try:
            if isinstance(step, Other):
                if step.action == "wait_past_timeout":
                    clock.now += RECOVERY
                elif step.action == "wait_briefly":
                    clock.now += 1
                elif step.action == "read_state":
                    result = breaker.state
                else:
                    breaker.reset()
            elif step.form == "decorated":
                result = decorated(step.ending)
            elif step.form == "call":
                result = breaker.call(body, step.ending)
            elif step.form == "with":
                with breaker:
                    result = body(step.ending)
            else:
                stream = decorated_gen(step.ending if step.ending != "close" else "return")
                for item in stream:
                    yielded.append(item)
                    if step.ending == "close":
                        stream.close()
        except Exception as exc:
            error = (type(exc), exc.args, type(exc.__context__))
        after = str(breaker._state)
        if (after == "open" and breaker._opened != opened_before) or (after == "closed" != before):
            out.transitions[before, after] += 1
        if isinstance(step, Call):
            if not ran:
                out.calls[
                    "open", "rejected", None if config["fallback"] else REJECTED, config["fallback"]
                ] += 1
            elif error is None and step.ending == "close":
                out.calls[before, "ignored", "GeneratorExit", False] += 1
            elif error is None:
                out.calls[before, "success", None, False] += 1
            else:
                raised = error[0]
                outcome = "failure" if raised is ServiceDown else "ignored"
                out.calls[before, outcome, ERROR_TYPES[raised], False] += 1
        out.seen.append(
            Seen(result, error, tuple(yielded), str(breaker._state), breaker._failure_count, tuple(asked))
        )
    if breaker._state == "open" and breaker.open_remaining <= 0 and noticed != breaker._opened:
        out.transitions["open", "half_open"] += 1  # noticed by the metric collection
    return out, breaker


REJECTED = "circuitbreaker.CircuitBreakerError"


@settings(max_examples=100, deadline=None)  # 300 pass too, in 8 minutes
@given(CONFIGS, SEQUENCES)
def test_instrumented_breaker_behaves_as_uninstrumented_and_telemetry_tells_the_truth(
    config: dict[str, Any], steps: list[Step]
) -> None:
    with mock.patch.object(circuitbreaker, "monotonic", Clock()) as clock:
        bare = run(config, steps, clock)[0]  # its breaker is freed before instrument() looks for breakers
    gc.collect()  # earlier examples' breakers, found by instrument(), would be observed too
    t = in_memory_telemetry()
    instrumentor = CircuitBreakerInstrumentor()
    instrumentor.instrument(
        tracer_provider=t.tracer_provider, meter_provider=t.meter_provider, max_names=1_000_000
    )
    try:
        with mock.patch.object(circuitbreaker, "monotonic", Clock()) as clock:
            instrumented, breaker = run(config, steps, clock)
            t.reader.collect()  # notices a due half-open step, as the uninstrumented run predicts
            name = breaker.name
            points = t.values(c.BREAKER_CALLS.name, c.BREAKER_NAME, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE)
            moves = t.values(
                c.BREAKER_TRANSITIONS.name, c.BREAKER_NAME, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE
            )
    finally:
        instrumentor.uninstrument()
    assert instrumented.seen == bare.seen
    expected_calls = Counter({(s, o, e): n for (s, o, e, _), n in bare.calls.items()})
    assert {k[1:]: v for k, v in points.items() if k[0] == name} == dict(expected_calls)
    reported = {k[1:]: v for k, v in moves.items() if k[0] == name}
    assert reported == dict(bare.transitions), (reported, bare.transitions)
    call_spans = Counter(
        (
            s.attributes[c.BREAKER_STATE],
            s.attributes[c.OUTCOME],
            s.attributes.get(c.ERROR_TYPE),
            bool(s.attributes.get(c.BREAKER_FALLBACK)),
        )
        for s in t.spans()
        if s.name == name
    )
    assert call_spans == bare.calls
