"""The state machines dashboard (``state-machines.json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from otel_resilience import contract as c
from otel_resilience._dashboards import _panels as panels
from otel_resilience._dashboards import _promql as promql

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders import timeseries
    from grafana_foundation_sdk.models import dashboard as model

    from otel_resilience._dashboards._options import DashboardOptions

FILE_NAME: Final = "state-machines.json"

OUTCOME_COLORS: Final = {
    c.TriggerOutcome.TRANSITIONED.value: "green",
    c.TriggerOutcome.REFUSED.value: "orange",
    c.TriggerOutcome.BLOCKED.value: "blue",
    c.TriggerOutcome.FAILED.value: "red",
    c.TriggerOutcome.CANCELLED.value: "purple",
}
UNSUCCESSFUL: Final = (
    c.TriggerOutcome.REFUSED.value,
    c.TriggerOutcome.BLOCKED.value,
    c.TriggerOutcome.FAILED.value,
)
"""Outcomes of triggers that did not do what the caller asked."""


def build(options: DashboardOptions) -> model.Dashboard:
    scope = promql.Scope(c.STATEMACHINE_NAME, "machine", options)
    triggers = promql.series(c.STATEMACHINE_TRIGGERS)
    rate_note = scope.rate_note
    name = c.STATEMACHINE_NAME
    by_machine = (scope.name_label,)
    return panels.dashboard(
        uid="otel-resilience-state-machines",
        title="State machines (otel-resilience)",
        description=(
            "State machines (transitions) instrumented by otel-resilience: how many machines are in each"
            " state, which transitions run, which triggers are refused, blocked or fail, and how long"
            f" triggers take. {scope.window_summary} Prometheus rates cannot see the first value of a new"
            " series: the first export of a new trigger, state or outcome in a process is not counted."
            " Runbooks: docs/alerts.md."
        ),
        tags=("state-machine", "transitions"),
        variable_list=panels.variables(scope, promql.series(c.STATEMACHINE_INSTANCES), "Machine"),
        panels=[
            panels.time_series(
                options,
                panels.Heading(
                    1,
                    "Machines by state",
                    "Live machines (models) of each name in each state, read when the SDK exported (every"
                    " 60 s by default): an order stuck in one state shows as a band that does not shrink."
                    " Machines that were garbage collected leave the count. A state a machine passes through"
                    " between two exports never shows here: see the transition rate.",
                    panels.Grid(0, 0, 12, 8),
                ),
                "none",
                stacked=True,
            ).with_target(
                panels.query(
                    options,
                    promql.aggregate(
                        "sum",
                        (*by_machine, promql.label(c.STATEMACHINE_STATE)),
                        scope.select(promql.series(c.STATEMACHINE_INSTANCES)),
                    ),
                    promql.legend(name, ": ") + promql.legend(c.STATEMACHINE_STATE),
                )
            ),
            panels.rate_by_outcome(
                scope,
                panels.Heading(
                    2,
                    "Triggers by outcome",
                    "Events fired at the selected machines per second, by outcome: transitioned, refused (not"
                    " valid in the state the machine was in: an out-of-order event), blocked (a condition"
                    " said no), failed (a callback raised; the state may already have changed), cancelled"
                    " (async: superseded by a newer trigger). " + rate_note,
                    panels.Grid(12, 0, 12, 8),
                ),
                c.STATEMACHINE_TRIGGERS,
                OUTCOME_COLORS,
                outcome=c.STATEMACHINE_OUTCOME,
            ),
            _rate_panel(
                scope,
                panels.Heading(
                    3,
                    "Transition rate by previous state -> state",
                    "Transitions per second from each state to the next (internal and reflexive transitions"
                    " go from a state to itself). A path that stops being taken, or one that should never"
                    " be, shows here first. " + rate_note,
                    panels.Grid(0, 8, 12, 8),
                ),
                promql.aggregate(
                    "sum",
                    (
                        *by_machine,
                        promql.label(c.STATEMACHINE_PREVIOUS_STATE),
                        promql.label(c.STATEMACHINE_STATE),
                    ),
                    scope.rate(promql.series(c.STATEMACHINE_TRANSITIONS)),
                ),
                promql.legend(name, ": ")
                + promql.legend(c.STATEMACHINE_PREVIOUS_STATE, " -> ")
                + promql.legend(c.STATEMACHINE_STATE),
            ),
            _rate_panel(
                scope,
                panels.Heading(
                    4,
                    "Refused, blocked and failed triggers by trigger and error type",
                    "Triggers per second that did not do what their caller asked, by trigger, outcome and"
                    f" {promql.label(c.ERROR_TYPE)} (empty for blocked triggers and for invalid triggers the"
                    " machine ignores). Refused triggers are events that arrived out of order; failed ones"
                    " name the callback's exception. Alerts: StateMachineTriggersFailing,"
                    " StateMachineTriggersRefused. " + rate_note,
                    panels.Grid(12, 8, 12, 8),
                ),
                promql.aggregate(
                    "sum",
                    (
                        *by_machine,
                        promql.label(c.STATEMACHINE_TRIGGER),
                        promql.label(c.STATEMACHINE_OUTCOME),
                        promql.label(c.ERROR_TYPE),
                    ),
                    scope.rate(triggers, promql.one_of(c.STATEMACHINE_OUTCOME, UNSUCCESSFUL)),
                ),
                promql.legend(c.STATEMACHINE_TRIGGER, " ")
                + promql.legend(c.STATEMACHINE_OUTCOME, " ")
                + promql.legend(c.ERROR_TYPE),
            ),
            _rate_panel(
                scope,
                panels.Heading(
                    5,
                    "Share of failed triggers",
                    "Per machine, failed triggers among all triggers: the signal of"
                    " StateMachineTriggersFailing (above 5% for 10 minutes). " + rate_note,
                    panels.Grid(0, 16, 12, 8),
                ),
                promql.ratio(
                    promql.aggregate(
                        "sum",
                        by_machine,
                        scope.rate(
                            triggers, promql.equals(c.STATEMACHINE_OUTCOME, c.TriggerOutcome.FAILED.value)
                        ),
                    ),
                    promql.aggregate("sum", by_machine, scope.rate(triggers)),
                ),
                promql.legend(name),
                unit="percentunit",
            ).max(1),
            panels.quantiles(
                scope,
                panels.Heading(
                    6,
                    "Trigger latency p50 / p95 / p99",
                    "Duration of triggers per machine, callbacks included, p50 / p95 / p99 from the histogram"
                    " buckets (1 ms to 60 s). Slow triggers are slow callbacks: they hold the machine (and a"
                    " LockedMachine's lock) for that long. " + rate_note,
                    panels.Grid(12, 16, 12, 8),
                ),
                c.STATEMACHINE_TRIGGER_DURATION,
            ),
        ],
    )


def _rate_panel(
    scope: promql.Scope, heading: panels.Heading, expr: str, legend: str, *, unit: str = "ops"
) -> timeseries.Panel:
    return panels.time_series(scope.options, heading, unit).with_target(
        panels.query(scope.options, expr, legend)
    )
