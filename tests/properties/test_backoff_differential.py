"""Differential property test: instrumented backoff behaves exactly like uninstrumented backoff.

Each example draws a decorator (``on_exception`` or ``on_predicate``), a form (sync or ``async def``),
a policy (``max_tries`` 1-4, ``raise_on_giveup``, a ``giveup`` predicate for fatal errors) and a
sequence of steps the target takes (return a value, return a falsy value, raise a retryable or a
fatal error). The function is decorated and run once while backoff is not instrumented, then
decorated and run again under ``BackoffInstrumentor`` with in-memory SDK providers.

- Both runs must give the same results and exceptions (type, arguments, which step raised it), the
  same target calls and the same handler calls (``on_success``/``on_backoff``/``on_giveup`` with
  their ``tries``, ``wait``, ``value`` and ``exception``).
- The instrumented run's metrics and spans must equal the ground truth derived from what the
  uninstrumented run did: target calls, which of them failed, and what the caller finally got.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import backoff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_resilience import contract as c
from otel_resilience.backoff import BackoffInstrumentor
from tests.support.telemetry import Telemetry
from tests.support.twins import run_twins

EXAMPLES = 150
_run: Counter[str] = Counter()


class Retryable(Exception):
    pass


class Fatal(Retryable):
    """Retryable by type, but the ``giveup`` predicate (when drawn) stops at it."""


STEP = st.sampled_from(["value", "falsy", "retryable", "fatal"])


def run_once(decorator: str, is_async: bool, policy: dict[str, Any], steps: list[str]) -> dict[str, Any]:
    """Decorate a fresh target with the policy now, call it once; what the application saw."""
    pending = list(steps)
    target_calls: list[str] = []
    handlers: list[tuple[Any, ...]] = []

    def step() -> Any:
        kind = pending.pop(0) if pending else "value"
        target_calls.append(kind)
        if kind == "retryable":
            raise Retryable(len(target_calls))
        if kind == "fatal":
            raise Fatal(len(target_calls))
        return len(target_calls) if kind == "value" else 0

    def handler(kind: str) -> Any:
        def record(details: dict[str, Any]) -> None:
            exc = details.get("exception")
            handlers.append(
                (
                    kind,
                    details["tries"],
                    details.get("wait"),
                    details.get("value"),
                    None if exc is None else (type(exc).__name__, exc.args),
                    details["args"],
                    details["target"].__name__,
                )
            )

        return record

    options: dict[str, Any] = {
        "max_tries": policy["max_tries"],
        "on_success": handler("success"),
        "on_backoff": handler("backoff"),
        "on_giveup": handler("giveup"),
        "jitter": None,
        "interval": 0,
    }
    if decorator == "on_exception":
        options["raise_on_giveup"] = policy["raise_on_giveup"]
        if policy["giveup_on_fatal"]:
            options["giveup"] = lambda e: isinstance(e, Fatal)
        make = backoff.on_exception(backoff.constant, Retryable, **options)
    else:
        make = backoff.on_predicate(backoff.constant, **options)

    if is_async:

        async def atarget(x: int) -> Any:
            await asyncio.sleep(0)
            return step()

        decorated = make(atarget)

        def call() -> Any:
            return asyncio.run(decorated(1))
    else:

        def target(x: int) -> Any:
            return step()

        call = make(target)
    seen: dict[str, Any] = {}
    try:
        seen["result"] = call(1) if not is_async else call()
    except Exception as exc:
        seen["raised"] = (type(exc).__name__, exc.args)
    seen["target_calls"] = target_calls
    seen["handlers"] = handlers
    return seen


def truth(decorator: str, seen: dict[str, Any]) -> dict[str, Any]:
    """The telemetry the uninstrumented run's observable behaviour implies."""
    attempts: Counter[tuple[str, str | None]] = Counter()
    last_error: str | None = None
    for kind in seen["target_calls"]:
        if kind in ("retryable", "fatal"):
            last_error = f"{__name__}.{'Retryable' if kind == 'retryable' else 'Fatal'}"
        elif kind == "falsy" and decorator == "on_predicate":
            last_error = c.REJECTED_RESULT
        else:
            last_error = None
        attempts["failure" if last_error else "success", last_error] += 1
    failed = "raised" in seen or last_error is not None
    retried = len(seen["target_calls"]) > 1
    outcome = {
        (False, False): "success_without_retry",
        (False, True): "success_with_retry",
        (True, False): "failed_without_retry",
        (True, True): "failed_with_retry",
    }[failed, retried]
    backoffs = sum(1 for h in seen["handlers"] if h[0] == "backoff")
    return {
        "calls": {(outcome, last_error if failed else None): 1},
        "attempts": dict(attempts),
        "backoffs": backoffs,
        "spans": 1 + len(seen["target_calls"]),
    }


def observed(telemetry: Telemetry) -> dict[str, Any]:
    calls = telemetry.values("resilience.retry.calls", c.OUTCOME, c.ERROR_TYPE)
    attempts = telemetry.values("resilience.retry.attempts", c.OUTCOME, c.ERROR_TYPE)
    backoffs = telemetry.values("resilience.retry.backoff.duration", c.RETRY_NAME)
    return {
        "calls": {k: int(v) for k, v in calls.items()},
        "attempts": {k: int(v) for k, v in attempts.items()},
        "backoffs": int(sum(backoffs.values())),
        "spans": len(telemetry.spans()),
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    decorator=st.sampled_from(["on_exception", "on_predicate"]),
    is_async=st.booleans(),
    policy=st.fixed_dictionaries(
        {
            "max_tries": st.integers(1, 4),
            "raise_on_giveup": st.booleans(),
            "giveup_on_fatal": st.booleans(),
        }
    ),
    steps=st.lists(STEP, max_size=5),
)
def test_instrumented_equals_uninstrumented(
    decorator: str, is_async: bool, policy: dict[str, Any], steps: list[str]
) -> None:
    if decorator == "on_predicate":
        steps = [s for s in steps if s not in ("retryable", "fatal")] or steps[:1]
    bare, instrumented, telemetry = run_twins(
        BackoffInstrumentor, lambda: run_once(decorator, is_async, policy, steps)
    )
    assert instrumented == bare
    assert observed(telemetry) == truth(decorator, bare)
    _run[f"{decorator}/{'async' if is_async else 'sync'}"] += 1


def test_examples_ran() -> None:
    """Printed with ``pytest -s``: how many examples each form ran (runs after the property test)."""
    print("backoff differential examples:", dict(_run))
    assert sum(_run.values()) == EXAMPLES
