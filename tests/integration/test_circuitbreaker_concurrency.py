"""8 threads on one circuitbreaker breaker: every call is counted once, with the outcome it had.

circuitbreaker has no locks: its failure count (``_failure_count += 1``) loses updates under threads,
and its transitions follow from those racy counts. So the breaker's own totals (failures counted,
when it trips) are not exact, and neither can the transitions reported from them be more exact than
what the library did. What this instrumentation adds is exact: one call record per call, with the
outcome the caller saw (returned, raised its own exception, or got ``CircuitBreakerError``).
"""

from __future__ import annotations

import pytest
from circuitbreaker import CircuitBreaker, CircuitBreakerError

from otel_resilience import contract as c
from otel_resilience.circuitbreaker import CircuitBreakerInstrumentor
from tests.support.telemetry import Telemetry, instrumented_fixture
from tests.support.threads import Tally, run_threads

THREADS = 8
CALLS = 500


class Boom(Exception):
    pass


instrumented = instrumented_fixture(CircuitBreakerInstrumentor)


@pytest.mark.parametrize("form", ["decorated", "with"])
def test_eight_threads_every_call_counted_once(instrumented: Telemetry, form: str) -> None:
    breaker = CircuitBreaker(name=f"threads-{form}", failure_threshold=3, recovery_timeout=0.001)

    def work(i: int) -> int:
        if i % 4 == 0:
            raise Boom("down")
        return i

    guarded = breaker(work)
    seen = Tally()

    def worker(_: int) -> None:
        for i in range(CALLS):
            try:
                if form == "decorated":
                    guarded(i)
                else:
                    with breaker:
                        work(i)
                outcome = "returned"
            except Boom:
                outcome = "raised"
            except CircuitBreakerError:
                outcome = "rejected"
            seen.add(outcome)

    run_threads(THREADS, worker)

    totals = instrumented.values(c.BREAKER_CALLS.name, c.BREAKER_NAME, c.OUTCOME)
    name = breaker.name
    by_outcome = {outcome: value for (n, outcome), value in totals.items() if n == name}
    assert sum(by_outcome.values()) == THREADS * CALLS
    assert by_outcome.get("success", 0) == seen["returned"]
    assert by_outcome.get("failure", 0) == seen["raised"]
    assert by_outcome.get("rejected", 0) == seen["rejected"]
    spans = [s for s in instrumented.spans() if s.name == name]
    assert len(spans) == THREADS * CALLS
