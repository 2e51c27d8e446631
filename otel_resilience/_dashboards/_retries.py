"""The retries dashboard (``retries.json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from grafana_foundation_sdk.builders import bargauge
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from otel_resilience import contract as c
from otel_resilience._dashboards import _panels as panels
from otel_resilience._dashboards import _promql as promql

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders import timeseries

    from otel_resilience._dashboards._options import DashboardOptions

FILE_NAME: Final = "retries.json"

OUTCOME_COLORS: Final = {
    c.RetryOutcome.SUCCESS_WITHOUT_RETRY.value: "green",
    c.RetryOutcome.SUCCESS_WITH_RETRY.value: "yellow",
    c.RetryOutcome.FAILED_WITHOUT_RETRY.value: "purple",
    c.RetryOutcome.FAILED_WITH_RETRY.value: "red",
}
RETRIED: Final = (c.RetryOutcome.SUCCESS_WITH_RETRY.value, c.RetryOutcome.FAILED_WITH_RETRY.value)
"""Outcomes of operations that made more than one attempt."""
TOP_OPERATIONS: Final = 10


def build(options: DashboardOptions) -> model.Dashboard:
    scope = promql.Scope(c.RETRY_NAME, "operation", options)
    calls = promql.series(c.RETRY_CALLS)
    error_type = promql.label(c.ERROR_TYPE)
    rate_note = scope.rate_note
    by_operation = (scope.name_label,)
    return panels.dashboard(
        uid="otel-resilience-retries",
        title="Retries (otel-resilience)",
        description=(
            "tenacity retries instrumented by otel-resilience: outcomes, exhaustion, attempts per operation"
            " (the retry-storm signal), failures by error type, backoff, attempt latency."
            f" {scope.window_summary} Prometheus rates cannot see the first value of a new series: the first"
            " export of a new outcome or error type in a process is not counted. Runbooks: docs/alerts.md."
        ),
        tags=("retry", "tenacity"),
        variable_list=panels.variables(scope, calls, "Operation"),
        panels=[
            panels.rate_by_outcome(
                scope,
                panels.Heading(
                    1,
                    "Operations by outcome",
                    "Retried operations (a tenacity-wrapped call with all its attempts) per second by how"
                    " they ended: success_without_retry, success_with_retry (retries hid a failure from the"
                    " caller), failed_without_retry (a non-retryable exception, or a policy that stops after"
                    " one attempt), failed_with_retry (retries exhausted, or a non-retryable exception after"
                    " retries). Growing failed_with_retry means the failures are not transient. " + rate_note,
                    panels.Grid(0, 0, 12, 8),
                ),
                c.RETRY_CALLS,
                OUTCOME_COLORS,
            ),
            _rate_panel(
                scope,
                panels.Heading(
                    2,
                    "Share of operations that needed a retry",
                    "Per operation, the share of operations that made more than one attempt"
                    " (success_with_retry + failed_with_retry) among all operations. A few percent is"
                    " retries doing their job; a rising share means the dependency is degrading even if"
                    f" callers still see successes: check the attempt failures by {error_type}. " + rate_note,
                    panels.Grid(12, 0, 12, 8),
                ),
                "percentunit",
                promql.ratio(
                    promql.aggregate(
                        "sum", by_operation, scope.rate(calls, promql.one_of(c.OUTCOME, RETRIED))
                    ),
                    promql.aggregate("sum", by_operation, scope.rate(calls)),
                ),
            ).max(1),
            _rate_panel(
                scope,
                panels.Heading(
                    3,
                    "Exhausted operations rate",
                    "Operations per second that failed after retrying (outcome failed_with_retry): the"
                    " caller got the error after paying for every attempt and backoff. Look at the attempt"
                    f" failures by {error_type} for the cause; retrying more will not help a failure that is"
                    " not transient. Alert: RetryExhaustion (over 10% of operations for 5 minutes). "
                    + rate_note,
                    panels.Grid(0, 8, 12, 8),
                ),
                "ops",
                promql.aggregate(
                    "sum",
                    by_operation,
                    scope.rate(calls, promql.equals(c.OUTCOME, c.RetryOutcome.FAILED_WITH_RETRY.value)),
                ),
            ),
            panels.quantiles(
                scope,
                panels.Heading(
                    4,
                    "Attempts per operation p50 / p95 / max",
                    "Attempts each operation made, from the attempts histogram (buckets"
                    f" {', '.join(f'{b:g}' for b in c.ATTEMPT_COUNT_BUCKETS)}), rounded up to whole attempts:"
                    " exact up to 6 attempts (one bucket per attempt count), an upper bound beyond. Max is"
                    " the upper bound of the highest bucket used (histogram_quantile(1, ...)). This is the"
                    " retry-storm signal: every attempt is a request to the dependency, so p95 at 4 means"
                    " some callers hit it four times. Alert: RetryStorm (mean above 2 for 15 minutes); cap"
                    " the attempts, add jitter, or put a circuit breaker in front. " + rate_note,
                    panels.Grid(12, 8, 12, 8),
                ),
                c.RETRY_CALL_ATTEMPTS,
                levels=(("p50", 0.5), ("p95", 0.95), ("max", 1.0)),
                whole_numbers=True,
            ),
            _rate_panel(
                scope,
                panels.Heading(
                    5,
                    "Attempt failure rate by error type",
                    f"Failed attempts per second by {error_type} (the exception's class;"
                    f" '{c.REJECTED_RESULT}' when retry_if_result rejected a returned value). Tells which"
                    " failures the retries are absorbing: timeouts and connection errors are worth retrying,"
                    " validation or authorisation errors are not and should be excluded from the retry"
                    " policy. " + rate_note,
                    panels.Grid(0, 16, 12, 8),
                ),
                "ops",
                promql.aggregate(
                    "sum",
                    (error_type,),
                    scope.rate(
                        promql.series(c.RETRY_ATTEMPTS_METRIC),
                        promql.equals(c.OUTCOME, c.AttemptOutcome.FAILURE.value),
                    ),
                ),
                legend=promql.legend(c.ERROR_TYPE),
            ),
            _rate_panel(
                scope,
                panels.Heading(
                    6,
                    "Backoff time spent per second",
                    "Seconds spent sleeping between attempts per second of wall-clock time, per operation:"
                    " the latency retries add, summed over concurrent operations (1 s per second means on"
                    " average one operation is asleep at any moment). Grows with the share of retried"
                    " operations and the backoff policy; if callers time out, lower the backoff or the"
                    " number of attempts. " + rate_note,
                    panels.Grid(12, 16, 12, 8),
                ),
                "s",
                promql.aggregate(
                    "sum", by_operation, scope.rate(promql.series(c.RETRY_BACKOFF_DURATION, "_sum"))
                ),
            ),
            panels.quantiles(
                scope,
                panels.Heading(
                    7,
                    "Attempt latency p50 / p95 / p99",
                    "Duration of single attempts per operation, p50 / p95 / p99 from the histogram buckets"
                    " (1 ms to 60 s). Attempts that get slower before they fail point to timeouts: an"
                    " attempt timeout shorter than the p99 of successful attempts turns slow successes into"
                    " retries. " + rate_note,
                    panels.Grid(0, 24, 12, 9),
                ),
                c.RETRY_ATTEMPT_DURATION,
            ),
            _top_operations(scope),
            panels.diagnostics(scope, 9, panels.Grid(0, 33, 24, 8)),
        ],
    )


def _rate_panel(
    scope: promql.Scope,
    heading: panels.Heading,
    unit: str,
    expr: str,
    *,
    legend: str | None = None,
) -> timeseries.Panel:
    """A time series of one query, one line per operation unless ``legend`` says otherwise."""
    return panels.time_series(scope.options, heading, unit).with_target(
        panels.query(scope.options, expr, legend or promql.legend(c.RETRY_NAME))
    )


def _top_operations(scope: promql.Scope) -> bargauge.Panel:
    attempts = promql.aggregate(
        "sum", (scope.name_label,), scope.increase_over_range(promql.series(c.RETRY_ATTEMPTS_METRIC))
    )
    heading = panels.Heading(
        8,
        "Top operations by attempts",
        f"The {TOP_OPERATIONS} operations that made the most attempts (first tries and retries) over the"
        " selected time range: where retry load on dependencies comes from. An operation high here and"
        " high in 'Share of operations that needed a retry' is the first to tune.",
        panels.Grid(12, 24, 12, 9),
    )
    return (
        panels.headed(bargauge.Panel(), heading, scope.options)
        .unit("short")
        .decimals(0)
        .min(0)
        .color_scheme(panels.colored_by(model.FieldColorModeId.CONTINUOUS_BL_YL_RD))
        .thresholds(panels.thresholds(("green", None)))
        .overrides([])
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .orientation(common.VizOrientation.HORIZONTAL)
        .show_unfilled(True)
        .value_mode(common.BarGaugeValueMode.COLOR)
        .name_placement(common.BarGaugeNamePlacement.AUTO)
        .sizing(common.BarGaugeSizing.AUTO)
        .min_viz_height(16)
        .min_viz_width(8)
        .max_viz_height(300)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .with_target(
            panels.query(
                scope.options, promql.top(TOP_OPERATIONS, attempts), promql.legend(c.RETRY_NAME), instant=True
            )
        )
    )
