"""A breaker scenario the app runs with and without the instrumentation: success, failure, trip, rejection."""

from __future__ import annotations

import pybreaker


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom("down")


def exercise(breaker: pybreaker.CircuitBreaker) -> list[object]:
    """Success, failure, trip, rejection: what the app observes."""
    seen: list[object] = []
    for func in (lambda: "ok", fail, fail, lambda: "never"):
        try:
            seen.append(breaker.call(func))
        except Exception as exc:
            seen.append((type(exc), exc.args, type(exc.__context__)))
    return seen


UNINSTRUMENTED = [
    "ok",
    (Boom, ("down",), type(None)),
    (pybreaker.CircuitBreakerError, ("Failures threshold reached, circuit breaker opened",), Boom),
    (pybreaker.CircuitBreakerError, ("Timeout not elapsed yet, circuit breaker still open",), type(None)),
]
