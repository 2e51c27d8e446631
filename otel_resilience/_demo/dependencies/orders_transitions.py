"""orders: an order lifecycle, one transitions machine per order, driven by the fulfilment service.

Each operation takes an open order (or a new one) and asks ``fulfilment`` (a pybreaker breaker, a
tenacity retry, as the other guarded dependencies) to do its next step: when it answers, the order
moves on (``pay``, ``ship``, ``deliver``); when it fails, the order is cancelled, which a shipped
order refuses. Now and then a stray event arrives out of order (refused); from half-way through the
run for a while, the event producer replays what it sent (the duplicates are refused: a spike for
StateMachineTriggersRefused); and for half of the run the label printer jams in
``on_enter_shipped`` (failed: the order is shipped already, as transitions leaves it; enough for
StateMachineTriggersFailing). Every trigger's outcome is counted from what the application sees: the
result, the exception, the order's state before and after.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable

from transitions import Machine, MachineError

from otel_resilience._demo.dependencies import DependencyOptions, Profile
from otel_resilience._demo.dependencies.pybreaker_tenacity import GuardedDependency
from otel_resilience._demo.simulation import MachineBooks
from otel_resilience.contract import TriggerOutcome

if TYPE_CHECKING:
    from transitions.core import TransitionConfigDict

    from otel_resilience._demo.simulation import GroundTruth

MACHINE = "orders"
STATES = ("new", "paid", "shipped", "delivered", "cancelled")
TRANSITIONS: list[TransitionConfigDict] = [
    {"trigger": "pay", "source": "new", "dest": "paid"},
    {"trigger": "ship", "source": "paid", "dest": "shipped"},
    {"trigger": "deliver", "source": "shipped", "dest": "delivered"},
    {"trigger": "cancel", "source": ["new", "paid"], "dest": "cancelled"},
]
NEXT_STEP = {"new": "pay", "paid": "ship", "shipped": "deliver"}
OPEN_ORDERS = 4
"""New orders are taken while fewer are open; otherwise an open one moves on."""
STRAY_EVENT_PROBABILITY = 0.05


def jam_probability(progress: float) -> float:
    return 0.7 if 0.2 <= progress < 0.7 else 0.05


def replay_probability(progress: float) -> float:
    return 0.8 if 0.5 <= progress < 0.8 else 0.02


def unsteady(progress: float) -> float:
    # Fails often enough to cancel orders and, in a run of a minute or more, to trip its breaker.
    return 0.35 if 0.4 <= progress < 0.5 else 0.1


PROFILE = Profile("fulfilment", unsteady, latency_seconds=(0.001, 0.002))
_MACHINE_ERROR = f"{MachineError.__module__}.{MachineError.__qualname__}"


class LabelPrinterJam(Exception):
    """The shipping label was not printed: raised after the order became ``shipped``."""


_JAM = f"{LabelPrinterJam.__module__}.{LabelPrinterJam.__qualname__}"


class Order:
    """An order: the model of its own ``transitions`` machine."""

    def __init__(self, jams: Callable[[], bool]) -> None:
        self._jams = jams
        self.state = ""
        Machine(self, states=list(STATES), transitions=TRANSITIONS, initial="new", name=MACHINE)

    def on_enter_shipped(self) -> None:
        if self._jams():
            raise LabelPrinterJam("label printer jammed")


class OrdersDependency(GuardedDependency):
    """``fulfilment`` guarded as the other dependencies are, and the orders its answers drive."""

    def __init__(self, rng: random.Random, truth: GroundTruth) -> None:
        super().__init__(PROFILE, random.Random(rng.random()), truth, storage=None)
        self._orders_rng = random.Random(rng.random())
        self.orders: list[Order] = []
        self.machine_books = truth.machines[MACHINE] = MachineBooks(STATES)

    def _jams(self) -> bool:
        return self._orders_rng.random() < jam_probability(self.progress)

    def call(self, progress: float) -> bool:
        rng = self._orders_rng
        open_orders = [order for order in self.orders if order.state in NEXT_STEP]
        if len(open_orders) < OPEN_ORDERS:
            order = Order(self._jams)
            self.orders.append(order)
        else:
            order = rng.choice(open_orders)
        succeeded = super().call(progress)
        step = NEXT_STEP[order.state] if succeeded else "cancel"
        self._fire(order, step)
        if rng.random() < replay_probability(progress):
            self._fire(order, step)  # the producer sent it again
        if rng.random() < STRAY_EVENT_PROBABILITY:
            self._fire(rng.choice(self.orders), rng.choice(("pay", "ship", "deliver", "cancel")))
        return succeeded

    def _fire(self, order: Order, trigger: str) -> None:
        previous = order.state
        error_type = None
        try:
            changed = order.trigger(trigger)  # type: ignore[attr-defined]
        except MachineError:
            outcome, error_type = TriggerOutcome.REFUSED, _MACHINE_ERROR
        except LabelPrinterJam:
            outcome, error_type = TriggerOutcome.FAILED, _JAM
        else:
            outcome = TriggerOutcome.TRANSITIONED if changed else TriggerOutcome.BLOCKED
        self.machine_books.fired(trigger, previous, order.state, outcome.value, error_type)

    def finish(self) -> None:
        super().finish()
        self.machine_books.instances.clear()
        self.machine_books.instances.update(order.state for order in self.orders)


def dependencies(
    rng: random.Random, truth: GroundTruth, options: DependencyOptions
) -> list[OrdersDependency]:
    return [OrdersDependency(random.Random(rng.random()), truth)]
