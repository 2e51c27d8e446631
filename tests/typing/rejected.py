"""Misuses of the public API: ``mypy --strict`` must report each line marked ``# error: <code>``."""

from __future__ import annotations

from opentelemetry.trace import Span

from otel_resilience.pybreaker import BreakerCallInfo, PyBreakerInstrumentor
from otel_resilience.tenacity import RetryCallInfo, TenacityInstrumentor


def add_retry_attributes(span: Span, info: RetryCallInfo) -> None:
    span.set_attribute("app.attempt", info.attempt or 0)


def no_span(info: BreakerCallInfo) -> None:
    print(info.name)


PyBreakerInstrumentor().instrument(span_hook=add_retry_attributes)  # error: arg-type
PyBreakerInstrumentor().instrument(span_hook=no_span)  # error: arg-type
PyBreakerInstrumentor().instrument(metrics_only="yes")  # error: arg-type
PyBreakerInstrumentor().instrument(max_names="many")  # error: arg-type
TenacityInstrumentor().instrument(max_name=10)  # error: call-arg
TenacityInstrumentor().instrument(None)  # error: call-arg


def change(info: BreakerCallInfo) -> None:
    info.outcome = "success"  # error: misc
    print(info.attempts)  # error: attr-defined
