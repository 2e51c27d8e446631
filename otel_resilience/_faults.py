"""Keep every failure of our own telemetry away from the application, and report it once."""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback

logger = logging.getLogger("otel_resilience")

_reported: set[tuple[str, type[BaseException]]] = set()
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


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its class as ``module.QualName``, builtins without module."""
    cls = type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"
