"""shipping: a purgatory breaker around the dependency, a backoff retry in front of it.

The second pair of libraries, with the same contract: its telemetry must agree with these books as
exactly as pybreaker's and tenacity's do. Its failures come in bursts late in the run, so the
breaker trips, rejects and recovers; unknown parcels are a business answer (excluded, not retried).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

import backoff
from purgatory import SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from otel_resilience._demo.dependencies import DependencyError, DependencyOptions, NotFound, Profile, named
from otel_resilience._demo.simulation import BreakerBooks, OperationBooks
from otel_resilience.contract import BreakerState

if TYPE_CHECKING:
    from collections.abc import Callable

    from backoff.types import Details

    from otel_resilience._demo.simulation import GroundTruth


def bursts(progress: float) -> float:
    # Mostly fine; two bursts of failures, in the second half of the run.
    return 0.8 if 0.6 <= progress < 0.7 or 0.85 <= progress < 0.9 else 0.03


PROFILE = Profile("shipping", bursts, not_found_probability=0.02, latency_seconds=(0.001, 0.003))
OPERATION = "fetch_shipping"
STATES = {"closed": BreakerState.CLOSED.value, "opened": BreakerState.OPEN.value}
STATES["half-opened"] = BreakerState.HALF_OPEN.value


class ShippingDependency:
    """``@backoff.on_exception`` around a function guarded by ``@factory("shipping")``."""

    def __init__(self, rng: random.Random, truth: GroundTruth) -> None:
        self.name = PROFILE.name
        self._rng = rng
        self.breaker_books = truth.breakers[self.name] = BreakerBooks()
        self.operation_books = truth.operations[f"demo.{OPERATION}"] = OperationBooks()
        self._factory = SyncCircuitBreakerFactory(default_threshold=4, default_ttl=1.5, exclude=[NotFound])
        self._factory.add_listener(self._state_changed)  # the application's own listener
        self._progress = 0.0
        self._attempts_in_operation = 0

        def serve() -> str:
            time.sleep(PROFILE.latency(self._rng))
            return PROFILE.serve(self._rng, self._progress)

        self._serve: Callable[[], str] = self._factory(self.name)(serve)

        def attempt() -> str:
            return self._attempt()

        retry = backoff.on_exception(
            backoff.constant,
            DependencyError,
            interval=0.005,
            jitter=None,
            max_tries=3,
            on_backoff=self._count_sleep,
            logger=None,
        )
        self._fetch = retry(named(attempt, OPERATION))

    def _state_changed(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            new = STATES[event.state]
            self.breaker_books.transitions[f"{self.breaker_books.final_state}->{new}"] += 1
            self.breaker_books.final_state = new

    def _count_sleep(self, details: Details) -> None:
        self.operation_books.sleeps += 1
        self.operation_books.sleep_seconds += details["wait"]

    def _attempt(self) -> str:
        self._attempts_in_operation += 1
        calls = self.breaker_books.calls
        try:
            result = self._serve()
        except OpenedState:
            calls["rejected"] += 1
            self.operation_books.attempts["failure"] += 1
            raise
        except NotFound:
            calls["ignored"] += 1
            self.operation_books.attempts["failure"] += 1
            raise
        except DependencyError:
            calls["failure"] += 1
            self.operation_books.attempts["failure"] += 1
            raise
        calls["success"] += 1
        self.operation_books.attempts["success"] += 1
        return result

    def call(self, progress: float) -> bool:
        self._progress = progress
        self._attempts_in_operation = 0
        try:
            self._fetch()
        except (DependencyError, NotFound, OpenedState):
            return self.operation_books.ended(succeeded=False, attempts=self._attempts_in_operation)
        return self.operation_books.ended(succeeded=True, attempts=self._attempts_in_operation)

    def state(self) -> str:
        # The state purgatory holds (memory storage: one Context per circuit); it half-opens lazily,
        # at the first call after the TTL, as the telemetry reports it.
        context = self._factory.get_breaker(self.name).context
        return STATES[str(context.state)]

    def finish(self) -> None:
        self.breaker_books.final_state = self.state()


def dependencies(
    rng: random.Random, truth: GroundTruth, options: DependencyOptions
) -> list[ShippingDependency]:
    return [ShippingDependency(random.Random(rng.random()), truth)]
