"""Compare telemetry with the demo's ground truth, whatever carried it (in-process reader or Prometheus)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_resilience import contract as c

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

Key = tuple[str, tuple[tuple[str, str], ...]]
"""A metric and the attribute values a total is kept by."""

TOTALS_BY: dict[str, tuple[str, ...]] = {
    c.BREAKER_CALLS.name: (c.BREAKER_NAME, c.OUTCOME),
    c.BREAKER_CALL_DURATION.name: (c.BREAKER_NAME, c.OUTCOME),
    c.BREAKER_TRANSITIONS.name: (c.BREAKER_NAME, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE),
    c.BREAKER_STATUS.name: (c.BREAKER_NAME, c.BREAKER_STATE),
    c.RETRY_CALLS.name: (c.RETRY_NAME, c.OUTCOME),
    c.RETRY_CALL_DURATION.name: (c.RETRY_NAME, c.OUTCOME),
    c.RETRY_CALL_ATTEMPTS.name: (c.RETRY_NAME, c.OUTCOME),
    c.RETRY_ATTEMPTS_METRIC.name: (c.RETRY_NAME, c.OUTCOME),
    c.RETRY_ATTEMPT_DURATION.name: (c.RETRY_NAME, c.OUTCOME),
    c.RETRY_BACKOFF_DURATION.name: (c.RETRY_NAME,),
    c.DIAGNOSTICS.name: (c.DIAGNOSTIC, c.BREAKER_NAME, c.RETRY_NAME),
    c.STATEMACHINE_TRIGGERS.name: (
        c.STATEMACHINE_NAME,
        c.STATEMACHINE_TRIGGER,
        c.STATEMACHINE_PREVIOUS_STATE,
        c.STATEMACHINE_OUTCOME,
        c.ERROR_TYPE,
    ),
    c.STATEMACHINE_TRIGGER_DURATION.name: (
        c.STATEMACHINE_NAME,
        c.STATEMACHINE_TRIGGER,
        c.STATEMACHINE_OUTCOME,
    ),
    c.STATEMACHINE_TRANSITIONS.name: (
        c.STATEMACHINE_NAME,
        c.STATEMACHINE_PREVIOUS_STATE,
        c.STATEMACHINE_STATE,
        c.STATEMACHINE_TRIGGER,
    ),
    c.STATEMACHINE_INSTANCES.name: (c.STATEMACHINE_NAME, c.STATEMACHINE_STATE),
}
"""For histograms the total is the observation count."""


def _key(metric: str, **attributes: str) -> Key:
    return metric, tuple(sorted(attributes.items()))


def expected_totals(truth: Mapping[str, Any]) -> dict[Key, float]:
    """Every total the telemetry must show for a run with this ground truth."""
    return {
        **_expected_breakers(truth),
        **_expected_operations(truth),
        **_expected_diagnostics(truth),
        **_expected_machines(truth),
    }


def _expected_breakers(truth: Mapping[str, Any]) -> dict[Key, float]:
    expected: dict[Key, float] = {}
    for name, breaker in truth["breakers"].items():
        for outcome, count in breaker["calls"].items():
            for metric in (c.BREAKER_CALLS.name, c.BREAKER_CALL_DURATION.name):
                expected[_key(metric, **{c.BREAKER_NAME: name, c.OUTCOME: outcome})] = count
        for transition, count in breaker["transitions"].items():
            previous, state = transition.split("->")
            attributes = {c.BREAKER_NAME: name, c.BREAKER_PREVIOUS_STATE: previous, c.BREAKER_STATE: state}
            expected[_key(c.BREAKER_TRANSITIONS.name, **attributes)] = count
        for state in c.BreakerState:
            series = _key(c.BREAKER_STATUS.name, **{c.BREAKER_NAME: name, c.BREAKER_STATE: state.value})
            expected[series] = 1 if state.value == breaker["final_state"] else 0
    return expected


def _expected_operations(truth: Mapping[str, Any]) -> dict[Key, float]:
    expected: dict[Key, float] = {}
    for name, operation in truth["operations"].items():
        for outcome, count in operation["calls"].items():
            for metric in (c.RETRY_CALLS.name, c.RETRY_CALL_DURATION.name, c.RETRY_CALL_ATTEMPTS.name):
                expected[_key(metric, **{c.RETRY_NAME: name, c.OUTCOME: outcome})] = count
        for outcome, count in operation["attempts"].items():
            for metric in (c.RETRY_ATTEMPTS_METRIC.name, c.RETRY_ATTEMPT_DURATION.name):
                expected[_key(metric, **{c.RETRY_NAME: name, c.OUTCOME: outcome})] = count
        if operation["sleeps"]:
            expected[_key(c.RETRY_BACKOFF_DURATION.name, **{c.RETRY_NAME: name})] = operation["sleeps"]
    return expected


def _expected_diagnostics(truth: Mapping[str, Any]) -> dict[Key, float]:
    expected: dict[Key, float] = {}
    for finding, names in truth.get("diagnostics", {}).items():
        subject = c.FINDING_GUIDES[c.Finding(finding)].subject
        for name, count in names.items():
            # Observed totals spell an absent attribute "None": a finding has one subject of the two.
            attributes = {c.DIAGNOSTIC: finding, c.BREAKER_NAME: "None", c.RETRY_NAME: "None", subject: name}
            expected[_key(c.DIAGNOSTICS.name, **attributes)] = count
    return expected


def _expected_machines(truth: Mapping[str, Any]) -> dict[Key, float]:
    expected: dict[Key, float] = {}
    for name, machine in truth.get("machines", {}).items():
        durations: dict[Key, float] = {}
        for fired, count in machine["triggers"].items():
            trigger, previous, outcome, error_type = fired.split("|")
            attributes = {
                c.STATEMACHINE_NAME: name,
                c.STATEMACHINE_TRIGGER: trigger,
                c.STATEMACHINE_PREVIOUS_STATE: previous,
                c.STATEMACHINE_OUTCOME: outcome,
                # Observed totals spell an absent attribute "None": a trigger without an exception.
                c.ERROR_TYPE: error_type or "None",
            }
            expected[_key(c.STATEMACHINE_TRIGGERS.name, **attributes)] = count
            duration = _key(
                c.STATEMACHINE_TRIGGER_DURATION.name,
                **{
                    c.STATEMACHINE_NAME: name,
                    c.STATEMACHINE_TRIGGER: trigger,
                    c.STATEMACHINE_OUTCOME: outcome,
                },
            )
            durations[duration] = durations.get(duration, 0) + count
        expected.update(durations)
        for transition, count in machine["transitions"].items():
            trigger, move = transition.split("|")
            previous, state = move.split("->")
            attributes = {
                c.STATEMACHINE_NAME: name,
                c.STATEMACHINE_PREVIOUS_STATE: previous,
                c.STATEMACHINE_STATE: state,
                c.STATEMACHINE_TRIGGER: trigger,
            }
            expected[_key(c.STATEMACHINE_TRANSITIONS.name, **attributes)] = count
        for state, count in machine["instances"].items():
            series = _key(
                c.STATEMACHINE_INSTANCES.name, **{c.STATEMACHINE_NAME: name, c.STATEMACHINE_STATE: state}
            )
            expected[series] = count
    return expected


def observed_totals(points: Iterable[tuple[str, Mapping[str, Any], float]]) -> dict[Key, float]:
    """Totals of (metric, attributes, value-or-count) points, kept by the same attributes as the truth."""
    observed: dict[Key, float] = {}
    for metric, attributes, value in points:
        keys = TOTALS_BY.get(metric)
        if keys is None:
            continue
        key = _key(metric, **{k: str(attributes.get(k)) for k in keys})
        observed[key] = observed.get(key, 0) + value
    return observed


def compare(expected: Mapping[Key, float], observed: Mapping[Key, float]) -> list[tuple[Key, float, float]]:
    """Rows (key, expected, observed) for every key either side has; zero totals may be absent."""
    keys = sorted(set(expected) | {k for k, v in observed.items() if v})
    return [(k, expected.get(k, 0), observed.get(k, 0)) for k in keys]
