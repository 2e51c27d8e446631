"""An aiobreaker breaker on an ``async def``: what the telemetry shows.

Two failures trip the breaker (the second raises ``CircuitBreakerError`` from the original: its
``error.type`` is the original's), the next call is rejected, and after ``timeout_duration`` the
probe call moves the breaker to half-open and closes it: one call, in state ``half_open``::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \\
        --service_name aiobreaker-demo python examples/aiobreaker_app.py
"""

import asyncio
import contextlib
from datetime import timedelta

from aiobreaker import CircuitBreaker, CircuitBreakerError

breaker = CircuitBreaker(fail_max=2, timeout_duration=timedelta(seconds=0.5), name="inventory")
healthy = False


class ServiceDown(Exception):
    pass


@breaker
async def stock(item: str) -> int:
    await asyncio.sleep(0.01)
    if not healthy:
        raise ServiceDown("connection refused")
    return 12


async def main() -> None:
    global healthy  # noqa: PLW0603 - the example's service comes back
    for _ in range(3):
        with contextlib.suppress(ServiceDown, CircuitBreakerError):
            await stock("apple")
    print(f"breaker: {breaker.current_state.name}")
    await asyncio.sleep(0.6)
    healthy = True
    print(f"apple: {await stock('apple')}")
    print(f"breaker: {breaker.current_state.name}")


if __name__ == "__main__":
    asyncio.run(main())
