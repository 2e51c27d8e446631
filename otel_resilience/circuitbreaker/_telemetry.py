"""What the circuitbreaker patches record: one object per ``instrument()``, closed over by the wrappers."""

from __future__ import annotations

import threading
import weakref
from contextvars import ContextVar
from time import monotonic, time_ns
from typing import TYPE_CHECKING, Any, Callable

import circuitbreaker
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_resilience._kit.breakers import HALF_OPEN, OPEN, REJECTED, BreakerCall, BreakerRecorder
from otel_resilience._kit.exceptions import error_type
from otel_resilience._kit.faults import contain
from otel_resilience._kit.instances import InstanceRegistry
from otel_resilience._kit.recording import make_current, restore
from otel_resilience.circuitbreaker._info import BreakerCallInfo
from otel_resilience.contract import BREAKER_FALLBACK

if TYPE_CHECKING:
    from collections.abc import Iterable

    from otel_resilience._kit.settings import Settings

_SKIPPED_PACKAGES = ("circuitbreaker", "wrapt", "otel_resilience", "contextlib")
REJECTED_ERROR = (
    f"{circuitbreaker.CircuitBreakerError.__module__}.{circuitbreaker.CircuitBreakerError.__qualname__}"
)
_FALLBACK_ATTRIBUTES = {BREAKER_FALLBACK: True}
_NANOSECONDS = 1_000_000_000


def observed_state(breaker: circuitbreaker.CircuitBreaker) -> str:
    """The state ``breaker.state`` would say now, without reading it (the library's states are ours)."""
    state = str(breaker._state)
    if state == circuitbreaker.STATE_OPEN and breaker.open_remaining <= 0:
        return HALF_OPEN
    return state


class ActiveCall(BreakerCall):
    """One call through a breaker, from ``__enter__`` to ``__exit__``."""

    __slots__ = ("breaker", "counted")

    def __init__(self, breaker: circuitbreaker.CircuitBreaker, name: str, state: str) -> None:
        super().__init__(name, state)
        self.breaker = breaker
        self.counted = False
        """The library counted this call's exception as a failure."""


exiting: ContextVar[ActiveCall | None] = ContextVar("otel_resilience_circuitbreaker_exit", default=None)
"""The call whose ``__exit__`` is running: the failure count it makes is this call's."""


class CircuitBreakerTelemetry(BreakerRecorder[BreakerCallInfo]):
    """Tracer, instruments and breaker registry of one ``instrument()`` call."""

    def __init__(
        self, settings: Settings[BreakerCallInfo], scope: str, *, on_open: Callable[[], None]
    ) -> None:
        super().__init__(settings, scope, on_open=on_open, rejected_error=REJECTED_ERROR)
        # Calls between __enter__ and __exit__, by (breaker, frame of the `with` statement): one
        # frame runs both, and generators or tasks on one breaker interleave.
        self.active: dict[tuple[int, int], ActiveCall] = {}
        # The opening (`_opened`) whose lazy half-open step has been reported, per breaker.
        self._half_open_reported: weakref.WeakKeyDictionary[circuitbreaker.CircuitBreaker, float] = (
            weakref.WeakKeyDictionary()
        )
        self._half_open_lock = threading.Lock()
        self.breakers = InstanceRegistry(circuitbreaker.CircuitBreaker, _SKIPPED_PACKAGES)
        self.breakers.adopt_existing()

    def name_of(self, breaker: circuitbreaker.CircuitBreaker) -> str:
        name = breaker.name
        if name is None:
            name = self.breakers.site(breaker)
        return self.report(str(name))

    # -- calls ----------------------------------------------------------------------------------

    def start(self, breaker: circuitbreaker.CircuitBreaker, frame: Any, current: bool) -> None:
        """A call entered ``with breaker:`` in ``frame``; ``current`` makes its span the current one."""
        self.notice_half_open(breaker)
        record = ActiveCall(breaker, self.name_of(breaker), observed_state(breaker))
        self.start_call(record, defer=False)  # open, `with breaker:` runs the block all the same
        if current and record.span is not None:
            record.token = make_current(record.span)
        self.active[id(breaker), id(frame)] = record

    def finish(self, record: ActiveCall, outcome: str, error: BaseException | None) -> None:
        if record.token is not None:
            restore(record.token)
        self.record_call(
            record,
            outcome,
            None if error is None else error_type(error),
            lambda: BreakerCallInfo(record.breaker, record.name, record.state, outcome, error, False),
            error=error,
        )

    def reject(self, breaker: circuitbreaker.CircuitBreaker) -> None:
        """The decorator is about to refuse a call: raise ``CircuitBreakerError`` or call the fallback."""
        if not is_instrumentation_enabled():
            return
        call = ActiveCall(breaker, self.name_of(breaker), OPEN)
        self.start_call(call, defer=True)  # the span starts in `record_call`, with all it has
        fallback = bool(breaker.fallback_function)
        self.record_call(
            call,
            REJECTED,
            None if fallback else REJECTED_ERROR,
            lambda: BreakerCallInfo(breaker, call.name, OPEN, REJECTED, None, fallback),
            span_attributes=_FALLBACK_ATTRIBUTES if fallback else None,
        )

    # -- transitions ----------------------------------------------------------------------------

    @contain("circuitbreaker half-open telemetry")
    def notice_half_open(self, breaker: circuitbreaker.CircuitBreaker) -> None:
        """Report open -> half_open once the library would say it, dated when it became true.

        circuitbreaker has no such transition: ``state`` computes half-open when read after
        ``recovery_timeout``. It is reported when first observable (a ``state`` read, a call, a
        metric collection), with the time it became true.
        """
        if breaker._state != circuitbreaker.STATE_OPEN or breaker.open_remaining > 0:
            return
        opened = breaker._opened
        with self._half_open_lock:
            if self._half_open_reported.get(breaker) == opened:
                return
            self._half_open_reported[breaker] = opened
        became_true = time_ns() - int((monotonic() - (opened + breaker._recovery_timeout)) * _NANOSECONDS)
        self.transition(self.name_of(breaker), OPEN, HALF_OPEN, became_true)

    # -- what the breakers are now --------------------------------------------------------------

    def states(self) -> Iterable[tuple[str, str]]:
        for breaker in self.breakers.snapshot():
            self.notice_half_open(breaker)
            yield self.name_of(breaker), observed_state(breaker)

    def failures(self) -> Iterable[tuple[str, int]]:
        for breaker in self.breakers.snapshot():
            yield self.name_of(breaker), breaker._failure_count
