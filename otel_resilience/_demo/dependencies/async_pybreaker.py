"""recommendations: an ``async def`` behind a pybreaker breaker, an AsyncRetrying loop inside.

The most common way these libraries are combined in async services, and a misuse: pybreaker counts
each call a success when the coroutine is created, so its failures never reach the breaker and it
never opens. The books say what really happened; the telemetry must show every call as
``unguarded`` and count the ``breaker_blind_to_async`` finding for each.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

import pybreaker
import tenacity

from otel_resilience._demo.dependencies import DependencyError, DependencyOptions, Profile, flapping, named
from otel_resilience._demo.dependencies.pybreaker_tenacity import TransitionBooks, contract_state
from otel_resilience._demo.simulation import BreakerBooks, OperationBooks
from otel_resilience.contract import BreakerOutcome, Finding

if TYPE_CHECKING:
    from otel_resilience._demo.simulation import GroundTruth

PROFILE = Profile("recommendations", flapping, latency_seconds=(0.001, 0.003))
OPERATION = "fetch_recommendations"


class UnguardedAsyncDependency:
    """``@breaker`` on a coroutine function: pybreaker sees the coroutine, never its outcome."""

    def __init__(self, rng: random.Random, truth: GroundTruth) -> None:
        self.name = PROFILE.name
        self._rng = rng
        self._truth = truth
        self.breaker_books = truth.breakers[self.name] = BreakerBooks()
        self.operation_books = truth.operations[f"demo.{OPERATION}"] = OperationBooks()
        self.breaker = pybreaker.CircuitBreaker(
            name=self.name, fail_max=4, reset_timeout=1.5, listeners=[TransitionBooks(self.breaker_books)]
        )
        self._loop = asyncio.new_event_loop()
        self._progress = 0.0
        self._attempts_in_operation = 0
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(2),
            wait=tenacity.wait_fixed(0.005),
            retry=tenacity.retry_if_exception_type(DependencyError),
            before_sleep=self._count_sleep,
            reraise=True,
        )

        async def attempt() -> str:
            return await self._attempt()

        self._fetch = self.breaker(retrying.wraps(named(attempt, OPERATION)))

    def _count_sleep(self, retry_state: tenacity.RetryCallState) -> None:
        self.operation_books.sleeps += 1
        seconds = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self.operation_books.sleep_seconds += seconds

    async def _attempt(self) -> str:
        self._attempts_in_operation += 1
        await asyncio.sleep(PROFILE.latency(self._rng))
        try:
            answer = PROFILE.serve(self._rng, self._progress)
        except DependencyError:
            self.operation_books.attempts["failure"] += 1
            raise
        self.operation_books.attempts["success"] += 1
        return answer

    async def _operation(self) -> Any:
        return await self._fetch()

    def call(self, progress: float) -> bool:
        self._progress = progress
        self._attempts_in_operation = 0
        # Whatever the body does, pybreaker saw only a coroutine: an unguarded call, one finding.
        self.breaker_books.calls[BreakerOutcome.UNGUARDED.value] += 1
        self._truth.found(Finding.BREAKER_BLIND_TO_ASYNC.value, self.name)
        try:
            self._loop.run_until_complete(self._operation())
        except DependencyError:
            return self.operation_books.ended(succeeded=False, attempts=self._attempts_in_operation)
        return self.operation_books.ended(succeeded=True, attempts=self._attempts_in_operation)

    def state(self) -> str:
        return contract_state(self.breaker)

    def finish(self) -> None:
        self.breaker_books.final_state = self.state()
        self._loop.close()


def dependencies(
    rng: random.Random, truth: GroundTruth, options: DependencyOptions
) -> list[UnguardedAsyncDependency]:
    return [UnguardedAsyncDependency(random.Random(rng.random()), truth)]
