"""The circuit breakers dashboard (``circuit-breakers.json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import stat, statetimeline, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from otel_resilience import contract as c
from otel_resilience._dashboards import _panels as panels
from otel_resilience._dashboards import _promql as promql

if TYPE_CHECKING:
    from otel_resilience._dashboards._options import DashboardOptions

FILE_NAME: Final = "circuit-breakers.json"

OUTCOME_COLORS: Final = {
    c.BreakerOutcome.SUCCESS.value: "green",
    c.BreakerOutcome.FAILURE.value: "red",
    c.BreakerOutcome.REJECTED.value: "orange",
    c.BreakerOutcome.IGNORED.value: "blue",
    c.BreakerOutcome.UNGUARDED.value: "purple",
}
STATE_COLORS: Final = {
    c.BreakerState.CLOSED.value: "green",
    c.BreakerState.HALF_OPEN.value: "yellow",
    c.BreakerState.OPEN.value: "red",
}
STATE_TIMELINE_VALUES: Final = (
    (c.BreakerState.CLOSED, "closed"),
    (c.BreakerState.HALF_OPEN, "half-open"),
    (c.BreakerState.OPEN, "open"),
)
"""The state timeline's values, 0 to 2 in order of severity, and how it names them."""
TRANSITION_TARGETS: Final = (c.BreakerState.OPEN, c.BreakerState.HALF_OPEN, c.BreakerState.CLOSED)
"""The transitions panel's series, in the order its legend colors them."""


def build(options: DashboardOptions) -> model.Dashboard:
    scope = promql.Scope(c.BREAKER_NAME, "breaker", options)
    status = promql.series(c.BREAKER_STATUS)
    calls = promql.series(c.BREAKER_CALLS)
    rate_note = scope.rate_note
    return panels.dashboard(
        uid="otel-resilience-circuit-breakers",
        title="Circuit breakers (otel-resilience)",
        description=(
            "pybreaker circuit breakers instrumented by otel-resilience: state, trips, calls, failures,"
            " latency. Metrics from the OpenTelemetry Collector's prometheus exporter"
            f" ({promql.JOB_LABEL} = service.namespace/service.name). {scope.window_summary} Prometheus rates"
            " cannot see the first value of a new series: the first export of a new outcome, transition or"
            " error type in a process is not counted. Runbooks: docs/alerts.md."
        ),
        tags=("circuit-breaker", "pybreaker"),
        variable_list=panels.variables(scope, status, "Breaker"),
        panels=[
            _open_now(scope, status),
            _state_timeline(scope, status),
            _transitions(scope, rate_note),
            panels.rate_by_outcome(
                scope,
                panels.Heading(
                    4,
                    "Call rate by outcome",
                    "Calls per second through the selected breakers: success, failure (the function raised an"
                    " exception the breaker counts), rejected (the breaker was open: the function never ran),"
                    " ignored (an excluded exception: re-raised, not counted as a failure), unguarded (the"
                    " function was an async def the breaker cannot see: see 'Unguarded calls'). Rising"
                    " failures precede a trip; rejected replaces everything while a breaker is open. "
                    + rate_note,
                    panels.Grid(12, 8, 12, 8),
                ),
                c.BREAKER_CALLS,
                OUTCOME_COLORS,
            ),
            panels.time_series(
                options,
                panels.Heading(
                    5,
                    "Rejected calls rate",
                    "Calls per second each breaker rejected without running the function (callers got"
                    " CircuitBreakerError). This is the user-visible cost of an open breaker: make sure"
                    " callers degrade gracefully (fallback, cached answer) and look at the dependency behind"
                    " the breaker. Alert: CircuitBreakerRejectingCalls (over 25% of calls for 5 minutes). "
                    + rate_note,
                    panels.Grid(0, 16, 12, 8),
                ),
                "ops",
            ).with_target(
                panels.query(
                    options,
                    promql.aggregate(
                        "sum",
                        (scope.name_label,),
                        scope.rate(calls, promql.equals(c.OUTCOME, c.BreakerOutcome.REJECTED.value)),
                    ),
                    promql.legend(c.BREAKER_NAME),
                )
            ),
            _failure_ratio(scope, calls, rate_note),
            *_unguarded(scope, calls, rate_note),
            panels.rate_by_outcome(
                scope,
                panels.Heading(
                    7,
                    "Half-open probe outcomes",
                    "Calls made while a breaker was half-open (the trial calls after reset_timeout), per"
                    " minute by outcome: a success closes the breaker, a failure opens it again for another"
                    " reset_timeout. Only failures means the dependency is still down; a mix means it is"
                    " recovering or flapping. " + rate_note,
                    panels.Grid(0, 32, 12, 8),
                ),
                c.BREAKER_CALLS,
                OUTCOME_COLORS,
                matchers=(promql.equals(c.BREAKER_STATE, c.BreakerState.HALF_OPEN.value),),
                in_minutes=True,
            ),
            panels.time_series(
                options,
                panels.Heading(
                    8,
                    "Consecutive failures",
                    "Each breaker's current count of consecutive failures (its fail_counter), the highest"
                    " across the service's processes, as of each export. The breaker trips when it reaches"
                    " fail_max: a count that keeps climbing towards it warns of a trip; a sawtooth that"
                    " never gets there means failures are intermittent.",
                    panels.Grid(12, 32, 12, 8),
                ),
                "none",
                legend_calcs=("max", "lastNotNull"),
            )
            .decimals(0)
            .with_target(
                panels.query(
                    options,
                    promql.aggregate(
                        "max",
                        (scope.name_label,),
                        scope.select(promql.series(c.BREAKER_CONSECUTIVE_FAILURES)),
                    ),
                    promql.legend(c.BREAKER_NAME),
                )
            ),
            panels.quantiles(
                scope,
                panels.Heading(
                    9,
                    "Call latency p50 / p95 / p99",
                    "Call duration through each breaker, p50 / p95 / p99 estimated from the histogram buckets"
                    " (1 ms to 60 s), rejected calls excluded (they return at once). Slow calls that end in"
                    " failure trip the breaker on timeouts: if p99 approaches the caller's timeout, failures"
                    " follow. " + rate_note,
                    panels.Grid(0, 40, 24, 9),
                ),
                c.BREAKER_CALL_DURATION,
                matchers=(promql.differs(c.OUTCOME, c.BreakerOutcome.REJECTED.value),),
            ),
            panels.diagnostics(scope, 12, panels.Grid(0, 49, 24, 8)),
        ],
    )


