"""OpenTelemetry instrumentation for Python's circuit-breaker and retry libraries.

- :mod:`otel_resilience.pybreaker`: ``PyBreakerInstrumentor`` for pybreaker breakers.
- :mod:`otel_resilience.tenacity`: ``TenacityInstrumentor`` for tenacity retries.
- :mod:`otel_resilience.contract`: every metric, attribute and value emitted.

Each instrumentor imports its library only when instrumenting, so an application that has one of
the two libraries never needs the other.
"""

from otel_resilience.version import __version__

__all__ = ["__version__"]
