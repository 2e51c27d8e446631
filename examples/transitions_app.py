"""Three orders through a transitions machine; the app knows nothing about OpenTelemetry.

Run it under auto-instrumentation with the console exporters::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        python examples/transitions_app.py

Its last line is its own ground truth: how many triggers ended in each outcome. The output shows one
``orders <trigger>`` span per trigger and the ``statemachine.*`` metrics, with exactly those counts.
"""

from __future__ import annotations

import json
from collections import Counter

from transitions import Machine, MachineError

STATES = ["new", "paid", "shipped", "delivered"]
TRANSITIONS = [
    {"trigger": "pay", "source": "new", "dest": "paid", "conditions": "card_valid"},
    {"trigger": "ship", "source": "paid", "dest": "shipped"},
    {"trigger": "deliver", "source": "shipped", "dest": "delivered"},
]


class LabelPrinterJam(Exception):
    pass


class Order:
    def __init__(self, number: int, *, card_valid: bool, printer_jams: bool) -> None:
        self.number = number
        self._card_valid = card_valid
        self.printer_jams = printer_jams
        Machine(self, states=STATES, transitions=TRANSITIONS, initial="new", name="orders")

    def card_valid(self) -> bool:
        return self._card_valid

    def on_enter_shipped(self) -> None:
        if self.printer_jams:  # the state has changed already: transitions raises after it
            raise LabelPrinterJam(f"order {self.number}: no label")


outcomes: Counter[str] = Counter()


def fire(order: Order, trigger: str) -> None:
    try:
        changed = getattr(order, trigger)()
    except MachineError:
        outcomes["refused"] += 1
    except LabelPrinterJam:
        outcomes["failed"] += 1
    else:
        outcomes["transitioned" if changed else "blocked"] += 1


orders = [
    Order(1, card_valid=True, printer_jams=False),
    Order(2, card_valid=False, printer_jams=False),
    Order(3, card_valid=True, printer_jams=True),
]
for order in orders:
    for trigger in ("ship", "pay", "ship", "deliver"):  # the first ship is out of order: refused
        fire(order, trigger)
print("states:", " ".join(order.state for order in orders))  # type: ignore[attr-defined]
print("outcomes:", json.dumps(dict(sorted(outcomes.items()))))
