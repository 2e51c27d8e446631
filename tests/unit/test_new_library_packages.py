"""The backoff and purgatory packages: guides import without their libraries; spans carry the public scope."""

from __future__ import annotations

import subprocess
import sys

import backoff
import pytest
from purgatory import SyncCircuitBreakerFactory

from otel_resilience.backoff import BackoffInstrumentor
from otel_resilience.purgatory import PurgatoryInstrumentor
from otel_resilience.version import __version__
from tests.support.telemetry import Telemetry

LIBRARIES = {
    "backoff": ("BackoffCallInfo", "BackoffInstrumentor"),
    "purgatory": ("PurgatoryCallInfo", "PurgatoryInstrumentor"),
}


@pytest.mark.parametrize("library", LIBRARIES)
def test_guide_and_info_import_without_the_library(library: str) -> None:
    names = ", ".join(LIBRARIES[library])
    code = f"import sys\nfrom otel_resilience.{library} import {names}\nprint({library!r} in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_spans_carry_the_public_scope(telemetry: Telemetry) -> None:
    instrumentors = (BackoffInstrumentor(), PurgatoryInstrumentor())
    for instrumentor in instrumentors:
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    try:
        backoff.on_exception(backoff.constant, KeyError, max_tries=1)(int)()
        with SyncCircuitBreakerFactory().get_breaker("scoped"):
            pass
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
    scopes = {(s.instrumentation_scope.name, s.instrumentation_scope.version) for s in telemetry.spans()}
    assert scopes == {("otel_resilience.backoff", __version__), ("otel_resilience.purgatory", __version__)}
