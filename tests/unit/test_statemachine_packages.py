"""The state-machine packages: guides import without their libraries; spans carry the public scope."""

from __future__ import annotations

import subprocess
import sys

import pytest
from transitions import Machine

from otel_resilience.transitions import TransitionsInstrumentor
from otel_resilience.version import __version__
from tests.support.telemetry import Telemetry

PACKAGES = {
    "transitions": ("transitions", "TransitionsInstrumentor"),
    "automat": ("automat", "AutomatInstrumentor"),
    "statemachine": ("statemachine", "StateMachineInstrumentor"),
}


@pytest.mark.parametrize("package", PACKAGES)
def test_guide_and_info_import_without_the_library(package: str) -> None:
    library, instrumentor = PACKAGES[package]
    code = (
        f"import sys\nfrom otel_resilience.{package} import {instrumentor}, TriggerInfo\n"
        f"print({library!r} in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_spans_carry_the_public_scope(telemetry: Telemetry) -> None:
    instrumentor = TransitionsInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        Machine(states=["a", "b"], transitions=[["go", "a", "b"]], initial="a").go()
    finally:
        instrumentor.uninstrument()
    (span,) = telemetry.spans()
    assert span.instrumentation_scope is not None
    assert (span.instrumentation_scope.name, span.instrumentation_scope.version) == (
        "otel_resilience.transitions",
        __version__,
    )
