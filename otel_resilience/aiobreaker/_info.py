"""What the ``span_hook`` receives about a breaker call (importable without importing aiobreaker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiobreaker.circuitbreaker import CircuitBreaker


@dataclass(frozen=True)
class AioBreakerCallInfo:
    """A finished call through an aiobreaker ``CircuitBreaker``."""

    breaker: CircuitBreaker
    name: str
    """The reported breaker name (``resilience.circuit_breaker.name``)."""
    state: str
    """The state the call ran in (``half_open`` for the probe that follows an open period)."""
    outcome: str
    """``success``, ``failure``, ``rejected`` or ``ignored``."""
    error: BaseException | None
    """What explains the outcome: the function's exception (for the call that tripped the breaker,
    the original one, not the ``CircuitBreakerError`` raised from it), the rejection's
    ``CircuitBreakerError``; None on success."""
