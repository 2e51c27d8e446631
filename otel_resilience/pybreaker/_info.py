"""What the ``span_hook`` receives about a breaker call (importable without importing pybreaker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pybreaker


@dataclass(frozen=True)
class BreakerCallInfo:
    """A finished call through a breaker."""

    breaker: pybreaker.CircuitBreaker
    name: str
    """The reported breaker name (``resilience.circuit_breaker.name``)."""
    state: str
    """The state the call started in: ``closed``, ``open`` or ``half_open``."""
    outcome: str
    """``success``, ``failure``, ``rejected`` or ``ignored``."""
    error: BaseException | None
    """The function's exception (for a call that tripped the breaker, the original one), or the
    ``CircuitBreakerError`` of a rejected call; None on success."""
