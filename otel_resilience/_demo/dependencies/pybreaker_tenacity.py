"""catalog, payments, inventory: a pybreaker breaker around each, a tenacity retry in front of it."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

import pybreaker
import tenacity

from otel_resilience._demo.dependencies import (
    DependencyError,
    DependencyOptions,
    NotFound,
    Profile,
    flapping,
    healthy,
    named,
    outage,
)
from otel_resilience._demo.simulation import BreakerBooks, OperationBooks

if TYPE_CHECKING:
    from otel_resilience._demo.simulation import GroundTruth

STATE_NAMES = {pybreaker.STATE_HALF_OPEN: "half_open"}
"""pybreaker's state names as the contract spells them (the others are the same)."""


def contract_state(breaker: pybreaker.CircuitBreaker) -> str:
    """A breaker's state now, spelled as the contract spells it."""
    state = breaker.current_state
    return STATE_NAMES.get(state, state)


PROFILES = (
    Profile("catalog", healthy, not_found_probability=0.03),
    Profile("payments", flapping),
    Profile("inventory", outage),
)


class TransitionBooks(pybreaker.CircuitBreakerListener):
    """The application's own listener: every transition pybreaker reports, counted."""

    def __init__(self, books: BreakerBooks) -> None:
        self._books = books

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        old = STATE_NAMES.get(old_state.name, old_state.name)
        new = STATE_NAMES.get(new_state.name, new_state.name)
        self._books.transitions[f"{old}->{new}"] += 1
        self._books.final_state = new


class GuardedDependency:
    """One downstream dependency: a breaker around it, a retrying operation in front of it."""

    def __init__(
        self,
        profile: Profile,
        rng: random.Random,
        truth: GroundTruth,
        storage: pybreaker.CircuitBreakerStorage | None,
    ) -> None:
        self.profile = profile
        self.name = profile.name
        self._rng = rng
        self.breaker_books = truth.breakers[profile.name] = BreakerBooks()
        operation = f"fetch_{profile.name}"
        self.operation_books = truth.operations[f"demo.{operation}"] = OperationBooks()
        self.breaker = pybreaker.CircuitBreaker(
            name=profile.name,
            fail_max=4,
            reset_timeout=1.5,
            exclude=[NotFound],
            listeners=[TransitionBooks(self.breaker_books)],
            state_storage=storage,
        )
        self.progress = 0.0
        self._attempts_in_operation = 0
        self.retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_exponential(multiplier=0.01, max=0.05),
            retry=tenacity.retry_if_exception_type(DependencyError),
            before_sleep=self._count_sleep,
            reraise=True,
        )

        def attempt() -> str:
            return self._attempt()

        self.fetch = self.retrying.wraps(named(attempt, operation))

    def _count_sleep(self, retry_state: tenacity.RetryCallState) -> None:
        seconds = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self.operation_books.sleeps += 1
        self.operation_books.sleep_seconds += seconds

    def _serve(self) -> str:
        time.sleep(self.profile.latency(self._rng))
        return self.profile.serve(self._rng, self.progress)

    def _attempt(self) -> str:
        ran = False

        def serve() -> str:
            nonlocal ran
            ran = True
            return self._serve()

        books = self.breaker_books
        try:
            result = self.breaker.call(serve)
        except NotFound:
            books.calls["ignored"] += 1
            self._attempted("failure")
            raise
        except pybreaker.CircuitBreakerError:
            books.calls["failure" if ran else "rejected"] += 1
            self._attempted("failure")
            raise
        except DependencyError:
            books.calls["failure"] += 1
            self._attempted("failure")
            raise
        books.calls["success"] += 1
        self._attempted("success")
        return result

    def _attempted(self, outcome: str) -> None:
        self.operation_books.attempts[outcome] += 1
        self._attempts_in_operation += 1

    def call(self, progress: float) -> bool:
        """One operation; True when it succeeded."""
        self.progress = progress
        self._attempts_in_operation = 0
        try:
            self.fetch()
        except Exception:
            return self.operation_books.ended(succeeded=False, attempts=self._attempts_in_operation)
        return self.operation_books.ended(succeeded=True, attempts=self._attempts_in_operation)

    def state(self) -> str:
        return contract_state(self.breaker)

    def finish(self) -> None:
        self.breaker_books.final_state = self.state()


def dependencies(
    rng: random.Random, truth: GroundTruth, options: DependencyOptions
) -> list[GuardedDependency]:
    return [
        GuardedDependency(profile, random.Random(rng.random()), truth, options.storage_factory(profile.name))
        for profile in PROFILES
    ]
