"""The wrappers: small closures over one :class:`RetryTelemetry`, installed on tenacity's classes.

Class-level wraps cover retrying objects created before ``instrument()`` and decorated functions.
Every entry form (``Retrying.__call__``, ``AsyncRetrying.__call__``, ``TornadoRetrying.__call__``,
the for-attempt forms ``__iter__`` and ``__anext__``) asks ``iter`` what to do next. Hook points:

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

Until something can record (no SDK configured), only ``iter`` is wrapped, to notice one: the other
hooks would cost every attempt a wrapt call or three (about what tenacity's own bookkeeping of an
attempt costs) for nothing. ``iter`` installs them before the first operation it records starts.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable

import tenacity

from otel_resilience._deferred import run_deferred
from otel_resilience._faults import report_fault
from otel_resilience._hooks import Hooks, LateHooks, Targets, Wrapper
from otel_resilience._settings import resolve_settings
from otel_resilience.tenacity._telemetry import RetryTelemetry, leave_attempt

_hooks = Hooks()


def _iter_wrapper(telemetry: RetryTelemetry, attempt_hooks: LateHooks) -> Wrapper:
    live = telemetry.live

    def iter(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not (live.live or live()):  # first and cheapest: without an SDK, nothing else runs
            return wrapped(*args, **kwargs)
        if not attempt_hooks.installed:
            attempt_hooks.install()
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


def _async_iter_wrapper(telemetry: RetryTelemetry, attempt_hooks: LateHooks) -> Wrapper:
    live = telemetry.live

    async def iter(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not (live.live or live()):
            return await wrapped(*args, **kwargs)
        if not attempt_hooks.installed:
            attempt_hooks.install()
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

    return iter


def _ended_wrapper(telemetry: RetryTelemetry, failed: bool) -> Wrapper:
    operations = telemetry.operations

    def ended(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        if operations:  # none in progress (always so without an SDK): no attempt of ours ended
            # set_exception(exc_info) took its argument without complaint: it is a (type, value, tb).
            exc = (kwargs["exc_info"] if "exc_info" in kwargs else args[0])[1] if failed else None
            telemetry.attempt_ended(instance, exc)
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


def _exit(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        leave_attempt(instance, args[0] if args else kwargs.get("exc_type"))
    except Exception as fault:
        report_fault("tenacity attempt context", fault)
    return wrapped(*args, **kwargs)


def instrument(kwargs: dict[str, Any]) -> None:
    settings = resolve_settings(kwargs)
    telemetry = RetryTelemetry(settings)
    attempt_targets: Targets = [
        (tenacity.RetryCallState, "set_result", _ended_wrapper(telemetry, failed=False)),
        (tenacity.RetryCallState, "set_exception", _ended_wrapper(telemetry, failed=True)),
    ]
    if telemetry.tracer is not None:
        enter = _enter_wrapper(telemetry)
        attempt_targets += [
            (tenacity.AttemptManager, "__enter__", enter),
            (tenacity.AttemptManager, "__exit__", _exit),
        ]
        if "__aenter__" in vars(tenacity.AttemptManager):  # its __aexit__ calls __exit__
            attempt_targets.append((tenacity.AttemptManager, "__aenter__", enter))
    attempt_hooks = _hooks.later(attempt_targets)
    targets: Targets = [(tenacity.BaseRetrying, "iter", _iter_wrapper(telemetry, attempt_hooks))]
    # tenacity >= 8.3: AsyncRetrying has an `async def iter` of its own (before, it used the sync one).
    if inspect.iscoroutinefunction(vars(tenacity.AsyncRetrying).get("iter")):
        targets.append((tenacity.AsyncRetrying, "iter", _async_iter_wrapper(telemetry, attempt_hooks)))
    _hooks.wrap(targets)
    if telemetry.live.look():  # an SDK set already, as under opentelemetry-instrument
        attempt_hooks.install()


def uninstrument() -> None:
    _hooks.unwrap_all()
    run_deferred()
