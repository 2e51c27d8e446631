"""A seeded service calling three dependencies through pybreaker breakers and tenacity retries.

The service keeps its own books (:class:`GroundTruth`) without looking at any telemetry: what ran,
what failed, what was rejected, each transition (through the app's own pybreaker listener) and
each sleep (through tenacity's ``before_sleep``). The end-to-end tests compare those books with
what Prometheus received.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import pybreaker
import tenacity

_STATE_NAMES = {pybreaker.STATE_HALF_OPEN: "half_open"}
OPERATION_MODULE = "demo"


class DependencyError(Exception):
    """The dependency failed: a failure for the breaker, retried by tenacity."""


class NotFound(Exception):
    """A business answer: excluded by the breaker, not retried."""


@dataclass
class Profile:
    """How a dependency behaves at a point of the run (``progress`` from 0 to 1)."""

    name: str
    failure_probability: Callable[[float], float]
    not_found_probability: float = 0.0
    latency_seconds: tuple[float, float] = (0.001, 0.004)


def _healthy(progress: float) -> float:
    return 0.02


def _flapping(progress: float) -> float:
    # Bad for one tenth of the run out of every fifth.
    return 0.7 if int(progress * 10) % 2 == 1 else 0.05


def _outage(progress: float) -> float:
    return 1.0 if 0.25 <= progress < 0.55 else 0.01


PROFILES = (
    Profile("catalog", _healthy, not_found_probability=0.03),
    Profile("payments", _flapping),
    Profile("inventory", _outage),
)


@dataclass
class BreakerBooks:
    calls: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    final_state: str = "closed"


@dataclass
class OperationBooks:
    calls: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    sleeps: int = 0
    sleep_seconds: float = 0.0


@dataclass
class GroundTruth:
    """Exact counts of what happened, kept by the service itself."""

    seed: int
    duration_seconds: float = 0.0
    breakers: dict[str, BreakerBooks] = field(default_factory=dict)
    operations: dict[str, OperationBooks] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "duration_seconds": round(self.duration_seconds, 3),
            "breakers": {
                name: {
                    "calls": dict(sorted(b.calls.items())),
                    "transitions": dict(sorted(b.transitions.items())),
                    "final_state": b.final_state,
                }
                for name, b in self.breakers.items()
            },
            "operations": {
                name: {
                    "calls": dict(sorted(o.calls.items())),
                    "attempts": dict(sorted(o.attempts.items())),
                    "sleeps": o.sleeps,
                    "sleep_seconds": round(o.sleep_seconds, 6),
                }
                for name, o in self.operations.items()
            },
        }


class _TransitionBooks(pybreaker.CircuitBreakerListener):
    def __init__(self, books: BreakerBooks) -> None:
        self._books = books

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        old = _STATE_NAMES.get(old_state.name, old_state.name)
        new = _STATE_NAMES.get(new_state.name, new_state.name)
        self._books.transitions[f"{old}->{new}"] += 1
        self._books.final_state = new


class Dependency:
    """One downstream dependency: a breaker around it, a retrying operation in front of it."""

    def __init__(
        self,
        profile: Profile,
        rng: random.Random,
        truth: GroundTruth,
        storage: pybreaker.CircuitBreakerStorage | None,
    ) -> None:
        self.profile = profile
        self._rng = rng
        self.breaker_books = truth.breakers[profile.name] = BreakerBooks()
        operation = f"fetch_{profile.name}"
        self.operation_books = truth.operations[f"{OPERATION_MODULE}.{operation}"] = OperationBooks()
        self.breaker = pybreaker.CircuitBreaker(
            name=profile.name,
            fail_max=4,
            reset_timeout=1.5,
            exclude=[NotFound],
            listeners=[_TransitionBooks(self.breaker_books)],
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

        # Operations are named after the function tenacity retries (module.qualname).
        attempt.__module__, attempt.__qualname__, attempt.__name__ = OPERATION_MODULE, operation, operation
        self.fetch = self.retrying.wraps(attempt)

    def _count_sleep(self, retry_state: tenacity.RetryCallState) -> None:
        seconds = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self.operation_books.sleeps += 1
        self.operation_books.sleep_seconds += seconds

    def _serve(self) -> str:
        low, high = self.profile.latency_seconds
        time.sleep(self._rng.uniform(low, high))
        draw = self._rng.random()
        if draw < self.profile.failure_probability(self.progress):
            raise DependencyError(self.profile.name)
        if draw > 1 - self.profile.not_found_probability:
            raise NotFound(self.profile.name)
        return "ok"

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
            succeeded = False
        else:
            succeeded = True
        retried = "with_retry" if self._attempts_in_operation > 1 else "without_retry"
        self.operation_books.calls[f"{'success' if succeeded else 'failed'}_{retried}"] += 1
        return succeeded


@dataclass
class Simulation:
    """The service: ``rate`` operations per second spread over the three dependencies."""

    seed: int
    rate: float = 40.0
    storage_factory: Callable[[str], pybreaker.CircuitBreakerStorage | None] = lambda name: None
    truth: GroundTruth = field(init=False)
    dependencies: list[Dependency] = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.truth = GroundTruth(self.seed)
        self.dependencies = [
            Dependency(p, random.Random(rng.random()), self.truth, self.storage_factory(p.name))
            for p in PROFILES
        ]
        self._pick = random.Random(rng.random())

    def run(self, duration: float, on_tick: Callable[[float], None] = lambda progress: None) -> GroundTruth:
        started = time.monotonic()
        interval = 1.0 / self.rate
        next_call = started
        progress = 0.0
        while progress < 1.0:
            self._pick.choice(self.dependencies).call(progress)
            next_call += interval
            pause = next_call - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            progress = min(1.0, (time.monotonic() - started) / duration)
            on_tick(progress)
        self.truth.duration_seconds = time.monotonic() - started
        for dependency in self.dependencies:
            dependency.breaker_books.final_state = _STATE_NAMES.get(
                dependency.breaker.current_state, dependency.breaker.current_state
            )
        return self.truth