def _open_selector(scope: promql.Scope, status: str, state: c.BreakerState) -> str:
    return scope.select(status, promql.equals(c.BREAKER_STATE, state.value))


def _open_now(scope: promql.Scope, status: str) -> stat.Panel:
    by_breaker = promql.aggregate(
        "max", (scope.name_label,), _open_selector(scope, status, c.BreakerState.OPEN)
    )
    heading = panels.Heading(
        1,
        "Breakers open now",
        "How many of the selected breakers are open in at least one process of the service, as of the"
        " last export (the state gauge is sampled once per SDK export, 60 s by default, so an open period"
        " shorter than that can be missed: the transitions panel counts every trip). Red when above 0:"
        " see the state timeline for which breaker and since when, and the failure ratio and call rate"
        " panels for the failures that tripped it; an open breaker rejects every call without reaching"
        " the dependency. Alert: CircuitBreakerOpen.",
        panels.Grid(0, 0, 4, 8),
    )
    return (
        panels.headed(stat.Panel(), heading, scope.options)
        .unit("none")
        .decimals(0)
        .min(0)
        .color_scheme(panels.colored_by(model.FieldColorModeId.THRESHOLDS))
        .thresholds(panels.thresholds(("green", None), ("red", 1)))
        .mappings([])
        .overrides([])
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .justify_mode(common.BigValueJustifyMode.CENTER)
        .orientation(common.VizOrientation.AUTO)
        .text_mode(common.BigValueTextMode.VALUE)
        .wide_layout(True)
        .show_percent_change(False)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .with_target(
            panels.query(scope.options, promql.wrap("sum", by_breaker), "open breakers", instant=True)
        )
    )


def _state_timeline(scope: promql.Scope, status: str) -> statetimeline.Panel:
    # Open counts twice so that the worst state wins the max across processes.
    worst_state = (
        f"max by ({scope.name_label}) (\n"
        f"    2 * {_open_selector(scope, status, c.BreakerState.OPEN)}\n"
        "  or\n"
        f"    {_open_selector(scope, status, c.BreakerState.HALF_OPEN)}\n"
        ")"
    )
    value_names = {
        str(index): model.ValueMappingResult(text=text, color=STATE_COLORS[state.value], index=index)
        for index, (state, text) in enumerate(STATE_TIMELINE_VALUES)
    }
    heading = panels.Heading(
        2,
        "Breaker state",
        "One row per breaker: green closed, yellow half-open (probing), red open. Worst state across the"
        " service's processes (open in any process shows open). Sampled once per SDK export (60 s by"
        " default): a trip shorter than that may not show here but is counted in 'Transitions'. A long"
        " red band is a dependency outage (CircuitBreakerOpen pages after 5 minutes); many short red"
        " bands are flapping: check the failure ratio and the breaker's fail_max / reset_timeout.",
        panels.Grid(4, 0, 20, 8),
    )
    steps = [
        (STATE_COLORS[state.value], None if index == 0 else index)
        for index, (state, _) in enumerate(STATE_TIMELINE_VALUES)
    ]
    return (
        panels.headed(statetimeline.Panel(), heading, scope.options)
        .unit("none")
        .decimals(0)
        .color_scheme(panels.colored_by(model.FieldColorModeId.THRESHOLDS))
        .thresholds(panels.thresholds(*steps))
        .mappings([model.ValueMap(options=value_names)])
        .fill_opacity(80)
        .line_width(0)
        .hide_from(common_builders.HideSeriesConfig().legend(False).tooltip(False).viz(False))
        .overrides([])
        .merge_values(True)
        .show_value(common.VisibilityMode.NEVER)
        .align_value(common.TimelineValueAlignment.LEFT)
        .row_height(0.9)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.SINGLE)
            .sort(common.SortOrder.NONE)
        )
        .with_target(panels.query(scope.options, worst_state, promql.legend(c.BREAKER_NAME)))
    )


