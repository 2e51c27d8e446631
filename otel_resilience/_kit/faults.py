"""Keep every failure of our own telemetry away from the application, and report it once.

Cold paths (registration, transitions, observation, span hooks) use :class:`contain`, as a ``with``
block or a decorator. Hot paths (a call's start and end) keep an inline ``try``/``except`` that
calls :func:`report_fault`: there the guard's two method calls would cost more than the rest of
our code on that path (``bench/fault_guard.py`` measures both).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import traceback
from typing import TYPE_CHECKING, Callable, TypeVar

if TYPE_CHECKING:
    from types import TracebackType
    from typing import ParamSpec

    P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("otel_resilience")

_reported: set[tuple[str, type[BaseException]]] = set()
"""(place, exception type) already logged: each is logged once per process."""
_reported_lock = threading.Lock()


def report_fault(where: str, exc: BaseException) -> None:
    """Log a failure of the telemetry path: once per place and exception type, never raised."""
    key = (where, type(exc))
    if key in _reported:
        return
    with _reported_lock:
        if key in _reported:
            return
        _reported.add(key)
    with contextlib.suppress(Exception):
        # The traceback goes in as text: a log record holding the exception would keep its frames,
        # and the application's objects they refer to, alive for as long as a handler keeps records.
        logger.warning(
            "otel-resilience: telemetry failed in %s; the application is not affected and this is"
            " logged once\n%s",
            where,
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip(),
        )


class contain:
    """Swallow and report (once) an ``Exception`` raised by telemetry code in its block or function.

    Stateless, so one instance can guard many blocks at once, from any thread. ``BaseException``s
    that are not ``Exception`` (``KeyboardInterrupt``, ``SystemExit``) pass through: they are the
    application's, not faults of ours.
    """

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if isinstance(exc, Exception):
            report_fault(self.where, exc)
            return True
        return False

    def __call__(self, function: Callable[P, R]) -> Callable[P, R | None]:
        """Guard ``function``: a fault is reported and the call returns None."""

        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return function(*args, **kwargs)
            except Exception as fault:
                report_fault(self.where, fault)
                return None

        return guarded
