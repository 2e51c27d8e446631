"""tenacity's patch points: small closures over one :class:`RetryTelemetry`, on tenacity's classes.

Class-level wraps cover retrying objects created before ``instrument()`` and decorated functions.
Every entry form (``Retrying.__call__``, ``AsyncRetrying.__call__``, ``TornadoRetrying.__call__``,
the for-attempt forms ``__iter__`` and ``__anext__``) asks ``iter`` what to do next. Patch points:

- ``BaseRetrying.iter`` and ``AsyncRetrying.iter`` (its own ``async def``): the first call starts
  the operation; ``DoAttempt`` starts an attempt; ``DoSleep`` means the attempt failed and tenacity
  backs off; a returned value or an exception ends the operation;
- ``RetryCallState.set_result`` / ``set_exception``: an attempt ran. A for-attempt loop left with
  ``return`` or ``break`` inside ``with attempt:`` never calls ``iter`` again; its operation ends
  when tenacity releases the state (see ``_telemetry``);
- ``AttemptManager.__enter__`` / ``__aenter__`` / ``__exit__`` (with spans only): the attempt span
  is the current span inside ``with attempt:``. The ``with`` statement brackets the body, so this
  nests with the application's own context changes, and each asyncio task entering its attempt
  (even of one shared ``AsyncRetrying``) attaches and detaches in its own context.

Until something can record (no SDK configured), only ``iter`` is patched, to notice one: the other
patches would cost every attempt a wrapt call or three (about what tenacity's own bookkeeping of an
attempt costs) for nothing. They are late patches, installed when the SDK gate first opens.

``_telemetry`` has the table of what each patch point changes in an operation's lifecycle.
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any, Callable

import tenacity

from otel_resilience._kit.faults import contain
from otel_resilience._kit.gate import gated
from otel_resilience._kit.patching import PatchPlan, PatchTarget, Wrapper
from otel_resilience.tenacity._telemetry import RetryTelemetry, leave_attempt

if TYPE_CHECKING:
    from otel_resilience._kit.settings import Settings
    from otel_resilience.tenacity._info import RetryCallInfo


def _iter_wrapper(telemetry: RetryTelemetry) -> Wrapper:
    gate = telemetry.gate

    def iter(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # The gate inline, not `gated`: iter runs twice per attempt, where a wrapper layer shows.
        if not (gate.open or gate()):
            return wrapped(*args, **kwargs)
        retry_state: Any = kwargs.get("retry_state", args[0] if args else None)
        operation = telemetry.start(instance, retry_state)
        if operation is None:
            return wrapped(*args, **kwargs)
        try:
            action = wrapped(*args, **kwargs)
        except BaseException as exc:
            telemetry.raised(operation, instance, retry_state, exc)
            raise
        telemetry.decided(operation, instance, retry_state, action)
        return action

    return iter


def _async_iter_wrapper(telemetry: RetryTelemetry) -> Wrapper:
    async def iter(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        retry_state: Any = kwargs.get("retry_state", args[0] if args else None)
        operation = telemetry.start(instance, retry_state)
        if operation is None:
            return await wrapped(*args, **kwargs)
        try:
            action = await wrapped(*args, **kwargs)
        except BaseException as exc:
            telemetry.raised(operation, instance, retry_state, exc)
            raise
        telemetry.decided(operation, instance, retry_state, action)
        return action

    return gated(telemetry.gate, iter)


def _ended_wrapper(telemetry: RetryTelemetry, *, failed: bool) -> Wrapper:
    operations = telemetry.operations

    # A wrapper of its own, not `after_call`: it runs once or twice per attempt, where a layer shows.
    def ended(
        wrapped: Callable[..., Any], retry_state: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        if operations:  # none in progress (always so without an SDK): no attempt of ours ended
            # set_exception(exc_info) took its argument without complaint: it is a (type, value, tb).
            exc = (kwargs["exc_info"] if "exc_info" in kwargs else args[0])[1] if failed else None
            telemetry.attempt_ended(retry_state, exc)
        return result

    return ended


def _enter_wrapper(telemetry: RetryTelemetry) -> Wrapper:
    def enter(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)  # __aenter__: the coroutine, awaited next in this context
        telemetry.enter_attempt(instance, sys._getframe(1))
        return result

    return enter


_leaving = contain("tenacity attempt context")


def _exit(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    with _leaving:
        leave_attempt(instance, args[0] if args else kwargs.get("exc_type"))
    return wrapped(*args, **kwargs)


def instrumentation(
    settings: Settings[RetryCallInfo], scope: str, on_open: Callable[[], None]
) -> tuple[RetryTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    telemetry = RetryTelemetry(settings, scope, on_open=on_open)
    eager: list[PatchTarget] = [(tenacity.BaseRetrying, "iter", _iter_wrapper(telemetry))]
    # tenacity >= 8.3: AsyncRetrying has an `async def iter` of its own (before, it used the sync one).
    if inspect.iscoroutinefunction(vars(tenacity.AsyncRetrying).get("iter")):
        eager.append((tenacity.AsyncRetrying, "iter", _async_iter_wrapper(telemetry)))
    late: list[PatchTarget] = [
        (tenacity.RetryCallState, "set_result", _ended_wrapper(telemetry, failed=False)),
        (tenacity.RetryCallState, "set_exception", _ended_wrapper(telemetry, failed=True)),
    ]
    if telemetry.tracer is not None:
        enter = _enter_wrapper(telemetry)
        late += [
            (tenacity.AttemptManager, "__enter__", enter),
            (tenacity.AttemptManager, "__exit__", _exit),
        ]
        if "__aenter__" in vars(tenacity.AttemptManager):  # its __aexit__ calls __exit__
            late.append((tenacity.AttemptManager, "__aenter__", enter))
    return telemetry, PatchPlan(eager, late)
