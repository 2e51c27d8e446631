"""purgatory's patch points, all on ``purgatory.domain.model``, shared by both factories and storages.

- ``Context.__enter__``: a call starts; the ``OpenedState`` it raises is a rejection;
- ``Context.__exit__``: the call ends; inside it, ``Context.handle_exception`` either hands the
  exception to the state (``ClosedState``/``HalfOpenedState``/``OpenedState.handle_exception``: a
  counted failure) or, for an excluded exception, ends the request as a success (``ignored``);
- ``Context.set_state``: every transition made in this process.

Handlers (``add_listener``) are bound into each factory's message bus at construction: nothing is
registered there, so the application's listeners and the bus stay as they were.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from purgatory.domain.model import ClosedState, Context, HalfOpenedState, OpenedState

from otel_resilience._kit.diagnostics import register_rejection_error
from otel_resilience._kit.gate import gated
from otel_resilience._kit.patching import PatchPlan, PatchTarget, Wrapper, after_call
from otel_resilience.purgatory._telemetry import PurgatoryTelemetry, Unrecorded, counted, current

if TYPE_CHECKING:
    from otel_resilience._kit.settings import Settings
    from otel_resilience.purgatory._info import PurgatoryCallInfo


def _enter_wrapper(telemetry: PurgatoryTelemetry) -> Wrapper:
    gate = telemetry.gate

    def enter(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # purgatory raises one OpenedState object for every call an opening rejects, and each raise
        # adds the frames the exception passes through to that object's traceback, which keeps them
        # (and what they hold) until the breaker half-opens. So this is one frame, with the SDK gate
        # inline, and a refused call leaves nothing in it.
        if not (gate.open or gate()):
            return wrapped(*args, **kwargs)
        call = telemetry.start(instance) if is_instrumentation_enabled() else None
        if call is None:  # suppressed, or its telemetry failed to start
            result = wrapped(*args, **kwargs)
            outer = current.get()
            if outer is not None and outer.context is instance:  # its __exit__ is not the outer's
                current.set(Unrecorded(instance, outer))
            return result
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            telemetry.rejected(call, exc)
            del call, wrapped, instance, args, kwargs
            raise
        telemetry.entered(call)
        return result

    return enter


def _exit_wrapper(telemetry: PurgatoryTelemetry) -> Wrapper:
    def exit(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = current.get()
        if call is None or call.context is not instance or isinstance(call, Unrecorded):
            # Not recorded (suppressed, or entered before anything recorded): only the gauges
            # follow what purgatory does with it.
            try:
                return wrapped(*args, **kwargs)
            finally:
                if isinstance(call, Unrecorded) and call.context is instance:
                    current.set(call.outer)
                telemetry.see(instance)
        exc = args[1] if len(args) > 1 else kwargs.get("exc")
        # The call stays current while purgatory judges it: a state that counts the exception marks
        # it, and a trip's state_change event lands on its span.
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as raised:  # an exclusion predicate or a state raised: a failure
            call.counted = True
            telemetry.leave(call)
            telemetry.finish(call, raised)
            raise
        telemetry.leave(call)
        telemetry.finish(call, exc)
        return result

    return exit


def _set_state_wrapper(telemetry: PurgatoryTelemetry) -> Wrapper:
    def set_state(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not is_instrumentation_enabled():  # the call's __exit__ refreshes the gauges
            return wrapped(*args, **kwargs)
        previous = instance._state.name
        result = wrapped(*args, **kwargs)
        telemetry.changed(instance, previous)
        return result

    return gated(telemetry.gate, set_state)


def instrumentation(
    settings: Settings[PurgatoryCallInfo], scope: str, on_open: Callable[[], None]
) -> tuple[PurgatoryTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    register_rejection_error(OpenedState)
    telemetry = PurgatoryTelemetry(settings, scope, on_open=on_open)
    eager: list[PatchTarget] = [
        (Context, "__enter__", _enter_wrapper(telemetry)),
        (Context, "set_state", _set_state_wrapper(telemetry)),
    ]
    # Only calls entered while recorded are ended here: until the gate opens, none are.
    late: list[PatchTarget] = [
        (Context, "__exit__", _exit_wrapper(telemetry)),
        *(
            (state, "handle_exception", after_call(counted))
            for state in (ClosedState, HalfOpenedState, OpenedState)
        ),
    ]
    return telemetry, PatchPlan(eager, late)
