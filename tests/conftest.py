"""Shared fixtures: SDK providers with in-memory exporters; instrumentation undone after each test.

Each test carries the marker of its layer, the folder it is in (``unit``, ``properties``,
``integration``, ``e2e``, ``upstream``, ``typing``): ``pytest -m unit`` runs one layer, and so do the
nox sessions of the same names. Helpers shared by several test modules live in ``tests/support``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_resilience.pybreaker import PyBreakerInstrumentor
from otel_resilience.tenacity import TenacityInstrumentor
from tests.support.telemetry import Telemetry, in_memory_telemetry, instrumented_fixture


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    telemetry = in_memory_telemetry()
    yield telemetry
    telemetry.meter_provider.shutdown()
    telemetry.tracer_provider.shutdown()


@pytest.fixture(autouse=True)
def no_telemetry_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test in which our telemetry reported a fault, unless it is marked ``faults``.

    Faults (and misuse findings) are logged once per process: each test starts with a fresh log, so
    it sees its own.
    """
    from otel_resilience._kit import diagnostics, faults

    faults._reported.clear()
    diagnostics._warned.clear()
    yield
    reported = sorted(f"{where}: {kind.__name__}" for where, kind in faults._reported)
    if reported and request.node.get_closest_marker("faults") is None:
        pytest.fail(f"our telemetry reported faults: {reported}", pytrace=False)


breaker_telemetry = instrumented_fixture(PyBreakerInstrumentor)
"""pybreaker instrumented with the test's providers for the duration of one test."""
retry_telemetry = instrumented_fixture(TenacityInstrumentor)
"""tenacity instrumented with the test's providers for the duration of one test."""


LAYERS = ("unit", "properties", "integration", "e2e", "upstream", "typing")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer: the folder of ``tests/`` it is in."""
    root = Path(__file__).parent
    for item in items:
        layer = item.path.relative_to(root).parts[0]
        if layer in LAYERS:
            item.add_marker(getattr(pytest.mark, layer))
