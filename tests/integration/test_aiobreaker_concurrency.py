"""8 threads (``breaker.call``) and 400 tasks (``call_async``) on one aiobreaker breaker: every call is
counted once, with the outcome the caller saw.

aiobreaker has no locks: its failure counter loses updates under threads, and in half-open it lets
every concurrent call through. Its own totals are not exact, so neither are the transitions that
follow from them (they are what the library did). One call record per call is exact.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from aiobreaker import CircuitBreaker, CircuitBreakerError

from otel_resilience import contract as c
from otel_resilience.aiobreaker import AioBreakerInstrumentor
from tests.support.telemetry import Telemetry, instrumented_fixture
from tests.support.threads import Tally, run_threads

THREADS = 8
CALLS = 500


class Boom(Exception):
    pass


instrumented = instrumented_fixture(AioBreakerInstrumentor)


def work(i: int) -> int:
    if i % 4 == 0:
        raise Boom("down")
    return i


def outcomes(t: Telemetry, name: str) -> dict[str, float]:
    totals = t.values(c.BREAKER_CALLS.name, c.BREAKER_NAME, c.OUTCOME)
    return {outcome: value for (n, outcome), value in totals.items() if n == name}


def seen_as(call: object) -> str:
    try:
        call()  # type: ignore[operator]
    except Boom:
        return "failure"
    except CircuitBreakerError as exc:
        return "failure" if exc.__cause__ is not None else "rejected"
    return "success"


def test_eight_threads_every_call_counted_once(instrumented: Telemetry) -> None:
    breaker = CircuitBreaker(fail_max=3, timeout_duration=timedelta(milliseconds=1), name="threads")
    seen = Tally()

    def worker(_: int) -> None:
        for i in range(CALLS):
            seen.add(seen_as(lambda i=i: breaker.call(work, i)))

    run_threads(THREADS, worker)
    assert sum(seen.values()) == THREADS * CALLS
    assert outcomes(instrumented, "threads") == {k: v for k, v in seen.items() if v}
    assert len([s for s in instrumented.spans() if s.name == "threads"]) == THREADS * CALLS


async def test_concurrent_tasks_every_call_counted_once(instrumented: Telemetry) -> None:
    breaker = CircuitBreaker(fail_max=3, timeout_duration=timedelta(milliseconds=1), name="tasks")

    async def async_work(i: int) -> int:
        await asyncio.sleep(0.001 * (i % 3))
        return work(i)

    async def one(i: int) -> str:
        try:
            await breaker.call_async(async_work, i)
        except Boom:
            return "failure"
        except CircuitBreakerError as exc:
            return "failure" if exc.__cause__ is not None else "rejected"
        return "success"

    seen = Counter(await asyncio.gather(*(one(i) for i in range(400))))
    assert outcomes(instrumented, "tasks") == dict(seen)
