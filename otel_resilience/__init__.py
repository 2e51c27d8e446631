"""OpenTelemetry instrumentation for Python's circuit-breaker and retry libraries.

- :mod:`otel_resilience.pybreaker`: ``PyBreakerInstrumentor`` for pybreaker breakers.
- :mod:`otel_resilience.tenacity`: ``TenacityInstrumentor`` for tenacity retries.
- :mod:`otel_resilience.circuitbreaker`: ``CircuitBreakerInstrumentor`` for circuitbreaker (fabfuel) breakers.
- :mod:`otel_resilience.aiobreaker`: ``AioBreakerInstrumentor`` for aiobreaker breakers.
- :mod:`otel_resilience.contract`: every metric, attribute and value emitted.
- :class:`SpanHook`: the type of the ``span_hook`` option of every instrumentor.

Each instrumentor imports its library only when instrumenting, so an application that has one of
the libraries never needs the others.
"""

from otel_resilience._kit.recording import SpanHook
from otel_resilience.version import __version__

__all__ = ["SpanHook", "__version__"]
