"""A pybreaker breaker on an ``async def``, with a tenacity retry inside: what the telemetry shows.

pybreaker has no asyncio support: it counts each call a success when the coroutine is created, so
the breaker below never opens while ``fetch`` keeps failing. Run it under the instrumentation to see
the calls as they really ended (outcome ``unguarded``, status ERROR, the retry operation as a
child of the breaker call) and the ``breaker_blind_to_async`` finding::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \\
        --service_name async-demo python examples/async_breaker_app.py
"""

import asyncio
import contextlib

import pybreaker
from tenacity import AsyncRetrying, stop_after_attempt, wait_fixed

breaker = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=30, name="service")


class ServiceDown(Exception):
    pass


async def fetch() -> str:
    raise ServiceDown("connection refused")


@breaker
async def call_service() -> str:
    async for attempt in AsyncRetrying(stop=stop_after_attempt(3), wait=wait_fixed(0.01), reraise=True):
        with attempt:
            return await fetch()
    raise AssertionError("unreachable: reraise=True re-raises the last error")


async def main() -> None:
    for _ in range(6):
        with contextlib.suppress(ServiceDown):
            await call_service()
    print(f"breaker state: {breaker.current_state}, fail_counter: {breaker.fail_counter}")


if __name__ == "__main__":
    asyncio.run(main())
