"""A circuitbreaker (fabfuel) breaker on an ``async def``, with a fallback: what the telemetry shows.

circuitbreaker guards coroutines itself, so the calls below have real outcomes: two failures trip the
breaker, the next call is rejected and served by the fallback (outcome ``rejected``, span attribute
``resilience.circuit_breaker.fallback``), and after ``recovery_timeout`` the probe call succeeds and
closes it (the open -> half_open step is reported dated when it became true)::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \\
        --service_name circuitbreaker-demo python examples/circuitbreaker_app.py
"""

import asyncio
import contextlib

from circuitbreaker import circuit


class ServiceDown(Exception):
    pass


async def cached_price(item: str) -> str:
    return "4.00 (cached)"


healthy = False


@circuit(failure_threshold=2, recovery_timeout=1, name="prices", fallback_function=cached_price)
async def fetch_price(item: str) -> str:
    await asyncio.sleep(0.01)
    if not healthy:
        raise ServiceDown("connection refused")
    return "4.20"


async def main() -> None:
    global healthy  # noqa: PLW0603 - the example's service comes back
    for _ in range(2):
        with contextlib.suppress(ServiceDown):
            await fetch_price("apple")
    print(f"apple: {await fetch_price('apple')}")
    await asyncio.sleep(1.1)
    healthy = True
    print(f"apple: {await fetch_price('apple')}")


if __name__ == "__main__":
    asyncio.run(main())
