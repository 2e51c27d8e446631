"""What the ``span_hook`` receives about a call through a purgatory breaker (importable without it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from purgatory.domain.model import Context


@dataclass(frozen=True)
class PurgatoryCallInfo:
    """A finished call through a circuit breaker."""

    context: Context
    """purgatory's breaker state for this call (with Redis storage, loaded for this call)."""
    name: str
    """The reported breaker name (``resilience.circuit_breaker.name``)."""
    state: str
    """The state the call ran in: ``closed``, ``open`` (rejected) or ``half_open``."""
    outcome: str
    """``success``, ``failure``, ``rejected`` or ``ignored``."""
    error: BaseException | None
    """The block's exception, or the ``OpenedState`` that rejected the call; None on success."""
