"""Exceptions in telemetry: their ``error.type``, and their record on spans, with or without messages."""

from __future__ import annotations

from asyncio import CancelledError
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import CodeType, TracebackType

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
    span: Span,
    exc: BaseException,
    *,
    messages: bool,
    timestamp: int | None = None,
    etype: str | None = None,
) -> None:
    """Record ``exc`` on ``span`` as an ``exception`` event: its type, message and stack.

    ``etype`` is ``error_type(exc)``, when the caller has it already.

    The stack is the traceback as Python prints it, but without source lines or chained exceptions:
    file, line and function of each frame (the innermost :data:`STACK_FRAMES`, which hold the
    failure), then the exception's type and message. That locates the failure at a fraction of the
    cost of the SDK's ``record_exception`` (which formats the whole chain and reads every source
    line), so that failure storms cost telemetry little more than successes.

    An exception's message can carry user data (an e-mail address, a query), and so can the last
    line of its stack: without ``messages``, only its type is recorded.
    """
    if etype is None:
        etype = error_type(exc)
    attributes = {_EXCEPTION_TYPE: etype}
    if messages:
        message = str(exc)
        attributes[_EXCEPTION_MESSAGE] = message
        last_line = f"{etype}: {message}" if message else etype
        attributes[_EXCEPTION_STACKTRACE] = f"{_frames_text(exc.__traceback__)}\n{last_line}"
    span.add_event(_EXCEPTION_EVENT, attributes, timestamp=timestamp)


_frames_texts: dict[tuple[int, ...], tuple[str, list[CodeType]]] = {}
"""The frame lines of each place a failure was raised from (its frames' code and line numbers).

Failures come in storms, from a few places: each place's lines are formatted once. The codes are
kept with the text, so that the ids in the key stay theirs.
"""
_FRAMES_TEXTS_MAX = 512


def _frames_text(tb: TracebackType | None) -> str:
    """The ``Traceback (most recent call last):`` block of ``tb``: a line per frame, no source."""
    place: list[int] = []
    add = place.append
    step = tb
    while step is not None:
        add(id(step.tb_frame.f_code))
        add(step.tb_lineno)
        step = step.tb_next
    key = tuple(place)
    cached = _frames_texts.get(key)
    if cached is not None:
        return cached[0]
    codes: list[CodeType] = []
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    lines = ["Traceback (most recent call last):"]
    if len(codes) > STACK_FRAMES:
        lines.append(f"  ... {len(codes) - STACK_FRAMES} outer frames left out")
    first = max(len(codes) - STACK_FRAMES, 0)
    lines += [
        f'  File "{code.co_filename}", line {line}, in {code.co_name}'
        for code, line in zip(codes[first:], key[2 * first + 1 :: 2])
    ]
    text = "\n".join(lines)
    if len(_frames_texts) >= _FRAMES_TEXTS_MAX:
        _frames_texts.clear()  # many places: start over (a clear is one atomic step under threads)
    _frames_texts[key] = (text, codes)
    return text
