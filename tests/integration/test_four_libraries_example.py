"""``examples/four_libraries_app.py``: one app using circuitbreaker, aiobreaker, purgatory and backoff
at once, under ``opentelemetry-instrument``: spans and metrics of each, with the same names."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support.console_output import run_instrumented

BREAKERS = ("quotes", "stock", "payments")
"""circuitbreaker's, aiobreaker's and purgatory's (each library's scope is checked by its unit tests)."""


def test_four_libraries_at_once() -> None:
    run = run_instrumented("examples/four_libraries_app.py")
    assert run.stdout_lines == ["quote 4.2, stock 3, payment paid"]

    by_name: dict[str, list[dict[str, object]]] = {}
    for span in run.spans:
        by_name.setdefault(span["name"], []).append(span)
    for name in BREAKERS:
        for span in by_name[name]:
            assert set(span["attributes"]) >= {c.BREAKER_NAME, c.BREAKER_STATE, c.OUTCOME}  # type: ignore[call-overload]
    operation = "__main__.pay"
    (retry,) = by_name[operation]
    assert retry["attributes"][c.OUTCOME] == "success_with_retry"  # type: ignore[index]
    assert len(by_name[f"{operation} attempt"]) == 2

    calls = run.metric_values(c.BREAKER_CALLS.name, c.BREAKER_NAME, c.OUTCOME, c.ERROR_TYPE)
    assert calls == {
        ("quotes", "success", None): 1,
        ("stock", "success", None): 1,
        ("payments", "failure", "ConnectionError"): 1,
        ("payments", "success", None): 1,
    }
    assert run.metric_values(c.RETRY_CALLS.name, c.RETRY_NAME, c.OUTCOME) == {
        (operation, "success_with_retry"): 1
    }
