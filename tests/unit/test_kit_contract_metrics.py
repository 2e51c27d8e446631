"""``otel_resilience._kit.contract_metrics`` on its own: no instrumented library involved."""

from __future__ import annotations

from otel_resilience import contract as c
from otel_resilience._kit.contract_metrics import RetryMetrics, retry_outcome
from tests.support.telemetry import Telemetry


def test_retry_outcome_table() -> None:
    assert retry_outcome(failed=False, attempts=1) == "success_without_retry"
    assert retry_outcome(failed=False, attempts=3) == "success_with_retry"
    assert retry_outcome(failed=True, attempts=1) == "failed_without_retry"
    assert retry_outcome(failed=True, attempts=2) == "failed_with_retry"


def test_retry_metrics_start_success_series_at_zero(telemetry: Telemetry) -> None:
    metrics = RetryMetrics(telemetry.meter_provider.get_meter("unit"))
    metrics.count_from_zero("op")
    metrics.calls.add(1, metrics.attributes.get("op", "failed_with_retry", "KeyError"))
    points = {tuple(sorted(p.attributes.items())): p.value for p in telemetry.points(c.RETRY_CALLS.name)}
    assert points == {
        ((c.OUTCOME, "success_without_retry"), (c.RETRY_NAME, "op")): 0,
        ((c.OUTCOME, "success_with_retry"), (c.RETRY_NAME, "op")): 0,
        ((c.ERROR_TYPE, "KeyError"), (c.OUTCOME, "failed_with_retry"), (c.RETRY_NAME, "op")): 1,
    }
    assert [p.value for p in telemetry.points(c.RETRY_ATTEMPTS_METRIC.name)] == [0]
