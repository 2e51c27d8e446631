"""quotes: an ``async def`` behind a circuitbreaker (fabfuel) breaker with a fallback.

circuitbreaker guards coroutines itself, so every call has a real outcome. An outage trips the
breaker; while it is open the fallback answers (``rejected`` calls served by the fallback); a
``NotFound`` answer is not a failure and resets (closes) the breaker, as circuitbreaker does.
circuitbreaker has no listeners: the books follow the states the application reads
(``breaker.state`` before and after each call), which is also when the library's lazy
open -> half-open step becomes observable.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

from circuitbreaker import CircuitBreaker

from otel_resilience._demo.dependencies import DependencyError, DependencyOptions, NotFound, Profile, outage
from otel_resilience._demo.simulation import BreakerBooks, OperationBooks
from otel_resilience.contract import BreakerOutcome

if TYPE_CHECKING:
    from otel_resilience._demo.simulation import GroundTruth

PROFILE = Profile("quotes", outage, not_found_probability=0.03, latency_seconds=(0.001, 0.003))
FALLBACK = "estimated"


class AsyncCircuitBreakerDependency:
    """``@circuit`` on a coroutine function, with a fallback function for rejected calls."""

    def __init__(self, rng: random.Random) -> None:
        self.name = PROFILE.name
        self._rng = rng
        self.breaker_books = BreakerBooks()
        self.operation_books = OperationBooks()  # no retried operation here: nothing to count
        self.breaker = CircuitBreaker(  # type: ignore[no-untyped-call]  # circuitbreaker is untyped
            failure_threshold=4,
            recovery_timeout=1,
            expected_exception=DependencyError,
            name=self.name,
            fallback_function=self._fallback,
        )
        self._quote = self.breaker(self._fetch_quote)
        self._loop = asyncio.new_event_loop()
        self._progress = 0.0
        self._seen_state = self.state()

    async def _fallback(self) -> str:
        return FALLBACK

    async def _fetch_quote(self) -> str:
        await asyncio.sleep(PROFILE.latency(self._rng))
        return PROFILE.serve(self._rng, self._progress)

    def _observe(self) -> None:
        """Read the breaker's state, as the application sees it, and book any change."""
        state = self.state()
        if state != self._seen_state:
            self.breaker_books.transitions[f"{self._seen_state}->{state}"] += 1
            self._seen_state = state

    def call(self, progress: float) -> bool:
        self._progress = progress
        self._observe()
        try:
            answer = self._loop.run_until_complete(self._quote())
        except DependencyError:
            outcome, succeeded = BreakerOutcome.FAILURE, False
        except NotFound:
            outcome, succeeded = BreakerOutcome.IGNORED, True
        else:
            rejected = answer == FALLBACK
            outcome, succeeded = (BreakerOutcome.REJECTED if rejected else BreakerOutcome.SUCCESS), True
        self.breaker_books.calls[outcome.value] += 1
        self._observe()
        return succeeded

    def state(self) -> str:
        return str(self.breaker.state)  # circuitbreaker spells its states as the contract does

    def finish(self) -> None:
        self._observe()
        self.breaker_books.final_state = self._seen_state
        self._loop.close()


def dependencies(
    rng: random.Random, truth: GroundTruth, options: DependencyOptions
) -> list[AsyncCircuitBreakerDependency]:
    dependency = AsyncCircuitBreakerDependency(random.Random(rng.random()))
    truth.breakers[dependency.name] = dependency.breaker_books
    return [dependency]
