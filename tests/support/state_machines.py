"""Checks the tests of the three state-machine libraries (transitions, automat, python-statemachine) share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import pytest
from opentelemetry import trace

from otel_resilience import contract as c
from tests.support.telemetry import Telemetry


def assert_metrics_only_calls_no_span_hook(instrument: Any, transition: Callable[[], object]) -> None:
    """Instrumented with ``metrics_only`` and a span hook, one ``transition()`` is counted and that is all:
    no span, and the hook never called."""
    infos: list[Any] = []
    telemetry: Telemetry = instrument(metrics_only=True, span_hook=lambda span, info: infos.append(info))
    transition()
    assert telemetry.spans() == ()
    assert infos == []
    assert telemetry.values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_OUTCOME) == {("transitioned",): 1}


@contextmanager
def machine_telemetry_broken(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within: every trigger's telemetry raises. After: the fault was reported, and the trigger's context
    restored (no span left current). Instrument before."""
    from otel_resilience import _statemachines
    from otel_resilience._kit import faults

    def broken(*_: Any) -> None:
        raise ValueError("telemetry bug")

    monkeypatch.setattr(_statemachines.MachineTelemetry, "record", broken)
    yield
    assert ("state machine trigger telemetry", ValueError) in faults._reported
    assert trace.get_current_span() is trace.INVALID_SPAN
