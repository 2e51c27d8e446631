"""python-statemachine instrumented vs an uninstrumented twin: same behaviour; exact telemetry.

Hypothesis draws a StateMachine (which events move which states where, which guards say no, which
transitions run a callback that raises) and a sequence of events; the twin runs it uninstrumented, a
second instance runs it instrumented. The telemetry must count what the test knows happened, from
the machine's definition. Every machine also has ``cycle`` (a -> b -> c -> a), so that no state is
unreachable or a trap, as python-statemachine requires.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from otel_resilience import contract as c
from otel_resilience.statemachine import StateMachineInstrumentor
from tests.support.telemetry import instrumented

STATES = ["a", "b", "c"]
EVENTS = ["x", "y", "z", "cycle"]
TRIGGER_KEYS = (c.STATEMACHINE_TRIGGER, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE)
NOT_ALLOWED = "statemachine.exceptions.TransitionNotAllowed"
CYCLE = {"a": "b", "b": "c", "c": "a"}

Spec = list[tuple[str, str, str, bool, bool]]
"""(event, from state, to state, whether its guard allows it, whether its callback raises)."""


class Boom(Exception):
    pass


def _guard(allowed: bool) -> Any:
    return lambda: allowed


def _boom() -> None:
    raise Boom("callback failed")


def machine_class(spec: Spec) -> type[StateMachine]:
    states = {name: State(initial=name == "a") for name in STATES}
    namespace: dict[str, Any] = {**states, "__module__": __name__}
    by_event: dict[str, Any] = {}
    for event, source, destination, allowed, raises in spec:
        transition = states[source].to(
            states[destination], cond=_guard(allowed), on=[_boom] if raises else []
        )
        by_event[event] = transition if event not in by_event else by_event[event] | transition
    namespace.update(by_event)
    namespace["cycle"] = (
        states["a"].to(states["b"]) | states["b"].to(states["c"]) | states["c"].to(states["a"])
    )
    return type("Drawn", (StateMachine,), namespace)


def play(machine: Any, events: list[str]) -> list[tuple[str, Any, str]]:
    seen = []
    for event in events:
        try:
            result: Any = ("returned", machine.send(event))
        except (TransitionNotAllowed, Boom) as exc:
            result = ("raised", type(exc))
        seen.append((event, result, machine.current_state_value))
    return seen


def truth(spec: Spec, events: list[str]) -> Counter[tuple[str, str, str, str | None]]:
    counts: Counter[tuple[str, str, str, str | None]] = Counter()
    state = "a"
    for event in events:
        if event == "cycle":
            counts[event, state, "transitioned", None] += 1
            state = CYCLE[state]
            continue
        candidates = [(d, allowed, raises) for e, s, d, allowed, raises in spec if e == event and s == state]
        enabled = [(d, raises) for d, allowed, raises in candidates if allowed]
        if not candidates:
            counts[event, state, "refused", NOT_ALLOWED] += 1
        elif not enabled:
            counts[event, state, "blocked", NOT_ALLOWED] += 1
        elif enabled[0][1]:
            counts[event, state, "failed", f"{__name__}.Boom"] += 1  # rolled back: the state stays
        else:
            counts[event, state, "transitioned", None] += 1
            state = enabled[0][0]
    return counts


specs = st.lists(
    st.tuples(
        st.sampled_from(EVENTS[:3]),
        st.sampled_from(STATES),
        st.sampled_from(STATES),
        st.booleans(),
        st.booleans(),
    ),
    max_size=8,
    unique_by=lambda t: (t[0], t[1]),
)


@settings(max_examples=150, deadline=None)
@given(spec=specs, events=st.lists(st.sampled_from(EVENTS), max_size=12))
def test_instrumented_machine_behaves_as_its_twin_and_counts_exactly(spec: Spec, events: list[str]) -> None:
    cls = machine_class(spec)
    expected = play(cls(), events)
    with instrumented(StateMachineInstrumentor) as telemetry:
        assert play(cls(), events) == expected
        assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, *TRIGGER_KEYS) == dict(truth(spec, events))
        assert len(telemetry.spans()) == len(events)
