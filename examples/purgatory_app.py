"""A client of a flaky inventory service behind a purgatory circuit breaker; no OpenTelemetry code.

Run it under auto-instrumentation with the console exporters::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        python examples/purgatory_app.py

Two failures trip the ``inventory`` breaker (threshold 2), the next call is rejected without
reaching the service, and after the TTL a half-open probe succeeds and closes it again. It prints
one ``inventory`` span per call (outcomes ``failure``, ``failure``, ``rejected``, ``success``), the
state changes as ``circuit_breaker.state_change`` events, and the ``resilience.circuit_breaker.*``
metrics when the SDK flushes them at exit.
"""

from __future__ import annotations

import logging
import time

from purgatory import SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

breakers = SyncCircuitBreakerFactory(default_threshold=2, default_ttl=0.2)


class InventoryDown(Exception):
    pass


answers = [InventoryDown("timeout"), InventoryDown("timeout"), "3 left"]


@breakers("inventory")
def inventory(item: str) -> str:
    answer = answers.pop(0)
    if isinstance(answer, Exception):
        raise answer
    return f"{item}: {answer}"


if __name__ == "__main__":
    for _ in range(3):
        try:
            print(inventory("apple"))
        except InventoryDown as exc:
            print("failed:", exc)
        except OpenedState:
            print("rejected: breaker open")
    time.sleep(0.3)
    print(inventory("apple"))
