"""Differential property test: instrumented purgatory behaves exactly like uninstrumented purgatory.

Each example draws a factory (sync or async), a form (decorator or ``with``/``async with`` a breaker
from ``get_breaker``), a threshold and a sequence of steps: calls that return, raise a counted error
or an excluded one, and clock advances past the TTL (purgatory's clock is replaced by a fake one in
both runs). It runs once uninstrumented, then under ``PurgatoryInstrumentor``.

- Both runs must give the same results and exceptions (type, arguments; rejections as such), the
  same breaker state and failure count after every step, and the same events to a listener added
  with ``add_listener``.
- The instrumented run's calls and transitions must equal the ground truth derived from the
  uninstrumented run: each call's state (read inside the block, or ``open`` for a rejection) and
  how it ended, and the states the listener saw.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import purgatory.domain.model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from purgatory import AsyncCircuitBreakerFactory, SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from otel_resilience import contract as c
from otel_resilience.purgatory import PurgatoryInstrumentor
from tests.support.telemetry import Telemetry
from tests.support.twins import run_twins

EXAMPLES = 150
TTL = 10.0
STATES = {"closed": "closed", "opened": "open", "half-opened": "half_open"}
_run: Counter[str] = Counter()


class Boom(Exception):
    pass


class Excluded(Exception):
    pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def run_once(is_async: bool, form: str, threshold: int, steps: list[str]) -> dict[str, Any]:
    clock = FakeClock()
    real_time = purgatory.domain.model.time
    purgatory.domain.model.time = clock  # type: ignore[assignment]
    try:
        return (
            asyncio.run(_run_async(form, threshold, steps, clock))
            if is_async
            else _run_sync(form, threshold, steps, clock)
        )
    finally:
        purgatory.domain.model.time = real_time


def _listener(events: list[tuple[Any, ...]]) -> Any:
    def hook(name: str, kind: str, event: Any) -> None:
        events.append((name, kind, getattr(event, "state", None), getattr(event, "failure_count", None)))

    return hook


def _run_sync(form: str, threshold: int, steps: list[str], clock: FakeClock) -> dict[str, Any]:
    factory = SyncCircuitBreakerFactory(default_threshold=threshold, default_ttl=TTL, exclude=[Excluded])
    events: list[tuple[Any, ...]] = []
    factory.add_listener(_listener(events))
    seen: list[Any] = []

    def body(kind: str) -> Any:
        state = factory.get_breaker("svc").context.state  # memory storage: the same Context
        if kind == "boom":
            raise Boom(state)
        if kind == "excluded":
            raise Excluded(state)
        return state

    @factory("svc")
    def decorated(kind: str) -> Any:
        return body(kind)

    for kind in steps:
        if kind == "advance":
            clock.now += TTL + 1
            continue
        try:
            if form == "decorator":
                seen.append(("returned", decorated(kind)))
            else:
                with factory.get_breaker("svc"):
                    seen.append(("returned", body(kind)))
        except OpenedState:
            seen.append(("rejected",))
        except (Boom, Excluded) as exc:
            seen.append(("raised", type(exc).__name__, exc.args))
        context = factory.get_breaker("svc").context
        seen.append(("state", context.state, context.failure_count))
    return {"seen": seen, "events": events}


async def _run_async(form: str, threshold: int, steps: list[str], clock: FakeClock) -> dict[str, Any]:
    factory = AsyncCircuitBreakerFactory(default_threshold=threshold, default_ttl=TTL, exclude=[Excluded])
    events: list[tuple[Any, ...]] = []
    factory.add_listener(_listener(events))
    seen: list[Any] = []

    async def body(kind: str) -> Any:
        await asyncio.sleep(0)
        state = (await factory.get_breaker("svc")).context.state
        if kind == "boom":
            raise Boom(state)
        if kind == "excluded":
            raise Excluded(state)
        return state

    @factory("svc")
    async def decorated(kind: str) -> Any:
        return await body(kind)

    for kind in steps:
        if kind == "advance":
            clock.now += TTL + 1
            continue
        try:
            if form == "decorator":
                seen.append(("returned", await decorated(kind)))
            else:
                async with await factory.get_breaker("svc"):
                    seen.append(("returned", await body(kind)))
        except OpenedState:
            seen.append(("rejected",))
        except (Boom, Excluded) as exc:
            seen.append(("raised", type(exc).__name__, exc.args))
        context = (await factory.get_breaker("svc")).context
        seen.append(("state", context.state, context.failure_count))
    return {"seen": seen, "events": events}


def truth(bare: dict[str, Any]) -> dict[str, Any]:
    calls: Counter[tuple[str, str]] = Counter()
    for entry in bare["seen"]:
        if entry[0] == "rejected":
            calls["open", "rejected"] += 1
        elif entry[0] == "returned":
            calls[STATES[entry[1]], "success"] += 1
        elif entry[0] == "raised":
            calls[STATES[entry[2][0]], "failure" if entry[1] == "Boom" else "ignored"] += 1
    transitions: Counter[tuple[str, str]] = Counter()
    previous = "closed"
    for _, kind, state, _ in bare["events"]:
        if kind == "state_changed":
            transitions[STATES[state], previous] += 1
            previous = STATES[state]
    return {"calls": dict(calls), "transitions": dict(transitions)}


def observed(telemetry: Telemetry) -> dict[str, Any]:
    calls = telemetry.values("resilience.circuit_breaker.calls", c.BREAKER_STATE, c.OUTCOME)
    transitions = telemetry.values(
        "resilience.circuit_breaker.transitions", c.BREAKER_STATE, c.BREAKER_PREVIOUS_STATE
    )
    return {
        "calls": {k: int(v) for k, v in calls.items()},
        "transitions": {k: int(v) for k, v in transitions.items()},
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    is_async=st.booleans(),
    form=st.sampled_from(["decorator", "context"]),
    threshold=st.integers(1, 3),
    steps=st.lists(st.sampled_from(["ok", "boom", "excluded", "advance"]), max_size=12),
)
def test_instrumented_equals_uninstrumented(
    is_async: bool, form: str, threshold: int, steps: list[str]
) -> None:
    bare, instrumented, telemetry = run_twins(
        PurgatoryInstrumentor, lambda: run_once(is_async, form, threshold, steps)
    )
    assert instrumented == bare
    assert observed(telemetry) == truth(bare)
    _run[f"{'async' if is_async else 'sync'}/{form}"] += 1


def test_examples_ran() -> None:
    """Printed with ``pytest -s``: how many examples each form ran (runs after the property test)."""
    print("purgatory differential examples:", dict(_run))
    assert sum(_run.values()) == EXAMPLES
