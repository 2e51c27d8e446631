"""automat instrumented vs an uninstrumented twin: same results, exceptions and states; exact telemetry.

Hypothesis draws a MethodicalMachine (which inputs move which states where, which transitions run an
output that raises) and a sequence of inputs; the twin runs it uninstrumented, a second instance of the
same machine runs it instrumented. The telemetry must count what the test knows happened, from the
machine's definition.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from automat import MethodicalMachine, NoTransition
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_resilience import contract as c
from otel_resilience.automat import AutomatInstrumentor
from tests.support.telemetry import instrumented

STATES = ["a", "b", "c"]
INPUTS = ["x", "y", "z"]
TRIGGER_KEYS = (c.STATEMACHINE_TRIGGER, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE)

Spec = list[tuple[str, str, str, bool]]
"""(input, from state, to state, whether its second output raises)."""


class Boom(Exception):
    pass


def _named(name: str) -> Any:
    def symbol(self: Any) -> None:
        "a state or input: no code"

    symbol.__name__ = symbol.__qualname__ = name
    return symbol


def machine_class(spec: Spec) -> type:
    machine = MethodicalMachine()
    states = {name: machine.state(initial=name == "a")(_named(name)) for name in STATES}
    inputs = {name: machine.input()(_named(name)) for name in INPUTS}

    def counted(self: Any) -> int:
        self.outputs += 1
        return self.outputs

    def boom(self: Any) -> None:
        raise Boom("output failed")

    ok = machine.output()(counted)
    raising = machine.output()(boom)
    for symbol, source, destination, raises in spec:
        states[source].upon(
            inputs[symbol], enter=states[destination], outputs=[ok, raising] if raises else [ok]
        )
    namespace: dict[str, Any] = {
        "_machine": machine,
        "outputs": 0,
        "__module__": __name__,
        **states,
        **inputs,
    }
    return type("Drawn", (), namespace)


def play(instance: Any, inputs: list[str]) -> list[tuple[str, Any]]:
    seen = []
    for symbol in inputs:
        try:
            result: Any = ("returned", getattr(instance, symbol)())
        except (NoTransition, Boom) as exc:
            result = ("raised", type(exc))
        seen.append((symbol, result))
    return seen


def truth(spec: Spec, inputs: list[str]) -> Counter[tuple[str, str, str, str | None]]:
    moves = {(symbol, source): (destination, raises) for symbol, source, destination, raises in spec}
    counts: Counter[tuple[str, str, str, str | None]] = Counter()
    state = "a"
    for symbol in inputs:
        move = moves.get((symbol, state))
        if move is None:
            counts[symbol, state, "refused", "automat._core.NoTransition"] += 1
            continue
        counts[
            symbol, state, "failed" if move[1] else "transitioned", f"{__name__}.Boom" if move[1] else None
        ] += 1
        state = move[0]
    return counts


specs = st.lists(
    st.tuples(st.sampled_from(INPUTS), st.sampled_from(STATES), st.sampled_from(STATES), st.booleans()),
    max_size=9,
    unique_by=lambda t: (t[0], t[1]),
)


@settings(max_examples=200, deadline=None)
@given(spec=specs, inputs=st.lists(st.sampled_from(INPUTS), max_size=12))
def test_instrumented_machine_behaves_as_its_twin_and_counts_exactly(spec: Spec, inputs: list[str]) -> None:
    cls = machine_class(spec)
    twin = cls()
    expected = play(twin, inputs)
    with instrumented(AutomatInstrumentor) as telemetry:
        instance = cls()
        assert play(instance, inputs) == expected
        assert instance.outputs == twin.outputs
        assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, *TRIGGER_KEYS) == dict(truth(spec, inputs))
        assert len(telemetry.spans()) == len(inputs)
        names = {s.attributes[c.STATEMACHINE_NAME] for s in telemetry.spans()}
        assert names <= {f"{__name__}.Drawn"}
