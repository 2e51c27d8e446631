"""Whether anything can record, so that an app without an SDK pays almost nothing.

Until an SDK provider is installed, the API's global providers are proxies that hand out no-op
tracers and meters: starting no-op spans and adding to no-op counters would cost every call a few
microseconds for nothing. A real provider, once set, is never unset; until then the globals are
looked at again at most once a second, so an SDK configured after ``instrument()`` is picked up
within a second.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from opentelemetry import metrics, trace

# The API exports no name for the global meter proxy: this is the class get_meter_provider() returns.
from opentelemetry.metrics._internal import _ProxyMeterProvider

_RECHECK_SECONDS = 1.0
_NOOP_PROVIDERS = (
    trace.ProxyTracerProvider,
    trace.NoOpTracerProvider,
    _ProxyMeterProvider,
    metrics.NoOpMeterProvider,
)


def _real(provider: Any) -> bool:
    return provider is not None and not isinstance(provider, _NOOP_PROVIDERS)


class Liveness:
    """Call it: True once a real tracer or meter provider can receive our telemetry."""

    __slots__ = ("_meter_provider", "_next_check", "_spans", "_tracer_provider", "live")

    def __init__(self, tracer_provider: Any, meter_provider: Any, *, spans: bool) -> None:
        self._tracer_provider = tracer_provider if spans else None
        self._meter_provider = meter_provider
        self._spans = spans
        self.live = False
        self._next_check = 0.0

    def __call__(self) -> bool:
        if self.live:
            return True
        now = monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + _RECHECK_SECONDS
        return self.look()

    def look(self) -> bool:
        """Look at the providers now, however recently the last look was."""
        self.live = _real(self._meter_provider or metrics.get_meter_provider()) or (
            self._spans and _real(self._tracer_provider or trace.get_tracer_provider())
        )
        return self.live
