"""A turnstile written with automat's MethodicalMachine; the app knows nothing about OpenTelemetry.

Run it under auto-instrumentation with the console exporters::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        python examples/automat_app.py

Its last line is its own ground truth: how many inputs ended in each outcome. The output shows one
``__main__.Turnstile <input>`` span per input and the ``statemachine.*`` metrics, with those counts.
"""

from __future__ import annotations

import json
from collections import Counter

from automat import MethodicalMachine, NoTransition


class ArmStuck(Exception):
    pass


class Turnstile:
    _machine = MethodicalMachine()

    def __init__(self, *, stuck_after: int) -> None:
        self.unlocks_left = stuck_after

    @_machine.state(initial=True)
    def locked(self) -> None:
        "locked"

    @_machine.state()
    def unlocked(self) -> None:
        "unlocked"

    @_machine.input()
    def coin(self) -> None:
        "a coin"

    @_machine.input()
    def push(self) -> None:
        "a push"

    @_machine.output()
    def _release(self) -> None:
        if not self.unlocks_left:
            raise ArmStuck("the arm did not move")  # automat has already moved to unlocked
        self.unlocks_left -= 1

    locked.upon(coin, enter=unlocked, outputs=[_release])
    unlocked.upon(push, enter=locked, outputs=[])


outcomes: Counter[str] = Counter()
turnstile = Turnstile(stuck_after=2)
for symbol in ("push", "coin", "push", "coin", "coin", "push", "coin"):  # push while locked: refused
    try:
        getattr(turnstile, symbol)()
    except NoTransition:
        outcomes["refused"] += 1
    except ArmStuck:
        outcomes["failed"] += 1
    else:
        outcomes["transitioned"] += 1
print("outcomes:", json.dumps(dict(sorted(outcomes.items()))))
