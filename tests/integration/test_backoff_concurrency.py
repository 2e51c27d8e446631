"""8 threads (and 8 asyncio tasks) share decorated functions: the totals are exact.

backoff keeps each call's loop state in the loop's own frame, and the instrumentation keeps each
operation in a context variable: nothing is shared between calls but the SDK's instruments.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import backoff

from otel_resilience import contract as c
from otel_resilience.backoff import BackoffInstrumentor
from tests.support.telemetry import Telemetry, instrumented_fixture

THREADS = 8
CALLS = 250


class Flaky(Exception):
    pass


instrumented = instrumented_fixture(BackoffInstrumentor)


def test_threads_exact_totals(instrumented: Telemetry) -> None:
    local = threading.local()

    @backoff.on_exception(backoff.constant, Flaky, interval=0, max_tries=3, jitter=None)
    def call(failures: int) -> int:
        local.n = getattr(local, "n", 0) + 1
        if local.n <= failures:
            raise Flaky()
        return 1

    def worker(index: int) -> Counter[str]:
        seen: Counter[str] = Counter()
        for i in range(CALLS):
            failures = (index + i) % 4  # 0-2 recovers, 3 gives up
            local.n = 0
            try:
                call(failures)
                seen["success_with_retry" if failures else "success_without_retry"] += 1
            except Flaky:
                seen["failed_with_retry"] += 1
            seen["attempts"] += min(failures + 1, 3)
        return seen

    with ThreadPoolExecutor(THREADS) as pool:
        totals = sum(pool.map(worker, range(THREADS)), Counter())
    calls = instrumented.values("resilience.retry.calls", c.OUTCOME)
    assert {k[0]: int(v) for k, v in calls.items()} == {k: v for k, v in totals.items() if k != "attempts"}
    assert sum(instrumented.values("resilience.retry.attempts", c.OUTCOME).values()) == totals["attempts"]
    assert len(instrumented.spans()) == THREADS * CALLS + totals["attempts"]


def test_tasks_exact_totals(instrumented: Telemetry) -> None:
    @backoff.on_exception(backoff.constant, Flaky, interval=0, max_tries=2, jitter=None)
    async def call(script: list[bool]) -> int:
        await asyncio.sleep(0)
        if script.pop(0):
            raise Flaky()
        return 1

    async def main() -> None:
        await asyncio.gather(*(call([i % 2 == 0, False]) for i in range(THREADS * 50)))

    asyncio.run(main())
    calls = instrumented.values("resilience.retry.calls", c.OUTCOME)
    assert {k[0]: int(v) for k, v in calls.items()} == {
        "success_with_retry": THREADS * 25,
        "success_without_retry": THREADS * 25,
    }
