"""backoff's patch points: the decorator's loop builders, and the helper its loops call at run time.

``backoff.on_exception``/``on_predicate`` pick ``backoff._sync.retry_exception`` (or
``retry_predicate``, or their ``backoff._async`` twins for ``async def`` targets) by attribute at
decoration time, and that builder returns the loop, a closure. Wrapping the four builders (eager:
they must see every decoration made while instrumented) gives each new decoration:

- a :class:`TargetProxy` as the loop's target: it times each attempt and makes its span current;
- for ``on_predicate``, the predicate wrapped to note whether it rejected the attempt's value;
- a proxy around the returned loop: it brackets the operation and keeps it in a context variable.

The loops call ``_call_handlers`` of their module by its global name on every run, with ``wait=``
when they back off: that patch (late: it matters only to recorded calls) ends the failed attempt
with its backoff, and is all that functions decorated before ``instrument()`` can be seen by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import backoff._async
import backoff._sync

from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.instruments import active_recorder
from otel_resilience._kit.patching import PatchPlan, PatchTarget, Wrapper
from otel_resilience.backoff._telemetry import (
    BackoffTelemetry,
    FunctionProxy,
    Operation,
    Policy,
    TargetProxy,
    current,
)

if TYPE_CHECKING:
    from otel_resilience._kit.settings import Settings
    from otel_resilience.backoff._info import BackoffCallInfo

_decorating = contain("backoff decoration")


def _recording(scope: str) -> BackoffTelemetry | None:
    """The telemetry to record a call with: the scope's active one, once something can record.

    Decorations outlive ``instrument()``: their proxies look the telemetry up on every call, so
    they record nothing once uninstrumented, and record again when instrumented again.
    """
    telemetry: Any = active_recorder(scope)
    if telemetry is None or not (telemetry.gate.open or telemetry.gate()):
        return None
    return telemetry  # type: ignore[no-any-return]


class _Running:
    """A recorded operation's loop runs inside: it is the context's operation, and ends on exit."""

    __slots__ = ("operation", "token")

    def __init__(self, operation: Operation) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        self.token = current.set(self.operation)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        current.reset(self.token)
        self.operation.telemetry.finish(self.operation, exc)  # an exception goes on unchanged


class _Attempting:
    """The target runs inside: one attempt of the operation."""

    __slots__ = ("operation",)

    def __init__(self, operation: Operation) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        self.operation.telemetry.attempt(self.operation)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.operation.telemetry.ran(self.operation, exc)


def _sync_attempt(policy: Policy) -> Wrapper:
    def attempt(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        operation = current.get()
        if operation is None or operation.policy is not policy:  # called outside its recorded loop
            return wrapped(*args, **kwargs)
        with _Attempting(operation):
            return wrapped(*args, **kwargs)

    return attempt


async def _attempted(operation: Operation, awaitable: Any) -> Any:
    with _Attempting(operation):  # the loop awaits the target's coroutine as soon as it has it
        return await awaitable


def _async_attempt(policy: Policy) -> Wrapper:
    def attempt(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        operation = current.get()
        if operation is None or operation.policy is not policy:
            return wrapped(*args, **kwargs)
        try:
            awaitable = wrapped(*args, **kwargs)
        except BaseException:  # not even a coroutine (arguments that do not bind): a failed attempt
            with _Attempting(operation):
                raise
        return _attempted(operation, awaitable)

    return attempt


async def _run(running: _Running, awaitable: Any) -> Any:
    with running:  # in the coroutine's own context: the caller's is untouched
        return await awaitable


def _operation(scope: str, policy: Policy, *, is_async: bool) -> Wrapper:
    def operation(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        telemetry = _recording(scope)
        recorded = None if telemetry is None else telemetry.begin(policy, args, kwargs)
        if recorded is None:
            return wrapped(*args, **kwargs)
        if not is_async:
            with _Running(recorded):
                return wrapped(*args, **kwargs)
        # backoff's loop is a coroutine function: calling it only creates the coroutine, so the
        # operation starts now and the loop (with its context variable) runs when awaited.
        try:
            loop = wrapped(*args, **kwargs)
        except BaseException:  # arguments that do not bind: the operation failed at once
            with _Running(recorded):
                raise
        return _run(_Running(recorded), loop)

    return operation


def _judging(predicate: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``on_predicate``'s predicate, noting its verdict on the operation it judged (called once)."""

    def judged(value: Any) -> Any:
        verdict = predicate(value)
        operation = current.get()
        if operation is not None:
            try:
                operation.rejected = bool(verdict)
            except Exception as fault:  # a verdict whose truth raises: backoff's own test raises too
                report_fault("backoff predicate verdict", fault)
        return verdict

    return judged


def _builder(scope: str, *, is_async: bool, predicate: bool) -> Wrapper:
    attempt_wrapper = _async_attempt if is_async else _sync_attempt

    def build(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        built: tuple[tuple[Any, ...], Policy] | None = None
        with _decorating:
            target = args[0]
            policy = Policy(
                target, unbounded=kwargs.get("max_tries") is None and kwargs.get("max_time") is None
            )
            proxied = [TargetProxy(policy, attempt_wrapper(policy)), *args[1:]]
            if predicate:
                proxied[2] = _judging(proxied[2])
            built = (tuple(proxied), policy)
        if built is None:  # a fault of ours: backoff builds its loop as if uninstrumented
            return wrapped(*args, **kwargs)
        loop = wrapped(*built[0], **kwargs)
        return FunctionProxy(loop, _operation(scope, built[1], is_async=is_async))

    return build


def _handlers(telemetry: BackoffTelemetry) -> Wrapper:
    def call_handlers(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if "wait" in kwargs:  # on_backoff: the attempt failed and backoff sleeps
            telemetry.waits(kwargs.get("target"), kwargs["wait"], kwargs)
        return wrapped(*args, **kwargs)

    return call_handlers


def instrumentation(
    settings: Settings[BackoffCallInfo], scope: str, on_open: Callable[[], None]
) -> tuple[BackoffTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    telemetry = BackoffTelemetry(settings, scope, on_open=on_open)
    eager: list[PatchTarget] = [
        (module, builder, _builder(scope, is_async=module is backoff._async, predicate=predicate))
        for module in (backoff._sync, backoff._async)
        for builder, predicate in (("retry_exception", False), ("retry_predicate", True))
    ]
    late: list[PatchTarget] = [
        (module, "_call_handlers", _handlers(telemetry)) for module in (backoff._sync, backoff._async)
    ]
    return telemetry, PatchPlan(eager, late)
