"""The contract's metrics as each kind of instrumentation records them: retries, and circuit breakers.

Every retry library reports ``resilience.retry.*`` and every breaker library
``resilience.circuit_breaker.*`` with the same attributes and values, so that one set of dashboards
and alert rules serves them all. What does not depend on the library lives here: the instruments,
the attribute sets, the series started at 0 for a new name, the outcome of a retried operation,
and how a breaker's state change is reported (counted, logged, an event on a span).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_resilience import contract as c
from otel_resilience._kit.exceptions import record_exception
from otel_resilience._kit.faults import logger
from otel_resilience._kit.instruments import create_instrument
from otel_resilience._kit.names import AttributeSets

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Span, Tracer

_RETRY_OUTCOMES = {
    (False, False): c.RetryOutcome.SUCCESS_WITHOUT_RETRY.value,
    (False, True): c.RetryOutcome.SUCCESS_WITH_RETRY.value,
    (True, False): c.RetryOutcome.FAILED_WITHOUT_RETRY.value,
    (True, True): c.RetryOutcome.FAILED_WITH_RETRY.value,
}


def retry_outcome(*, failed: bool, attempts: int) -> str:
    """The ``resilience.outcome`` of a retried operation that made ``attempts`` attempts."""
    return _RETRY_OUTCOMES[failed, attempts > 1]


class RetryMetrics:
    """The ``resilience.retry.*`` instruments of one instrumentation, and their attribute sets."""

    def __init__(self, meter: Meter) -> None:
        self.calls = create_instrument(meter, c.RETRY_CALLS)
        self.attempts = create_instrument(meter, c.RETRY_ATTEMPTS_METRIC)
        self.attempt_duration = create_instrument(meter, c.RETRY_ATTEMPT_DURATION)
        self.call_duration = create_instrument(meter, c.RETRY_CALL_DURATION)
        self.call_attempts = create_instrument(meter, c.RETRY_CALL_ATTEMPTS)
        self.backoff = create_instrument(meter, c.RETRY_BACKOFF_DURATION)
        self.attributes = AttributeSets(*c.RETRY_ATTRIBUTES)
        """``get(name, outcome, error_type)``; trailing values may be left out."""

    def count_from_zero(self, name: str) -> None:
        """A new operation name: its success series start at 0 (see ``NameRegistry``).

        Failures carry an ``error.type`` not known in advance.
        """
        for outcome in (c.RetryOutcome.SUCCESS_WITHOUT_RETRY, c.RetryOutcome.SUCCESS_WITH_RETRY):
            self.calls.add(0, self.attributes.get(name, outcome.value))
        self.attempts.add(0, self.attributes.get(name, c.AttemptOutcome.SUCCESS.value))


_ERROR = Status(StatusCode.ERROR)


def end_attempt_span(
    span: Span,
    attributes: dict[str, str],
    *,
    error: BaseException | None,
    failed: bool,
    backoff: float | None,
    end: int,
    messages: bool,
    hook: Callable[[Span], None],
) -> None:
    """End a retry attempt's span: its outcome, exception, status and ``retry.backoff`` event.

    ``hook`` gives the user's ``span_hook`` the span before it ends.
    """
    if span.is_recording():
        span.set_attributes(attributes)
        if error is not None:
            record_exception(span, error, messages=messages, timestamp=end)
        if failed:
            span.set_status(_ERROR)
        if backoff is not None:
            span.add_event(c.BACKOFF_EVENT, {c.RETRY_BACKOFF: backoff}, timestamp=end)
        hook(span)
    span.end(end)


_CLOSED, _OPEN, _HALF_OPEN = (state.value for state in c.BreakerState)
_TRANSITIONS_FROM_ZERO = ((_CLOSED, _OPEN), (_OPEN, _HALF_OPEN), (_HALF_OPEN, _CLOSED), (_HALF_OPEN, _OPEN))


class BreakerMetrics:
    """The ``resilience.circuit_breaker.*`` counters and histogram of one instrumentation.

    The observable ones (status, consecutive failures) read library objects: each instrumentation
    creates them with ``create_observable``.
    """

    def __init__(self, meter: Meter, rejection_error: str) -> None:
        self.calls = create_instrument(meter, c.BREAKER_CALLS)
        self.duration = create_instrument(meter, c.BREAKER_CALL_DURATION)
        self.transitions = create_instrument(meter, c.BREAKER_TRANSITIONS)
        self.call_attributes = AttributeSets(*c.BREAKER_CALL_ATTRIBUTES)
        self.transition_attributes = AttributeSets(c.BREAKER_NAME, c.BREAKER_STATE, c.BREAKER_PREVIOUS_STATE)
        self._counted_from_zero = (
            (_CLOSED, c.BreakerOutcome.SUCCESS.value, None),
            (_HALF_OPEN, c.BreakerOutcome.SUCCESS.value, None),
            (_OPEN, c.BreakerOutcome.REJECTED.value, rejection_error),
        )

    def count_from_zero(self, name: str) -> None:
        """A new breaker name: its main series start at 0 (see ``NameRegistry``)."""
        for state, outcome, etype in self._counted_from_zero:
            self.calls.add(0, self.call_attributes.get(name, state, outcome, etype))
        for previous, state in _TRANSITIONS_FROM_ZERO:
            self.transitions.add(0, self.transition_attributes.get(name, state, previous))

    def transition(self, tracer: Tracer | None, name: str, state: str, previous: str) -> None:
        """A state change: counted, logged (WARNING when opening), and an event on the current span.

        With no recording span current, the event goes on a short span of its own, so that traces
        show every change. ``tracer`` is None in metrics-only mode.
        """
        attributes = self.transition_attributes.get(name, state, previous)
        self.transitions.add(1, attributes)
        level = logging.WARNING if state == _OPEN else logging.INFO
        logger.log(level, "circuit breaker %r changed state: %s -> %s", name, previous, state)
        if tracer is None:
            return
        active_span = trace.get_current_span()
        if active_span.is_recording():
            active_span.add_event(c.STATE_CHANGE_EVENT, attributes)
        else:
            span = tracer.start_span(f"{name} state change", kind=SpanKind.INTERNAL, attributes=attributes)
            span.add_event(c.STATE_CHANGE_EVENT, attributes)
            span.end()
