"""Differential property test: an instrumented aiobreaker breaker behaves exactly like an uninstrumented twin.

Each example draws a configuration (``fail_max``) and a sequence of steps: calls that return, fail or
raise an excluded exception, through ``breaker.call``, ``await breaker.call_async`` and ``@breaker``
on an ``async def``; manual ``open()``/``half_open()``/``close()``; the clock moving past
``timeout_duration`` or not. The sequence runs on a fresh breaker while aiobreaker is not
instrumented, then on a fresh breaker under ``AioBreakerInstrumentor``.

- Every step gives the same return value, exception (type, args, ``__cause__`` type), state, failure
  count and listener events in both runs.
- The instrumented run's calls (state, outcome, ``error.type``), spans and transitions equal the
  ground truth derived from the uninstrumented run: whether the function ran, the listener's
  ``failure``/``success`` events and its ``state_change`` events (an open breaker's re-entry on its
  way to half-open is one call in state ``half_open``).

The number of examples: ``pytest tests/properties/test_aiobreaker_differential.py
--hypothesis-show-statistics``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import aiobreaker.circuitbreaker
import aiobreaker.state
from aiobreaker import CircuitBreaker, CircuitBreakerListener
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_resilience import contract as c
from otel_resilience.aiobreaker import AioBreakerInstrumentor
from tests.support.breaker_steps import Call, Other, Step, sequences
from tests.support.telemetry import in_memory_telemetry

TIMEOUT = timedelta(seconds=30)
REJECTED = "aiobreaker.state.CircuitBreakerError"
STATES = {"CLOSED": "closed", "OPEN": "open", "HALF_OPEN": "half_open"}
_serial = itertools.count()


class ServiceDown(Exception):
    """Counted by the breaker."""


class BusinessError(Exception):
    """Excluded: aiobreaker counts it as a success and re-raises it."""


RAISED = {"failure": ServiceDown, "excluded": BusinessError}


# Calls: ``call``, ``call_async`` or ``decorated`` (an ``async def`` under ``@breaker``). Other steps:
# ``open``, ``half_open``, ``close``, ``wait_past_timeout``, ``wait_briefly``.
STEPS = st.one_of(
    st.builds(
        Call,
        st.sampled_from(["call", "call_async", "decorated"]),
        st.sampled_from(["return", "return", "failure", "failure", "excluded"]),
    ),
    st.just(Other("wait_past_timeout")),
    st.builds(Other, st.sampled_from(["open", "half_open", "close", "wait_briefly"])),
)
SEQUENCES = sequences(STEPS)


class Clock:
    """Stands in for ``datetime`` in aiobreaker's modules: ``utcnow()`` and ``now()`` move on request."""

    def __init__(self) -> None:
        self.current = datetime(2025, 1, 1)

    def utcnow(self) -> datetime:
        return self.current

    def now(self) -> datetime:
        return self.current


class Listener(CircuitBreakerListener):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def before_call(self, cb: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        self.events.append(("before_call",))

    def success(self, cb: Any) -> None:
        self.events.append(("success",))

    def failure(self, cb: Any, exc: BaseException) -> None:
        self.events.append(("failure", type(exc)))

    def state_change(self, cb: Any, old: Any, new: Any) -> None:
        self.events.append(("state_change", old.state.name if old else None, new.state.name))


@dataclass(frozen=True)
class Seen:
    result: Any
    error: tuple[type[BaseException], tuple[Any, ...], type] | None
    state: str
    failures: int
    events: tuple[tuple[Any, ...], ...]


@dataclass
class Run:
    seen: list[Seen] = field(default_factory=list)
    calls: Counter[tuple[str, str, str | None]] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)


def run(fail_max: int, steps: list[Step], clock: Clock, name: str) -> Run:
    listener = Listener()
    breaker = CircuitBreaker(
        fail_max=fail_max, timeout_duration=TIMEOUT, exclude=[BusinessError], listeners=[listener], name=name
    )
    ran: list[bool] = []

    def body(ending: str) -> str:
        ran.append(True)
        if ending in RAISED:
            raise RAISED[ending](ending)
        return "value"

    async def async_body(ending: str) -> str:
        await asyncio.sleep(0)
        return body(ending)

    decorated = breaker(async_body)
    loop = asyncio.new_event_loop()
    out = Run()
    try:
        for step in steps:
            listener.events.clear()
            ran.clear()
            result: Any = None
            error = None
            state_before = STATES[breaker._state.state.name]
            try:
                if isinstance(step, Other):
                    if step.action == "wait_past_timeout":
                        clock.current += TIMEOUT
                    elif step.action == "wait_briefly":
                        clock.current += timedelta(seconds=1)
                    else:
                        getattr(breaker, step.action)()
                elif step.form == "call":
                    result = breaker.call(body, step.ending)
                elif step.form == "call_async":
                    result = loop.run_until_complete(breaker.call_async(async_body, step.ending))
                else:
                    result = loop.run_until_complete(decorated(step.ending))
            except Exception as exc:
                error = (type(exc), exc.args, type(exc.__cause__))
            changes = [(STATES[e[1]], STATES[e[2]]) for e in listener.events if e[0] == "state_change"]
            out.transitions.update(changes)
            if isinstance(step, Call):
                if not ran:
                    out.calls["open", "rejected", REJECTED] += 1
                else:
                    state = "half_open" if changes[:1] == [("open", "half_open")] else state_before
                    if ("failure", RAISED.get(step.ending)) in listener.events:
                        out.calls[state, "failure", f"{__name__}.{RAISED[step.ending].__name__}"] += 1
                    elif step.ending == "excluded":
                        out.calls[state, "ignored", f"{__name__}.BusinessError"] += 1
                    else:
                        out.calls[state, "success", None] += 1
            out.seen.append(
                Seen(result, error, breaker.current_state.name, breaker.fail_counter, tuple(listener.events))
            )
    finally:
        loop.close()
    return out


def run_with_clock(fail_max: int, steps: list[Step], name: str) -> Run:
    clock = Clock()
    with (
        mock.patch.object(aiobreaker.state, "datetime", clock),
        mock.patch.object(aiobreaker.circuitbreaker, "datetime", clock),
    ):
        return run(fail_max, steps, clock, name)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3), SEQUENCES)
def test_instrumented_breaker_behaves_as_uninstrumented_and_telemetry_tells_the_truth(
    fail_max: int, steps: list[Step]
) -> None:
    name = f"diff{next(_serial)}"
    bare = run_with_clock(fail_max, steps, name)
    gc.collect()  # the bare run's breaker is not among those instrument() finds
    t = in_memory_telemetry()
    instrumentor = AioBreakerInstrumentor()
    instrumentor.instrument(
        tracer_provider=t.tracer_provider, meter_provider=t.meter_provider, max_names=1_000_000
    )
    try:
        instrumented = run_with_clock(fail_max, steps, name)
        points = t.values(c.BREAKER_CALLS.name, c.BREAKER_NAME, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE)
        moves = t.values(
            c.BREAKER_TRANSITIONS.name, c.BREAKER_NAME, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE
        )
    finally:
        instrumentor.uninstrument()
    assert instrumented.seen == bare.seen
    assert {k[1:]: v for k, v in points.items() if k[0] == name} == dict(bare.calls)
    assert {k[1:]: v for k, v in moves.items() if k[0] == name} == dict(bare.transitions)
    spans = Counter(
        (s.attributes[c.BREAKER_STATE], s.attributes[c.OUTCOME], s.attributes.get(c.ERROR_TYPE))
        for s in t.spans()
        if s.name == name
    )
    assert spans == bare.calls
