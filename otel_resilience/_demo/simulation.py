"""A seeded service calling its dependencies, each guarded its own way (``dependencies/``).

The service keeps its own books (:class:`GroundTruth`) without looking at any telemetry: what ran,
what failed, what was rejected, each transition (through the libraries' own listeners) and each
sleep (through the retry libraries' own callbacks). The end-to-end tests compare those books with
what Prometheus received.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from otel_resilience._demo.dependencies import Dependency, DependencyOptions


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

    def ended(self, *, succeeded: bool, attempts: int) -> bool:
        """An operation ended after ``attempts`` attempts; returns ``succeeded``."""
        retried = "with_retry" if attempts > 1 else "without_retry"
        self.calls[f"{'success' if succeeded else 'failed'}_{retried}"] += 1
        return succeeded


@dataclass
class MachineBooks:
    """A state machine's triggers, transitions and machines by state, as the application saw them."""

    states: tuple[str, ...]
    triggers: Counter[str] = field(default_factory=Counter)
    """By ``trigger|previous state|outcome|error type`` (the error type empty when there is none)."""
    transitions: Counter[str] = field(default_factory=Counter)
    """By ``trigger|previous state->state``."""
    instances: Counter[str] = field(default_factory=Counter)
    """Live machines by state at the end of the run."""

    def fired(self, trigger: str, previous: str, state: str, outcome: str, error_type: str | None) -> None:
        self.triggers[f"{trigger}|{previous}|{outcome}|{error_type or ''}"] += 1
        if outcome == "transitioned" or (outcome == "failed" and state != previous):
            self.transitions[f"{trigger}|{previous}->{state}"] += 1


@dataclass
class GroundTruth:
    """Exact counts of what happened, kept by the service itself."""

    seed: int
    duration_seconds: float = 0.0
    breakers: dict[str, BreakerBooks] = field(default_factory=dict)
    operations: dict[str, OperationBooks] = field(default_factory=dict)
    diagnostics: dict[str, Counter[str]] = field(default_factory=dict)
    """Per finding, the calls or operations affected, by breaker or operation name."""
    machines: dict[str, MachineBooks] = field(default_factory=dict)

    def found(self, finding: str, name: str) -> None:
        self.diagnostics.setdefault(finding, Counter())[name] += 1

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
            "diagnostics": {
                finding: dict(sorted(names.items())) for finding, names in self.diagnostics.items()
            },
            "machines": {
                name: {
                    "triggers": dict(sorted(m.triggers.items())),
                    "transitions": dict(sorted(m.transitions.items())),
                    "instances": {state: m.instances[state] for state in m.states},
                }
                for name, m in self.machines.items()
            },
        }


@dataclass
class Simulation:
    """The service: ``rate`` operations per second spread over its dependencies."""

    seed: int
    rate: float = 40.0
    options: DependencyOptions | None = None
    truth: GroundTruth = field(init=False)
    dependencies: list[Dependency] = field(init=False)

    def __post_init__(self) -> None:
        from otel_resilience._demo.dependencies import DEPENDENCIES, DependencyOptions

        rng = random.Random(self.seed)
        self.truth = GroundTruth(self.seed)
        options = self.options or DependencyOptions()
        self.dependencies = [
            dependency
            for make in DEPENDENCIES
            for dependency in make(random.Random(rng.random()), self.truth, options)
        ]
        self._pick = random.Random(rng.random())

    def run(self, duration: float, on_tick: Callable[[float], None] = lambda progress: None) -> GroundTruth:
        started = time.monotonic()
        interval = 1.0 / self.rate
        next_call = started
        progress = 0.0
        try:
            while progress < 1.0:
                self._pick.choice(self.dependencies).call(progress)
                next_call += interval
                pause = next_call - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                progress = min(1.0, (time.monotonic() - started) / duration)
                on_tick(progress)
        finally:
            self.truth.duration_seconds = time.monotonic() - started
            for dependency in self.dependencies:
                dependency.finish()
        return self.truth
