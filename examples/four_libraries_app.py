"""One service guarding its calls with all four issue-13 libraries at once; no OpenTelemetry code.

Run it under auto-instrumentation with the console exporters::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \\
        python examples/four_libraries_app.py

A circuitbreaker (fabfuel) breaker and an aiobreaker breaker guard coroutines, a purgatory breaker
guards a function, and a backoff retry runs in front of it. Each breaker's calls show as spans named
after the breaker, with the same attributes and the same ``resilience.circuit_breaker.*`` metrics;
the retried operation shows as one ``resilience.retry.*`` operation span with an attempt child each.
"""

from __future__ import annotations

import asyncio

import aiobreaker
import backoff
import circuitbreaker
from purgatory import SyncCircuitBreakerFactory

purgatory_breakers = SyncCircuitBreakerFactory(default_threshold=5)
stock = aiobreaker.CircuitBreaker(fail_max=5, name="stock")
answers = iter([ConnectionError("busy"), "paid"])


@circuitbreaker.circuit(failure_threshold=5, name="quotes")
async def quote() -> float:
    return 4.2


@stock
async def in_stock() -> int:
    return 3


@backoff.on_exception(backoff.constant, ConnectionError, max_tries=3, interval=0.01)
@purgatory_breakers("payments")
def pay() -> str:
    answer = next(answers)
    if isinstance(answer, Exception):
        raise answer
    return answer


async def main() -> None:
    print(f"quote {await quote()}, stock {await in_stock()}, payment {pay()}")


if __name__ == "__main__":
    asyncio.run(main())
