"""What the ``span_hook`` receives about a retried operation or attempt (importable without backoff)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class BackoffCallInfo:
    """A finished operation or attempt of a function decorated with ``backoff.on_*``."""

    target: Callable[..., Any]
    """The decorated function (the user's own, not our proxy of it)."""
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
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
