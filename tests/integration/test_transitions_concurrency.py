"""transitions' LockedMachine under 8 threads: the telemetry's totals are exact."""

from __future__ import annotations

from typing import Any

from transitions import MachineError
from transitions.extensions import LockedMachine

from otel_resilience import contract as c
from otel_resilience.transitions import TransitionsInstrumentor
from tests.support.telemetry import Telemetry, options_fixture
from tests.support.threads import Tally, run_threads

instrument = options_fixture(TransitionsInstrumentor)
THREADS = 8
ROUNDS = 500
NAME = "door under 8 threads"  # machines other tests left alive are counted too: this one by its name


class Door:
    pass


def test_eight_threads_on_one_locked_machine_give_exact_totals(instrument: Any) -> None:
    telemetry: Telemetry = instrument()
    door = Door()
    LockedMachine(
        door,
        states=["closed", "open"],
        transitions=[["open", "closed", "open"], ["close", "open", "closed"]],
        initial="closed",
        name=NAME,
    )
    truth = Tally()

    def worker(index: int) -> None:
        trigger = door.open if index % 2 else door.close  # type: ignore[attr-defined]
        for _ in range(ROUNDS):
            try:
                trigger()
                outcome = "transitioned"
            except MachineError:
                outcome = "refused"
            truth.add(outcome)

    run_threads(THREADS, worker)

    assert sum(truth.values()) == THREADS * ROUNDS
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_OUTCOME) == {
        (outcome,): n for outcome, n in truth.items() if n
    }
    transitions = telemetry.values(
        c.STATEMACHINE_TRANSITIONS.name, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_STATE
    )
    assert sum(transitions.values()) == truth["transitioned"]
    # Under the machine's lock each transition's previous state is the one the trigger was fired in.
    assert set(transitions) <= {("closed", "open"), ("open", "closed")}
    assert abs(transitions.get(("closed", "open"), 0) - transitions.get(("open", "closed"), 0)) <= 1
    assert (
        sum(telemetry.values(c.STATEMACHINE_TRIGGER_DURATION.name, c.STATEMACHINE_NAME).values())
        == THREADS * ROUNDS
    )
    instances = telemetry.values(c.STATEMACHINE_INSTANCES.name, c.STATEMACHINE_NAME, c.STATEMACHINE_STATE)
    assert {state for (name, state) in instances if name == NAME} == {door.state}  # type: ignore[attr-defined]
    assert sum(n for (name, _), n in instances.items() if name == NAME) == 1
