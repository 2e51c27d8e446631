"""stock: an ``async def`` behind an aiobreaker breaker, asyncio's own fork of pybreaker.

aiobreaker awaits the body, so every call has a real outcome. A flapping dependency trips the
breaker; the call that trips it raises ``CircuitBreakerError`` with the dependency's error as its
``__cause__`` (a ``failure``), and the calls made while it is open raise it without one (``rejected``:
the body never ran). The books count transitions through the application's own aiobreaker listener.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiobreaker.circuitbreaker import CircuitBreaker
from aiobreaker.listener import CircuitBreakerListener
from aiobreaker.state import CircuitBreakerError, CircuitBreakerState

from otel_resilience._demo.dependencies import DependencyError, DependencyOptions, Profile, flapping
from otel_resilience._demo.simulation import BreakerBooks, OperationBooks
from otel_resilience.contract import BreakerOutcome, BreakerState

if TYPE_CHECKING:
    from otel_resilience._demo.simulation import GroundTruth

PROFILE = Profile("stock", flapping, latency_seconds=(0.001, 0.003))
STATE_NAMES = {
    CircuitBreakerState.CLOSED: BreakerState.CLOSED.value,
    CircuitBreakerState.OPEN: BreakerState.OPEN.value,
    CircuitBreakerState.HALF_OPEN: BreakerState.HALF_OPEN.value,
}


class TransitionBooks(CircuitBreakerListener):
    """The application's own listener: every transition aiobreaker reports, counted."""

    def __init__(self, books: BreakerBooks) -> None:
        self._books = books

    def state_change(self, breaker: Any, old: Any, new: Any) -> None:
        previous, state = STATE_NAMES[old.state], STATE_NAMES[new.state]
        self._books.transitions[f"{previous}->{state}"] += 1


class AioBreakerDependency:
    """``breaker.call_async`` around a coroutine function; no retry in front of it."""

    def __init__(self, rng: random.Random) -> None:
        self.name = PROFILE.name
        self._rng = rng
        self.breaker_books = BreakerBooks()
        self.operation_books = OperationBooks()  # no retried operation here: nothing to count
        self.breaker = CircuitBreaker(
            fail_max=4,
            timeout_duration=timedelta(seconds=1),
            listeners=[TransitionBooks(self.breaker_books)],
            name=self.name,
        )
        self._loop = asyncio.new_event_loop()
        self._progress = 0.0

    async def _fetch_stock(self) -> str:
        await asyncio.sleep(PROFILE.latency(self._rng))
        return PROFILE.serve(self._rng, self._progress)

    def call(self, progress: float) -> bool:
        self._progress = progress
        try:
            self._loop.run_until_complete(self.breaker.call_async(self._fetch_stock))
        except CircuitBreakerError as error:
            # The call that trips the breaker ran and failed; a rejection ran nothing.
            tripped = isinstance(error.__cause__, DependencyError)
            outcome = BreakerOutcome.FAILURE if tripped else BreakerOutcome.REJECTED
        except DependencyError:
            outcome = BreakerOutcome.FAILURE
        else:
            self.breaker_books.calls[BreakerOutcome.SUCCESS.value] += 1
            return True
        self.breaker_books.calls[outcome.value] += 1
        return False

    def state(self) -> str:
        return STATE_NAMES[self.breaker.current_state]

    def finish(self) -> None:
        self.breaker_books.final_state = self.state()
        self._loop.close()


def dependencies(
    rng: random.Random, truth: GroundTruth, options: DependencyOptions
) -> list[AioBreakerDependency]:
    dependency = AioBreakerDependency(random.Random(rng.random()))
    truth.breakers[dependency.name] = dependency.breaker_books
    return [dependency]
