"""Exceptions in telemetry: their ``error.type``, and their record on spans, with or without messages."""

from __future__ import annotations

from asyncio import CancelledError
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Span

_EXCEPTION_EVENT = "exception"
_EXCEPTION_TYPE = "exception.type"


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its class as ``module.QualName``, builtins without module."""
    cls = type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` cancels rather than fails: asyncio's ``CancelledError``, trio's ``Cancelled``.

    anyio raises its backend's. trio is not imported: its class is recognised by module and name.
    """
    cls = type(exc)
    return issubclass(cls, CancelledError) or (
        cls.__name__ == "Cancelled" and cls.__module__.startswith("trio")
    )


def record_exception(span: Span, exc: BaseException, *, messages: bool, timestamp: int | None = None) -> None:
    """Record ``exc`` on ``span``; without ``messages``, only its type.

    An exception's message can carry user data (an e-mail address, a query). Its formatted
    traceback ends with that message, and so do those of its ``__context__`` chain: without
    messages, neither is recorded.
    """
    if messages:
        span.record_exception(exc, timestamp=timestamp)
    else:
        span.add_event(_EXCEPTION_EVENT, {_EXCEPTION_TYPE: error_type(exc)}, timestamp=timestamp)
