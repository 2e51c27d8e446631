"""``examples/async_breaker_app.py`` under ``opentelemetry-instrument``: a dead dependency shows as dead.

The issue's example: a pybreaker breaker on an ``async def`` with an ``AsyncRetrying`` loop inside,
``fetch`` always failing, six calls. pybreaker itself stays closed with ``fail_counter`` 0; the
telemetry shows six ``unguarded`` calls that failed, each with its retry operation as a child, and
the ``breaker_blind_to_async`` finding, logged once and counted six times.
"""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support.console_output import run_instrumented

DOWN = "__main__.ServiceDown"


def test_async_breaker_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/async_breaker_app.py")
    assert run.stdout_lines == ["breaker state: closed, fail_counter: 0"], "pybreaker's own view, unchanged"

    calls = [s for s in run.spans if s["name"] == "service"]
    assert len(calls) == 6
    for call in calls:
        assert call["attributes"][c.OUTCOME] == "unguarded"
        assert call["attributes"][c.ERROR_TYPE] == DOWN
        assert call["status"]["status_code"] == "ERROR"
        assert [e["name"] for e in call["events"]] == ["exception"]
        (operation,) = [s for s in run.spans if s["parent_id"] == call["context"]["span_id"]]
        assert operation["attributes"][c.OUTCOME] == "failed_with_retry"
        assert operation["attributes"][c.RETRY_ATTEMPTS] == 3

    assert run.metric_values(c.BREAKER_CALLS.name, c.BREAKER_NAME, c.OUTCOME, c.ERROR_TYPE) == {
        ("service", "unguarded", DOWN): 6
    }
    assert run.metric_values(c.DIAGNOSTICS.name, c.DIAGNOSTIC, c.BREAKER_NAME) == {
        ("breaker_blind_to_async", "service"): 6
    }
    warnings = [line for line in run.stderr.splitlines() if "breaker_blind_to_async" in line]
    assert len(warnings) == 1
    assert "(service, __main__.call_service)" in warnings[0]
