"""automat under 8 threads: exact totals.

automat has no locks: one instance driven from several threads at once is a data race in the
application (two inputs can read the same state). Each thread therefore drives its own instances
of one machine, as applications do; the totals over all threads must be exact.
"""

from __future__ import annotations

import threading
from typing import Any

from automat import MethodicalMachine, NoTransition

from otel_resilience import contract as c
from otel_resilience.automat import AutomatInstrumentor
from tests.support.telemetry import Telemetry, options_fixture

instrument = options_fixture(AutomatInstrumentor)


class Door:
    _machine = MethodicalMachine()

    @_machine.state(initial=True)
    def closed(self) -> None:
        "closed"

    @_machine.state()
    def opened(self) -> None:
        "opened"

    @_machine.input()
    def open(self) -> None:
        "open"

    @_machine.input()
    def close(self) -> None:
        "close"

    closed.upon(open, enter=opened, outputs=[])
    opened.upon(close, enter=closed, outputs=[])


DOOR = f"{__name__}.Door"
THREADS = 8
ROUNDS = 300


def test_eight_threads_give_exact_totals(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    refused = [0] * THREADS
    start = threading.Barrier(THREADS)
    doors = [Door() for _ in range(THREADS)]

    def worker(index: int) -> None:
        door = doors[index]
        start.wait()
        for round_ in range(ROUNDS):
            try:
                door.open()
            except NoTransition:
                refused[index] += 1
            if round_ % 3:
                door.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

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
