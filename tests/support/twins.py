"""Running one example twice: uninstrumented, then instrumented with fresh in-memory SDK providers."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from tests.support.telemetry import Telemetry, in_memory_telemetry

T = TypeVar("T")


def run_twins(instrumentor_type: type, run: Callable[[], T]) -> tuple[T, T, Telemetry]:
    """``run()`` uninstrumented, then instrumented: both results, and what the second run exported."""
    bare = run()
    telemetry = in_memory_telemetry()
    instrumentor: Any = instrumentor_type()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        instrumented = run()
    finally:
        instrumentor.uninstrument()
    return bare, instrumented, telemetry