def _transitions(scope: promql.Scope, rate_note: str) -> timeseries.Panel:
    entered = promql.aggregate(
        "sum", (promql.label(c.BREAKER_STATE),), scope.rate(promql.series(c.BREAKER_TRANSITIONS))
    )
    return (
        panels.time_series(
            scope.options,
            panels.Heading(
                3,
                "Transitions by target state",
                "State changes per minute, by the state entered: 'open' is a trip (from closed) or a failed"
                " half-open probe (from half_open), 'half_open' a probe starting after reset_timeout,"
                " 'closed' a recovery. Counted by the transitions counter, so short trips the state gauge"
                " misses show here. Repeated 'open' with 'closed' in between is flapping (alert"
                " CircuitBreakerFlapping): compare with the failure ratio and consider a higher fail_max or"
                " longer reset_timeout. " + rate_note,
                panels.Grid(0, 8, 12, 8),
            ),
            "opm",
            bars=True,
        )
        .overrides(
            panels.fixed_colors(
                {f"to {state.value}": STATE_COLORS[state.value] for state in TRANSITION_TARGETS}
            )
        )
        .with_target(
            panels.query(scope.options, promql.per_minute(entered), "to " + promql.legend(c.BREAKER_STATE))
        )
    )


def _failure_ratio(scope: promql.Scope, calls: str, rate_note: str) -> timeseries.Panel:
    by_breaker = (scope.name_label,)
    failures = scope.rate(calls, promql.equals(c.OUTCOME, c.BreakerOutcome.FAILURE.value))
    ran = scope.rate(
        calls, promql.one_of(c.OUTCOME, (c.BreakerOutcome.SUCCESS.value, c.BreakerOutcome.FAILURE.value))
    )
    expr = promql.ratio(
        promql.aggregate("sum", by_breaker, failures), promql.aggregate("sum", by_breaker, ran)
    )
    return (
        panels.time_series(
            scope.options,
            panels.Heading(
                6,
                "Failure ratio",
                "Share of the calls that ran and failed: failure / (success + failure), per breaker."
                " Rejected calls are left out (the function never ran, so they say nothing about the"
                " dependency) and so are ignored ones (excluded business exceptions the breaker does not"
                " count). A ratio that stays high trips the breaker again after each half-open probe; no"
                " value while every call is rejected. Compare with the failure breakdown by"
                f" {promql.label(c.ERROR_TYPE)} in Explore ({calls}). " + rate_note,
                panels.Grid(12, 16, 12, 8),
            ),
            "percentunit",
        )
        .max(1)
        .with_target(panels.query(scope.options, expr, promql.legend(c.BREAKER_NAME)))
    )


def _unguarded(scope: promql.Scope, calls: str, rate_note: str) -> tuple[timeseries.Panel, timeseries.Panel]:
    """Calls a breaker counted before they ran and never saw the end of, beside the rejected ones."""
    unguarded = promql.equals(c.OUTCOME, c.BreakerOutcome.UNGUARDED.value)
    by_breaker = promql.aggregate("sum", (scope.name_label,), scope.rate(calls, unguarded))
    by_error = promql.aggregate(
        "sum",
        (scope.name_label, promql.label(c.ERROR_TYPE)),
        scope.rate(calls, unguarded, promql.differs(c.ERROR_TYPE, "")),
    )
    calls_panel = panels.time_series(
        scope.options,
        panels.Heading(
            10,
            "Unguarded calls rate",
            "Calls per second through a breaker that guards an async def it cannot see (pybreaker counts"
            " the call a success when the coroutine is created, before its body runs): the breaker never"
            " counts these calls' failures and never opens for them, however dead the dependency. Any value"
            " here is a misuse (finding breaker_blind_to_async, alert ResilienceMisuse): use an"
            " asyncio-aware breaker. Their real failures are in the next panel. " + rate_note,
            panels.Grid(0, 24, 12, 8),
        ),
        "ops",
    ).with_target(panels.query(scope.options, by_breaker, promql.legend(c.BREAKER_NAME)))
    failures_panel = panels.time_series(
        scope.options,
        panels.Heading(
            11,
            "Unguarded call failures by error type",
            "Unguarded calls per second whose awaited body raised, by breaker and exception type: the"
            " failures the breaker did not see. A dependency that is down shows here while its breaker"
            " stays closed. Cancellations (the caller's choice, such as a timeout) show under their own"
            " type. " + rate_note,
            panels.Grid(12, 24, 12, 8),
        ),
        "ops",
    ).with_target(
        panels.query(
            scope.options, by_error, promql.legend(c.BREAKER_NAME, " ") + promql.legend(c.ERROR_TYPE)
        )
    )
    return calls_panel, failures_panel
