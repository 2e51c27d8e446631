"""What the ``span_hook`` receives about a retried operation or attempt (importable without tenacity)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tenacity


@dataclass(frozen=True)
class RetryCallInfo:
    """A finished operation or attempt."""

    retry_state: tenacity.RetryCallState | None
    """tenacity's state of the operation (``fn``, ``args``, ``retry_object``, ``outcome``...); None
    when the operation was recorded after tenacity released it (a loop left early)."""
    name: str
    """The reported operation name (``resilience.retry.name``)."""
    attempt: int | None
    """The 1-based attempt number on attempt spans; None on the operation span."""
    attempts: int
    """Attempts the operation made so far."""
    outcome: str
    """On the operation span a ``RetryOutcome`` value, on attempt spans ``success`` or ``failure``."""
    error: BaseException | None
    """The attempt's exception, or the exception the operation raised; None otherwise."""
