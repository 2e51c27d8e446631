"""What the telemetry objects of both instrumentations share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from opentelemetry import trace
from opentelemetry.metrics import get_meter

from otel_resilience._faults import report_fault
from otel_resilience._liveness import Liveness
from otel_resilience.version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from otel_resilience._settings import Settings

InfoT = TypeVar("InfoT")


class Recorder(Generic[InfoT]):
    """The tracer (None in metrics-only mode), the meter, the span options, and whether anything records."""

    def __init__(self, settings: Settings[InfoT], scope: str) -> None:
        self.tracer = (
            None if settings.metrics_only else trace.get_tracer(scope, __version__, settings.tracer_provider)
        )
        self.meter = get_meter(scope, __version__, settings.meter_provider)
        self.span_hook: Callable[[Any, InfoT], None] | None = settings.span_hook
        self.exception_messages = settings.exception_messages
        self.live = Liveness(settings.tracer_provider, settings.meter_provider, spans=self.tracer is not None)

    def call_hook(self, span: Span, info: Callable[[], InfoT]) -> None:
        """Give the user's ``span_hook`` the span and what ``info()`` builds (only when there is a hook)."""
        if self.span_hook is None:
            return
        try:
            self.span_hook(span, info())
        except Exception as fault:
            report_fault("span_hook", fault)
