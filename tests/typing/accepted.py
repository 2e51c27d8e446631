"""What a user writes against the public API: ``mypy --strict`` must accept all of it."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span

from otel_resilience import SpanHook
from otel_resilience.pybreaker import BreakerCallInfo, PyBreakerInstrumentor
from otel_resilience.tenacity import RetryCallInfo, TenacityInstrumentor


def add_breaker_attributes(span: Span, info: BreakerCallInfo) -> None:
    span.set_attribute("app.breaker", info.name)
    outcome: str = info.outcome
    error: BaseException | None = info.error
    span.set_attribute("app.failed", outcome == "failure" and error is not None)


def add_retry_attributes(span: Span, info: RetryCallInfo) -> None:
    attempt: int | None = info.attempt
    span.set_attribute("app.first_attempt", attempt == 1)


def any_info(span: Span, info: object) -> None:
    """A hook that accepts anything fits every instrumentor (hooks are contravariant in info)."""


breaker_hook: SpanHook[BreakerCallInfo] = add_breaker_attributes
PyBreakerInstrumentor().instrument(
    tracer_provider=TracerProvider(),
    meter_provider=MeterProvider(),
    span_hook=breaker_hook,
    metrics_only=False,
    max_names=50,
    exception_messages=False,
)
TenacityInstrumentor().instrument(span_hook=add_retry_attributes)
TenacityInstrumentor().instrument(span_hook=any_info)
PyBreakerInstrumentor().instrument(skip_dep_check=True)
PyBreakerInstrumentor().uninstrument()
