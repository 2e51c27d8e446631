"""What the ``span_hook`` receives about a breaker call (importable without importing circuitbreaker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import circuitbreaker


@dataclass(frozen=True)
class BreakerCallInfo:
    """A finished call through a circuitbreaker ``CircuitBreaker``."""

    breaker: circuitbreaker.CircuitBreaker
    name: str
    """The reported breaker name (``resilience.circuit_breaker.name``)."""
    state: str
    """The state the call started in: ``closed``, ``open`` or ``half_open``."""
    outcome: str
    """``success``, ``failure``, ``rejected`` or ``ignored``."""
    error: BaseException | None
    """The exception the guarded code raised (failure, ignored); None on success and on rejections
    (the rejection's ``CircuitBreakerError`` is raised after the call is recorded)."""
    fallback: bool
    """Whether the breaker's ``fallback_function`` served this rejected call."""
