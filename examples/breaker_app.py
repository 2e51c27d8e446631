"""A service whose breaker trips, rejects and recovers; it knows nothing about OpenTelemetry.

Run it under auto-instrumentation with the console exporters::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        python examples/breaker_app.py
"""

from __future__ import annotations

import logging
import time

import pybreaker

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

inventory = pybreaker.CircuitBreaker(name="inventory", fail_max=2, reset_timeout=0.2)


class InventoryDown(Exception):
    pass


@inventory
def reserve(item: str, healthy: bool) -> str:
    if not healthy:
        raise InventoryDown(item)
    return f"reserved {item}"


def attempt(item: str, healthy: bool) -> None:
    try:
        print(reserve(item, healthy))
    except (InventoryDown, pybreaker.CircuitBreakerError) as exc:
        print(f"{item}: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    attempt("apple", healthy=True)  # success
    attempt("pear", healthy=False)  # failure
    attempt("plum", healthy=False)  # failure that trips the breaker
    attempt("fig", healthy=True)  # rejected: the breaker is open
    time.sleep(0.25)
    attempt("kiwi", healthy=True)  # half-open probe succeeds: closed again
    print("final state:", inventory.current_state)
