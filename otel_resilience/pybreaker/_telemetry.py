"""What the pybreaker patches record: one object per ``instrument()``, closed over by the wrappers."""

from __future__ import annotations

import asyncio
import threading
import weakref
from contextvars import ContextVar
from functools import partial
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any, Callable

import pybreaker

from otel_resilience._kit.awaitables import follow_awaitable
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
from otel_resilience._kit.deferred import defer
from otel_resilience._kit.exceptions import error_type
from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.instances import InstanceRegistry
from otel_resilience._kit.names import function_name
from otel_resilience._kit.recording import make_current, restore
from otel_resilience._kit.verdicts import Verdicts
from otel_resilience.contract import ABANDONED_EVENT, BreakerOutcome, Finding
from otel_resilience.pybreaker._info import BreakerCallInfo

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    from otel_resilience._kit.settings import Settings

# pybreaker's state names (`half-open`) as the contract spells them (`half_open`).
STATES = {
    pybreaker.STATE_CLOSED: CLOSED,
    pybreaker.STATE_OPEN: OPEN,
    pybreaker.STATE_HALF_OPEN: HALF_OPEN,
}
_SKIPPED_PACKAGES = ("pybreaker", "wrapt", "otel_resilience", "contextlib")
_REJECTED_ERROR = error_type(pybreaker.CircuitBreakerError())
_UNGUARDED = BreakerOutcome.UNGUARDED.value


class ActiveCall(BreakerCall):
    """One user call through a breaker, from the wrapper's entry to the call's real end."""

    __slots__ = ("breaker", "ran", "unstarted")

    def __init__(self, breaker: pybreaker.CircuitBreaker, name: str, state: str) -> None:
        super().__init__(name, state)
        self.breaker = breaker
        self.ran = False
        self.unstarted: weakref.finalize[Any, Any] | None = None


active_call: ContextVar[ActiveCall | None] = ContextVar("otel_resilience_breaker_call", default=None)


