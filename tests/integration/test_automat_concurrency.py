"""automat under 8 threads: exact totals.

automat has no locks: one instance driven from several threads at once is a data race in the
application (two inputs can read the same state). Each thread therefore drives its own instances
of one machine, as applications do; the totals over all threads must be exact.
"""

from __future__ import annotations

from typing import Any

from automat import NoTransition

from otel_resilience import contract as c
from otel_resilience.automat import AutomatInstrumentor
from tests.support.door import DOOR, Door
from tests.support.telemetry import Telemetry, options_fixture
from tests.support.threads import run_threads

instrument = options_fixture(AutomatInstrumentor)
THREADS = 8
ROUNDS = 300


def test_eight_threads_give_exact_totals(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    refused = [0] * THREADS
    doors = [Door() for _ in range(THREADS)]

    def worker(index: int) -> None:
        door = doors[index]
        for round_ in range(ROUNDS):
            try:
                door.open()
            except NoTransition:
                refused[index] += 1
            if round_ % 3:
                door.close()

    run_threads(THREADS, worker)

    triggers = telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_NAME, c.STATEMACHINE_OUTCOME)
    opens = THREADS * ROUNDS
    closes = THREADS * sum(1 for r in range(ROUNDS) if r % 3)
    assert triggers == {
        (DOOR, "refused"): sum(refused),
        (DOOR, "transitioned"): opens + closes - sum(refused),
    }
    transitions = telemetry.values(c.STATEMACHINE_TRANSITIONS.name, c.STATEMACHINE_NAME)
    assert transitions == {(DOOR,): opens + closes - sum(refused)}
    instances = {
        p.attributes[c.STATEMACHINE_STATE]: p.value
        for p in telemetry.points(c.STATEMACHINE_INSTANCES.name)
        if p.attributes[c.STATEMACHINE_NAME] == DOOR
    }
    assert instances["closed"] >= THREADS  # the last round closes every door
