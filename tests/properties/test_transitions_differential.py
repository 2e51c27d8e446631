"""transitions instrumented vs an uninstrumented twin: same results, exceptions and states; exact telemetry.

Hypothesis draws a machine (which transitions exist, which conditions say no, which enter callbacks
raise, ``ignore_invalid_triggers``, ``on_exception``, ``queued``) and a sequence of triggers. The
sequence runs on an uninstrumented machine, then on an identical one while instrumented; everything
the application can see must be equal, and the telemetry must count what the test itself knows
happened (its ground truth, derived from the machine's definition, never from telemetry).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import Machine, MachineError

from otel_resilience import contract as c
from otel_resilience.transitions import TransitionsInstrumentor
from tests.support.telemetry import instrumented

STATES = ["a", "b", "c"]
TRIGGERS = ["go", "back", "stay"]


class Boom(Exception):
    pass


class Model:
    def __init__(self, raising: frozenset[str]) -> None:
        self.raising = raising
        self.errors: list[type[BaseException]] = []

    def enter(self, event: Any) -> None:
        if self.state in self.raising:  # type: ignore[attr-defined]
            raise Boom(self.state)  # type: ignore[attr-defined]

    def handle(self, event: Any) -> None:
        self.errors.append(type(event.error))


machines = st.fixed_dictionaries(
    {
        "transitions": st.lists(
            st.tuples(
                st.sampled_from(TRIGGERS),
                st.sampled_from(STATES),
                st.sampled_from([*STATES, None]),
                st.booleans(),
            ),
            max_size=8,
            unique_by=lambda t: (t[0], t[1]),
        ),
        "raising": st.frozensets(st.sampled_from(STATES)),
        "ignore_invalid_triggers": st.booleans(),
        "on_exception": st.booleans(),
        "queued": st.booleans(),
    }
)


def build(spec: dict[str, Any]) -> Model:
    model = Model(spec["raising"])
    transitions = [
        {"trigger": t, "source": s, "dest": d, "conditions": (lambda _event, allowed=allowed: allowed)}
        for t, s, d, allowed in spec["transitions"]
    ]
    Machine(
        model,
        states=[{"name": s, "on_enter": "enter"} for s in STATES],
        transitions=transitions,
        initial="a",
        auto_transitions=False,
        ignore_invalid_triggers=spec["ignore_invalid_triggers"],
        on_exception="handle" if spec["on_exception"] else None,
        send_event=True,
        queued=spec["queued"],
    )
    return model


def play(model: Model, triggers: list[str]) -> list[tuple[str, Any, str]]:
    """What the application sees: each trigger's result or exception, and the state after."""
    seen = []
    for trigger in triggers:
        try:
            result: Any = ("returned", model.trigger(trigger))  # type: ignore[attr-defined]
        except (MachineError, Boom, AttributeError) as exc:  # AttributeError: a trigger not defined
            result = ("raised", type(exc), str(exc))
        seen.append((trigger, result, model.state))  # type: ignore[attr-defined]
    return seen


def truth(
    spec: dict[str, Any], seen: list[tuple[str, Any, str]]
) -> Counter[tuple[str, str, str, str | None]]:
    """(trigger, previous state, outcome, error.type) of each trigger, from the definition and results."""
    defined = {(t, s): allowed for t, s, _, allowed in spec["transitions"]}
    destinations = {(t, s): d for t, s, d, _ in spec["transitions"]}
    counts: Counter[tuple[str, str, str, str | None]] = Counter()
    previous = "a"
    known = {t for t, _ in defined}
    for trigger, _result, state in seen:
        if trigger not in known:  # the model has no such method: no event is fired
            continue
        allowed = defined.get((trigger, previous))
        if allowed is None:
            outcome, etype = (
                "refused",
                (None if spec["ignore_invalid_triggers"] else "transitions.core.MachineError"),
            )
        elif not allowed:
            outcome, etype = "blocked", None
        elif destinations[trigger, previous] in spec["raising"]:  # its enter callback raises
            outcome, etype = "failed", f"{__name__}.Boom"
        else:
            outcome, etype = "transitioned", None
        counts[trigger, previous, outcome, etype] += 1
        previous = state
    return counts


@settings(max_examples=200, deadline=None)
@given(spec=machines, triggers=st.lists(st.sampled_from(TRIGGERS), max_size=12))
def test_instrumented_machine_behaves_as_its_twin_and_counts_exactly(
    spec: dict[str, Any], triggers: list[str]
) -> None:
    twin = build(spec)
    expected = play(twin, triggers)
    with instrumented(TransitionsInstrumentor) as telemetry:
        model = build(spec)
        assert play(model, triggers) == expected
        assert model.errors == twin.errors
        counted = telemetry.values(
            c.STATEMACHINE_TRIGGERS.name,
            c.STATEMACHINE_TRIGGER,
            c.STATEMACHINE_PREVIOUS_STATE,
            c.STATEMACHINE_OUTCOME,
            c.ERROR_TYPE,
        )
        assert counted == dict(truth(spec, expected))
        assert len(telemetry.spans()) == sum(counted.values())
