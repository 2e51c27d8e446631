"""Instrument and uninstrument, again and again: every patched attribute is restored each time."""

from __future__ import annotations

from typing import Any

from otel_resilience._kit.instruments import active_recorder
from tests.support.telemetry import Telemetry


def assert_cycles_restore_every_original(
    instrumentor_type: type, telemetry: Telemetry, patched: list[tuple[Any, str]], cycles: int = 1000
) -> None:
    """``cycles`` times: instrumented, every (class or module, name) of ``patched`` is replaced; after
    ``uninstrument()``, each is its original again. At the end no recorder of the scope is left active."""
    originals = [vars(owner)[name] for owner, name in patched]
    instrumentor = instrumentor_type()
    for _ in range(cycles):
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
        assert all(vars(owner)[name] is not original for (owner, name), original in zip(patched, originals))
        instrumentor.uninstrument()
        assert all(vars(owner)[name] is original for (owner, name), original in zip(patched, originals))
    assert active_recorder(instrumentor.scope) is None
