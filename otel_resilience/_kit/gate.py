"""The SDK gate: whether anything can record, so that an app without an SDK pays almost nothing.

Until an SDK provider is installed, the API's global providers are proxies that hand out no-op
tracers and meters: starting no-op spans and adding to no-op counters would cost every call a few
microseconds for nothing. A real provider, once set, is never unset; until then the globals are
looked at again at most once a second, so an SDK configured after ``instrument()`` is picked up
within a second.

A library's main patch points are :func:`gated`: they pass every call straight through until the
gate opens.
"""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any, Callable

from opentelemetry import metrics, trace

# The API exports no name for the global meter proxy: this is the class get_meter_provider() returns.
from opentelemetry.metrics._internal import _ProxyMeterProvider

if TYPE_CHECKING:
    from otel_resilience._kit.patching import Wrapper

_RECHECK_SECONDS = 1.0
_NOOP_PROVIDERS = (
    trace.ProxyTracerProvider,
    trace.NoOpTracerProvider,
    _ProxyMeterProvider,
    metrics.NoOpMeterProvider,
)


def _real(provider: Any) -> bool:
    return provider is not None and not isinstance(provider, _NOOP_PROVIDERS)


class SdkGate:
    """Call it: True once a real tracer or meter provider can receive our telemetry.

    ``on_open`` runs once, before the gate first reports itself open: the patches only recorded
    calls need are installed there, so no call that sees the gate open misses them.
    """

    __slots__ = ("_meter_provider", "_next_check", "_on_open", "_spans", "_tracer_provider", "open")

    def __init__(
        self,
        tracer_provider: Any,
        meter_provider: Any,
        *,
        spans: bool,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self._tracer_provider = tracer_provider if spans else None
        self._meter_provider = meter_provider
        self._spans = spans
        self._on_open = on_open
        self.open = False
        self._next_check = 0.0

    def __call__(self) -> bool:
        if self.open:
            return True
        now = monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + _RECHECK_SECONDS
        return self.look()

    def look(self) -> bool:
        """Look at the providers now, however recently the last look was."""
        if self.open:
            return True
        can_record = _real(self._meter_provider or metrics.get_meter_provider()) or (
            self._spans and _real(self._tracer_provider or trace.get_tracer_provider())
        )
        if can_record:
            if self._on_open is not None:
                self._on_open()
            self.open = True
        return can_record


def gated(gate: SdkGate, recorded: Wrapper) -> Wrapper:
    """A wrapper that passes calls straight through until ``gate`` opens, then lets ``recorded`` handle them.

    ``gate.open`` is read first: that attribute read is all an instrumented call pays for the gate
    once an SDK is there, and the gate's call (a clock read) is all it pays without one.
    """

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if gate.open or gate():
            return recorded(wrapped, instance, args, kwargs)
        return wrapped(*args, **kwargs)

    return wrapper
