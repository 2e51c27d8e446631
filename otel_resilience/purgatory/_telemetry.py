"""What the purgatory patches record: one object per ``instrument()``, closed over by the wrappers.

The sync and async breakers of both factories, with memory or Redis storage, run every call
through one ``purgatory.domain.model.Context``: ``__enter__`` (which raises the ``OpenedState``
itself to reject the call) and ``__exit__``. With memory storage one ``Context`` serves every
concurrent call of a circuit, so a call's own record lives in a context variable, not on the
``Context``: each thread and each asyncio task enters and leaves its own calls.

=====================================  ===============================  ==============================
purgatory event                        patch point -> method            what changes
=====================================  ===============================  ==============================
``Context.__enter__`` starts           ``__enter__`` -> ``start``       span starts (open: later)
... raises the ``OpenedState``         ``__enter__`` -> ``rejected``    call ends ``rejected``
... returns                            ``__enter__`` -> ``entered``     state known, span current
a state counts the exception           ``<State>.handle_exception``     the call is a failure
``Context.__exit__``                   ``__exit__`` -> ``finish``       call ends: success, failure,
                                                                        or ``ignored`` (excluded)
``Context.set_state``                  ``set_state`` -> ``changed``     transition counted, logged
=====================================  ===============================  ==============================
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable

from purgatory.domain.model import CLOSED as PURGATORY_CLOSED
from purgatory.domain.model import HALF_OPENED, OPENED, Context, OpenedState

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
from otel_resilience._kit.recording import make_current, restore
from otel_resilience.purgatory._info import PurgatoryCallInfo

if TYPE_CHECKING:
    from collections.abc import Iterable

    from otel_resilience._kit.settings import Settings

STATES: dict[str, str] = {PURGATORY_CLOSED: CLOSED, OPENED: OPEN, HALF_OPENED: HALF_OPEN}
"""purgatory's state names to the contract's."""
_REJECTED_ERROR = "purgatory.domain.model.OpenedState"


class Call(BreakerCall):
    """One call through a breaker, from ``Context.__enter__`` to ``Context.__exit__``."""

    __slots__ = ("context", "counted", "outer")

    def __init__(self, context: Context, name: str, state: str) -> None:
        super().__init__(name, state)
        self.context = context
        self.outer: Call | Unrecorded | None = None  # the call this one runs inside, in this context
        self.counted = False  # a state's handle_exception ran: purgatory counted a failure


class Unrecorded:
    """A call through a breaker that is not recorded.

    It was entered under ``suppress_instrumentation()``, or its telemetry failed to start, inside a
    recorded call of the same breaker (with memory storage, the same ``Context``). It is current until
    its ``__exit__``: that exit, and the failure purgatory counts there, are not the outer call's.
    """

    __slots__ = ("context", "outer")

    def __init__(self, context: Context, outer: Call | Unrecorded | None) -> None:
        self.context = context
        self.outer = outer


class PurgatoryTelemetry(BreakerRecorder[PurgatoryCallInfo]):
    """Tracer, instruments and the last state seen of each breaker, for one ``instrument()`` call."""

    def __init__(
        self, settings: Settings[PurgatoryCallInfo], scope: str, *, on_open: Callable[[], None]
    ) -> None:
        super().__init__(settings, scope, on_open=on_open, rejected_error=_REJECTED_ERROR)
        # (state, consecutive failures) of each breaker as this process last saw it: with Redis
        # storage there is no long-lived object to read at collection time, and reading Redis there
        # would make metric collection wait on it.
        self.seen: dict[str, tuple[str, int]] = {}
        self._seen_lock = threading.Lock()

    def _see(self, name: str, context: Context) -> None:
        with self._seen_lock:
            self.seen[name] = (STATES.get(context.state, CLOSED), context.failure_count or 0)

    # -- calls ----------------------------------------------------------------------------------

    def start(self, context: Context) -> Call | None:
        """``__enter__`` begins: the call is current, and so is its span (an open breaker's: later)."""
        try:
            call = Call(context, self.report(str(context.name)), STATES.get(context.state, CLOSED))
            self.start_call(call, defer=call.state == OPEN)
            if call.span is not None:  # current from the start: half-opening in __enter__ is an event on it
                call.token = make_current(call.span)
            call.outer = current.get()
            current.set(call)
            return call
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)
            return None

    def rejected(self, call: Call, exc: BaseException) -> None:
        """``__enter__`` raised: an ``OpenedState`` (a rejection), or anything else (a failure).

        The exception decides, not the state read now: with memory storage, threads share the
        ``Context`` without a lock, and another thread may have half-opened or closed it between
        the ``raise`` and this line.
        """
        self.leave(call)
        if isinstance(exc, OpenedState):
            call.state = OPEN
            self._record(call, REJECTED, exc)
            return
        try:
            call.state = STATES.get(call.context.state, CLOSED)
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)
            return
        self._record(call, FAILURE, exc)

    def entered(self, call: Call) -> None:
        """``__enter__`` admitted the call: its state is known (``half_open`` after the TTL)."""
        try:
            state = STATES.get(call.context.state, CLOSED)
            if state == OPEN:
                # An open state admits nothing: another thread tripped the shared Context since
                # (purgatory takes no lock). The call ran in the state it began in, or, begun open,
                # in the half-open state the end of the TTL made.
                state = HALF_OPEN if call.state == OPEN else call.state
            call.state = state
            span = self.span_to_enter(call)  # an open breaker's call that half-opened
            if span is not None:
                call.token = make_current(span)
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)

    def leave(self, call: Call) -> None:
        """The call is no longer current: ``__enter__`` refused it, or ``__exit__`` judged it."""
        try:
            current.set(call.outer)
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)
        token, call.token = call.token, None
        if token is not None:
            try:
                restore(token)
            except Exception as fault:
                report_fault("purgatory call context", fault)

    def finish(self, call: Call, exc: BaseException | None) -> None:
        """``__exit__`` ran: a success, or ``exc`` counted (failure) or excluded (ignored)."""
        if exc is None:
            self._record(call, SUCCESS, None)
        else:
            self._record(call, FAILURE if call.counted else IGNORED, exc)

    def _record(self, call: Call, outcome: str, error: BaseException | None) -> None:
        try:
            self._see(call.name, call.context)
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)
        self.record_call(
            call,
            outcome,
            None if error is None else error_type(error),
            lambda: PurgatoryCallInfo(call.context, call.name, call.state, outcome, error),
            error=error,
        )

    # -- transitions ----------------------------------------------------------------------------

    @contain("purgatory transition telemetry")
    def changed(self, context: Context, previous: str) -> None:
        name = self.report(str(context.name))
        state = STATES.get(context.state, CLOSED)
        self._see(name, context)
        call = current.get()
        self.transition(
            name,
            STATES.get(previous, state),
            state,
            call=call if isinstance(call, Call) and call.context is context else None,
        )

    @contain("purgatory state telemetry")
    def see(self, context: Context) -> None:
        """A call that is not recorded ended: ``status`` and ``consecutive_failures`` follow it all the same.

        Only for a breaker that recorded calls have named: one used only under suppression (an
        exporter's, say) is not reported, and takes none of the ``max_names`` names.
        """
        name = self.names.reported.get(str(context.name))
        if name is not None:
            self._see(name, context)

    # -- what the breakers are now --------------------------------------------------------------

    def _snapshot(self) -> list[tuple[str, tuple[str, int]]]:
        with self._seen_lock:
            return list(self.seen.items())

    def states(self) -> Iterable[tuple[str, str]]:
        return [(name, state) for name, (state, _) in self._snapshot()]

    def failures(self) -> Iterable[tuple[str, int]]:
        return [(name, failures) for name, (_, failures) in self._snapshot()]


current: ContextVar[Call | Unrecorded | None] = ContextVar("otel_resilience_purgatory_call", default=None)
"""The innermost call through a breaker in this thread or task."""


def counted(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    """A state's ``handle_exception(context, exc)`` ran: purgatory counted a failure of that breaker."""
    call = current.get()
    if isinstance(call, Call) and call.context is (args[0] if args else kwargs.get("context")):
        call.counted = True
