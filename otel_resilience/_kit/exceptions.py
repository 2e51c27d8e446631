"""Exceptions in telemetry: their ``error.type``, and their record on spans, with or without messages."""

from __future__ import annotations

from asyncio import CancelledError
from traceback import walk_tb
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Span

_EXCEPTION_EVENT = "exception"
_EXCEPTION_TYPE = "exception.type"
_EXCEPTION_MESSAGE = "exception.message"
_EXCEPTION_STACKTRACE = "exception.stacktrace"
STACK_FRAMES = 32
"""Frames of a recorded stack, the innermost: enough to locate a failure, bounded for deep stacks."""


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


def record_exception(
    span: Span, exc: BaseException, *, messages: bool, timestamp: int | None = None, stack: bool = True
) -> None:
    """Record ``exc`` on ``span`` as an ``exception`` event: its type, message and stack.

    The stack is :func:`stack_summary`'s, without source lines: what locates the failure, at a
    fraction of the cost of the SDK's ``record_exception`` (which formats the whole chain and reads
    every source line), so that failures storms cost telemetry no more than successes. ``stack=False``
    leaves it out where nothing ran (a breaker's rejection).

    An exception's message can carry user data (an e-mail address, a query), and so can the last
    line of its stack: without ``messages``, only its type is recorded.
    """
    attributes = {_EXCEPTION_TYPE: error_type(exc)}
    if messages:
        attributes[_EXCEPTION_MESSAGE] = str(exc)
        if stack:
            attributes[_EXCEPTION_STACKTRACE] = stack_summary(exc)
    span.add_event(_EXCEPTION_EVENT, attributes, timestamp=timestamp)


def stack_summary(exc: BaseException) -> str:
    """``exc``'s traceback as Python prints it, but without source lines or chained exceptions.

    File, line and function of each frame (the innermost :data:`STACK_FRAMES`, which hold the
    failure), then the exception's type and message.
    """
    frames = [(frame.f_code, line) for frame, line in walk_tb(exc.__traceback__)]
    lines = ["Traceback (most recent call last):"]
    if len(frames) > STACK_FRAMES:
        lines.append(f"  ... {len(frames) - STACK_FRAMES} outer frames left out")
    lines += [
        f'  File "{code.co_filename}", line {line}, in {code.co_name}'
        for code, line in frames[-STACK_FRAMES:]
    ]
    message = str(exc)
    lines.append(f"{error_type(exc)}: {message}" if message else error_type(exc))
    return "\n".join(lines)
