"""8 threads call through one purgatory breaker: every call is counted, by what it did.

purgatory takes no locks: threads share one state object per circuit (memory storage), so which
state a call runs in, and when the breaker trips, depends on the interleaving (several calls can
run in half-open; a failure can be counted after another thread closed the breaker). The totals by
outcome are still exact: each call is recorded once, as purgatory treated it, and the application
sees the same thing. Transitions are exact too: each ``set_state`` is counted once.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from purgatory import SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from otel_resilience import contract as c
from otel_resilience.purgatory import PurgatoryInstrumentor
from tests.support.telemetry import Telemetry, instrumented_fixture

THREADS = 8
CALLS = 500


class Boom(Exception):
    pass


class Excluded(Exception):
    pass


instrumented = instrumented_fixture(PurgatoryInstrumentor)


@pytest.mark.parametrize("threshold", [2, 10_000])
def test_threads_exact_totals(instrumented: Telemetry, threshold: int) -> None:
    factory = SyncCircuitBreakerFactory(default_threshold=threshold, default_ttl=0.001, exclude=[Excluded])
    events: list[str] = []
    factory.add_listener(lambda name, kind, event: events.append(kind))

    @factory("shared")
    def call(kind: int) -> None:
        if kind in (0, 1):  # two failures in a row: a threshold of 2 trips
            raise Boom()
        if kind == 2:
            raise Excluded()

    def worker(index: int) -> Counter[str]:
        seen: Counter[str] = Counter()
        for i in range(CALLS):
            try:
                call((index + i) % 4)
                seen["success"] += 1
            except Boom:
                seen["failure"] += 1
            except Excluded:
                seen["ignored"] += 1
            except OpenedState:
                seen["rejected"] += 1
        return seen

    with ThreadPoolExecutor(THREADS) as pool:
        totals = sum(pool.map(worker, range(THREADS)), Counter())
    calls = instrumented.values("resilience.circuit_breaker.calls", c.OUTCOME)
    assert {k[0]: int(v) for k, v in calls.items()} == dict(totals)
    # Only an open breaker rejects, and it lets nothing through, whatever the threads did meanwhile.
    by_state = instrumented.values("resilience.circuit_breaker.calls", c.BREAKER_STATE, c.OUTCOME)
    reported = [(state, outcome) for (state, outcome), count in by_state.items() if count]
    assert all((state == "open") == (outcome == "rejected") for state, outcome in reported), reported
    assert sum(totals.values()) == THREADS * CALLS
    assert (totals["rejected"] > 0) == (threshold == 2)
    transitions = instrumented.values("resilience.circuit_breaker.transitions", c.BREAKER_NAME)
    assert int(sum(transitions.values())) == events.count("state_changed")
