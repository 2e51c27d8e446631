"""The demo service's dependencies: one module per way of guarding a call, each keeping its own books.

A dependency module provides a factory, ``(rng, truth, options) -> list[Dependency]``, listed in
:data:`DEPENDENCIES`. Its dependencies register their breakers and operations in the
:class:`~otel_resilience._demo.simulation.GroundTruth` and count every call, outcome, attempt, sleep
and transition there themselves, from what the application sees (results, exceptions, the
libraries' own listeners and callbacks), never from telemetry: the demo's final check and the
end-to-end tests compare the telemetry with those books.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from otel_resilience._demo.simulation import GroundTruth

OPERATION_MODULE = "demo"
"""The module operations are named in (``demo.fetch_payments``)."""


class DependencyError(Exception):
    """The dependency failed: a failure for the breaker, retried by the retry policy."""


class NotFound(Exception):
    """A business answer: excluded by the breaker, not retried."""


@dataclass
class Profile:
    """How a dependency behaves at a point of the run (``progress`` from 0 to 1)."""

    name: str
    failure_probability: Callable[[float], float]
    not_found_probability: float = 0.0
    latency_seconds: tuple[float, float] = (0.001, 0.004)

    def serve(self, rng: random.Random, progress: float) -> str:
        """One answer: ``ok``, or a raised :class:`DependencyError` or :class:`NotFound`."""
        draw = rng.random()
        if draw < self.failure_probability(progress):
            raise DependencyError(self.name)
        if draw > 1 - self.not_found_probability:
            raise NotFound(self.name)
        return "ok"

    def latency(self, rng: random.Random) -> float:
        low, high = self.latency_seconds
        return rng.uniform(low, high)


def healthy(progress: float) -> float:
    return 0.02


def flapping(progress: float) -> float:
    # Bad for one tenth of the run out of every fifth.
    return 0.7 if int(progress * 10) % 2 == 1 else 0.05


def outage(progress: float) -> float:
    return 1.0 if 0.25 <= progress < 0.55 else 0.01


def named(function: Callable[..., Any], operation: str) -> Callable[..., Any]:
    """Name a local function ``demo.<operation>``: retried operations are named after their function."""
    function.__module__, function.__qualname__, function.__name__ = OPERATION_MODULE, operation, operation
    return function


@dataclass
class DependencyOptions:
    """What the command line can change about the dependencies."""

    storage_factory: Callable[[str], Any] = field(default=lambda name: None)
    """A breaker's shared state storage by breaker name (``--redis``), or None for in-process."""


class Dependency(Protocol):
    """One downstream dependency, as the simulation and the live view see it."""

    name: str
    breaker_books: Any
    """Its :class:`~otel_resilience._demo.simulation.BreakerBooks` (calls by outcome, transitions)."""
    operation_books: Any
    """Its :class:`~otel_resilience._demo.simulation.OperationBooks` (operations, attempts, sleeps)."""

    def call(self, progress: float) -> bool:
        """One operation; True when it succeeded."""

    def state(self) -> str:
        """The breaker's state now, spelled as in the contract (``closed``, ``open``, ``half_open``)."""

    def finish(self) -> None:
        """The run ended: note final states in the books and release what the dependency holds."""


DependencyFactory = Callable[[random.Random, "GroundTruth", DependencyOptions], "Sequence[Dependency]"]


def _registry() -> list[DependencyFactory]:
    from otel_resilience._demo.dependencies import (
        async_aiobreaker,
        async_circuitbreaker,
        async_pybreaker,
        backoff_purgatory,
        orders_transitions,
        pybreaker_tenacity,
    )

    return [
        pybreaker_tenacity.dependencies,
        async_pybreaker.dependencies,
        backoff_purgatory.dependencies,
        async_circuitbreaker.dependencies,
        async_aiobreaker.dependencies,
        orders_transitions.dependencies,
    ]


DEPENDENCIES: list[DependencyFactory] = _registry()
"""Every dependency factory, in the order the simulation draws their random seeds."""