class BreakerTelemetry(BreakerRecorder[BreakerCallInfo]):
    """Tracer, instruments and breaker registry of one ``instrument()`` call."""

    def __init__(
        self, settings: Settings[BreakerCallInfo], scope: str, *, on_open: Callable[[], None]
    ) -> None:
        super().__init__(settings, scope, on_open=on_open, rejected_error=_REJECTED_ERROR)
        self.verdicts = Verdicts()
        # Consecutive failures of breakers whose storage is shared (Redis), as this process last set
        # them. Reading the storage at collection time would be a round trip that blocks metric
        # collection for as long as the storage is down.
        self.shared_failures: weakref.WeakKeyDictionary[pybreaker.CircuitBreakerStorage, int] = (
            weakref.WeakKeyDictionary()
        )
        # pybreaker counts failures of `calling()` and generators outside its own lock.
        self._shared_failures_lock = threading.Lock()
        # Where each breaker was created: the name of a breaker without a name of its own.
        self.breakers = InstanceRegistry(pybreaker.CircuitBreaker, _SKIPPED_PACKAGES)
        self.breakers.adopt_existing()

    # -- names ----------------------------------------------------------------------------------

    def shared_failure_counted(self, storage: pybreaker.CircuitBreakerStorage, *, failed: bool) -> None:
        """A shared storage counted one more consecutive failure (``failed``) or reset its count."""
        with self._shared_failures_lock:
            failures = self.shared_failures
            failures[storage] = failures.get(storage, 0) + 1 if failed else 0

    def report_name(self, breaker: pybreaker.CircuitBreaker) -> str:
        """The breaker's name as reported (a new one's series are started at 0 first)."""
        name = breaker.name
        if name is None:
            name = self.breakers.site(breaker)
        return self.report(str(name))

    # -- calls ----------------------------------------------------------------------------------

    def start(self, breaker: pybreaker.CircuitBreaker) -> ActiveCall:
        # The cached state object: reading `breaker.state` could hit Redis and fire a transition.
        call = ActiveCall(breaker, self.report_name(breaker), STATES[breaker._state.name])
        self.start_call(call, defer=call.state == OPEN)
        return call

    def classify(self, call: ActiveCall, exc: BaseException) -> tuple[str, BaseException]:
        """Outcome of a call that raised ``exc``, and the exception that explains it."""
        verdict = self.verdicts.take(exc) or self.verdicts.take(exc.__context__)
        if verdict is not None:
            original, counted = verdict
            return (FAILURE if counted else IGNORED), original
        if isinstance(exc, pybreaker.CircuitBreakerError) and not call.ran:
            call.state = OPEN
            return REJECTED, exc
        # Raised before pybreaker classified it (a listener, or storage): not the breaker's count.
        return FAILURE, exc

    def finish(self, call: ActiveCall, exc: BaseException | None) -> None:
        """Record a call that ended just now, with ``exc`` or without."""
        try:
            outcome, error = self.outcome_of(call, exc)
        except Exception as fault:
            report_fault("pybreaker call telemetry", fault)
            return
        self.record(call, outcome, error)

    def outcome_of(self, call: ActiveCall, exc: BaseException | None) -> tuple[str, BaseException | None]:
        return (SUCCESS, None) if exc is None else self.classify(call, exc)

    def record(
        self,
        call: ActiveCall,
        outcome: str,
        error: BaseException | None,
        elapsed: float | None = None,
        end_time: int | None = None,
    ) -> None:
        """Count, time and end ``call`` (``elapsed`` and ``end_time``: it ended earlier than now)."""
        self.record_call(
            call,
            outcome,
            None if error is None else error_type(error),
            lambda: BreakerCallInfo(call.breaker, call.name, call.state, outcome, error),
            error=error,
            elapsed=elapsed,
            end_time=end_time,
        )

    def follow(self, generator: Generator[Any, Any, Any], call: ActiveCall) -> Generator[Any, Any, Any]:
        """Finish ``call`` when pybreaker's guarded generator really ends, not when ``call`` returned it."""
        followed = self._follow(generator, call)
        # A generator dropped before its first step runs none of its code, not even `finally`.
        call.unstarted = weakref.finalize(followed, defer, partial(self._end_unstarted, call))
        return followed

    def _end_unstarted(self, call: ActiveCall) -> None:
        """The function never ran and pybreaker counted nothing: end the span, count nothing."""
        if call.span is not None:
            call.span.end()

    def _follow(self, generator: Generator[Any, Any, Any], call: ActiveCall) -> Generator[Any, Any, Any]:
        if call.unstarted is not None:
            call.unstarted.detach()
        try:
            result = yield from generator
        except GeneratorExit as exc:
            # Possibly closed by the garbage collector: classify now, while pybreaker's verdict is
            # fresh, and record from a safe place later.
            try:
                outcome, error = self.outcome_of(call, exc)
                defer(partial(self.record, call, outcome, error, perf_counter() - call.started, time_ns()))
            except Exception as fault:
                report_fault("pybreaker generator telemetry", fault)
            raise
        except BaseException as exc:
            self.finish(call, exc)
            raise
        self.finish(call, None)
        return result

    # -- calls that returned an awaitable (an `async def` behind a breaker) -----------------------

    def follow_awaitable(self, awaitable: Any, call: ActiveCall, function: Any) -> Any:
        """Follow the awaitable a call returned to its end: pybreaker saw none of it.

        pybreaker counted the call as a success when the coroutine was created, before its body ran
        (it has no asyncio support). The caller gets a proxy that behaves as the awaitable (a
        coroutine stays a coroutine for ``asyncio``, ``anyio`` and ``trio``); while it is awaited the
        call's span is current, and when it ends the call is recorded as ``unguarded``, with what
        the body raised. Dropped without being awaited, it ends its span as abandoned and Python
        still warns that the user's coroutine was never awaited.
        """
        self.diagnostics.found(Finding.BREAKER_BLIND_TO_ASYNC, call.name, function_name(function))
        abandoned = partial(defer, partial(self._end_abandoned, call))
        return follow_awaitable(awaitable, partial(self._follow_await, call), abandoned)

    def _follow_await(self, call: ActiveCall, awaitable: Any) -> Generator[Any, Any, Any]:
        token = None if call.span is None else make_current(call.span)
        try:
            result = yield from awaitable.__await__()
        except GeneratorExit:
            # Closed part-way, perhaps by the garbage collector: no span or context work here.
            defer(partial(self._end_abandoned, call, time_ns()))
            raise
        except BaseException as exc:
            if token is not None:
                restore(token)
            self.record(call, _UNGUARDED, exc)
            raise
        if token is not None:
            restore(token)
        self.record(call, _UNGUARDED, None)
        return result

    def _end_abandoned(self, call: ActiveCall, end_time: int | None = None) -> None:
        """The awaitable was dropped or closed before it finished: the body did not run to its end."""
        if call.span is not None:
            call.span.add_event(ABANDONED_EVENT, timestamp=end_time)
        self.record(call, _UNGUARDED, None, end_time=end_time)

    def finish_future(self, call: ActiveCall) -> Callable[[Any], None]:
        def done(future: Any) -> None:
            # Not future.exception(): that marks the exception retrieved and would silence
            # asyncio's "exception was never retrieved" report, which is the app's to see.
            exc = asyncio.CancelledError() if future.cancelled() else future._exception
            self.finish(call, exc)

        return done

    # -- transitions ----------------------------------------------------------------------------

    @contain("pybreaker transition telemetry")
    def changed(self, breaker: pybreaker.CircuitBreaker, previous: Any, new: Any) -> None:
        state = STATES[new.name]
        previous_state = STATES[previous.name] if previous is not None else state
        call = active_call.get()
        self.transition(
            self.report_name(breaker),
            previous_state,
            state,
            call=call if call is not None and call.breaker is breaker else None,
        )

    # -- what the breakers are now --------------------------------------------------------------

    def states(self) -> Iterable[tuple[str, str]]:
        for breaker in self.breakers.snapshot():
            yield self.report_name(breaker), STATES[breaker._state.name]

    def failures(self) -> Iterable[tuple[str, int]]:
        for breaker in self.breakers.snapshot():
            storage = breaker._state_storage
            count = (
                storage.counter
                if isinstance(storage, pybreaker.CircuitMemoryStorage)
                else self.shared_failures.get(storage)
            )
            if count is not None:  # None: a shared breaker this process has not counted for yet
                yield self.report_name(breaker), count
