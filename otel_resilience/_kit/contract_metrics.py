"""The contract's retry metrics as every retry library records them (breakers: ``breakers.py``).

Every retry library reports ``resilience.retry.*`` with the same attributes and values, so that one
set of dashboards and alert rules serves them all. What does not depend on the library lives here:
the instruments, the attribute sets, the series started at 0 for a new name, the outcome of a
retried operation, and how an attempt's span ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from opentelemetry.trace import Status, StatusCode

from otel_resilience import contract as c
from otel_resilience._kit.exceptions import record_exception
from otel_resilience._kit.instruments import create_instrument
from otel_resilience._kit.names import AttributeSets

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Span

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
