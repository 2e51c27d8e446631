"""What the aiobreaker patches record: one object per ``instrument()``, closed over by the wrappers."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable

from aiobreaker.circuitbreaker import CircuitBreaker
from aiobreaker.state import CircuitBreakerError, CircuitBreakerState
from aiobreaker.storage.memory import CircuitMemoryStorage

from otel_resilience._kit.breakers import (
    CLOSED,
    FAILURE,
    HALF_OPEN,
    IGNORED,
    OPEN,
    REJECTED,
    SUCCESS,
    BreakerCall,
    BreakerRecorder,
)
from otel_resilience._kit.exceptions import error_type
from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.instances import InstanceRegistry
from otel_resilience._kit.verdicts import Verdicts
from otel_resilience.aiobreaker._info import AioBreakerCallInfo

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    from otel_resilience._kit.settings import Settings

STATES = {
    CircuitBreakerState.CLOSED: CLOSED,
    CircuitBreakerState.OPEN: OPEN,
    CircuitBreakerState.HALF_OPEN: HALF_OPEN,
}
_SKIPPED_PACKAGES = ("aiobreaker", "wrapt", "otel_resilience", "contextlib", "asyncio")
REJECTED_ERROR = f"{CircuitBreakerError.__module__}.{CircuitBreakerError.__qualname__}"


class ActiveCall(BreakerCall):
    """One user call through a breaker, from its state's ``call`` to the call's real end."""

    __slots__ = ("breaker",)

    def __init__(self, breaker: CircuitBreaker, name: str, state: str) -> None:
        super().__init__(name, state)
        self.breaker = breaker


active_call: ContextVar[ActiveCall | None] = ContextVar("otel_resilience_aiobreaker_call", default=None)


class AioBreakerTelemetry(BreakerRecorder[AioBreakerCallInfo]):
    """Tracer, instruments and breaker registry of one ``instrument()`` call."""

    def __init__(
        self, settings: Settings[AioBreakerCallInfo], scope: str, *, on_open: Callable[[], None]
    ) -> None:
        super().__init__(settings, scope, on_open=on_open, rejected_error=REJECTED_ERROR)
        self.verdicts = Verdicts()
        self.breakers = InstanceRegistry(CircuitBreaker, _SKIPPED_PACKAGES)
        self.breakers.adopt_existing()

    def name_of(self, breaker: CircuitBreaker) -> str:
        name = breaker.name
        if name is None:
            name = self.breakers.site(breaker)
        return self.report(str(name))

    # -- calls ----------------------------------------------------------------------------------

    def start(self, breaker: CircuitBreaker, state: CircuitBreakerState) -> ActiveCall:
        call = ActiveCall(breaker, self.name_of(breaker), STATES[state])
        self.start_call(call, defer=call.state == OPEN)
        return call

    def classify(self, exc: BaseException) -> tuple[str, BaseException]:
        """Outcome of a call that raised ``exc``, and the exception that explains it."""
        verdict = self.verdicts.take(exc)
        if verdict is not None:
            return (FAILURE if verdict[1] else IGNORED), exc
        cause = exc.__cause__
        if isinstance(exc, CircuitBreakerError):
            if cause is not None:  # the call that tripped the breaker: raised from the original
                taken = self.verdicts.take(cause)
                return (FAILURE if taken is None or taken[1] else IGNORED), cause
            return REJECTED, exc  # raised before the function ran: never judged
        # Neither a failure nor a success for aiobreaker (CancelledError and other BaseExceptions).
        return IGNORED, exc

    def finish(self, call: ActiveCall, exc: BaseException | None) -> None:
        """Record a call that ended just now, with ``exc`` or without."""
        try:
            if exc is None:
                outcome, error = SUCCESS, None
            else:
                outcome, error = self.classify(exc)
                if outcome == REJECTED:
                    call.state = OPEN
        except Exception as fault:
            report_fault("aiobreaker call telemetry", fault)
            return
        self.record_call(
            call,
            outcome,
            None if error is None else error_type(error),
            lambda: AioBreakerCallInfo(call.breaker, call.name, call.state, outcome, error),
            error=error,
        )

    def follow(self, generator: Generator[Any, Any, Any], call: ActiveCall) -> Generator[Any, Any, Any]:
        """Finish ``call`` when aiobreaker's guarded generator ends, not when ``call`` returned it."""
        try:
            result = yield from generator
        except BaseException as exc:
            self.finish(call, exc)
            raise
        self.finish(call, None)
        return result

    # -- transitions ----------------------------------------------------------------------------

    @contain("aiobreaker transition telemetry")
    def changed(self, breaker: CircuitBreaker, previous: Any, new: Any) -> None:
        state = STATES[new.state]
        previous_state = STATES[previous.state] if previous is not None else state
        call = active_call.get()
        self.transition(
            self.name_of(breaker),
            previous_state,
            state,
            call=call if call is not None and call.breaker is breaker else None,
        )

    # -- what the breakers are now --------------------------------------------------------------

    def states(self) -> Iterable[tuple[str, str]]:
        # The cached state object: `breaker.state` can read shared storage and fire a transition.
        for breaker in self.breakers.snapshot():
            yield self.name_of(breaker), STATES[breaker._state.state]

    def failures(self) -> Iterable[tuple[str, int]]:
        for breaker in self.breakers.snapshot():
            storage = breaker._state_storage
            if isinstance(storage, CircuitMemoryStorage):  # Redis would be a round trip
                yield self.name_of(breaker), storage.counter
