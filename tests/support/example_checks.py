"""What the example apps' tests read from a console run, and the checks several of them make alike."""

from __future__ import annotations

import json
from typing import Any

from otel_resilience import contract as c
from tests.support.console_output import ConsoleRun

TRIPPED_AND_RECOVERED = [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
"""A breaker's state changes, in order, when it trips, lets a probe through and closes again."""


def spans_named(run: ConsoleRun, name: str) -> list[dict[str, Any]]:
    return [s for s in run.spans if s["name"] == name]


def state_changes(spans: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(previous state, state) of every state-change event of ``spans``, in order."""
    return [
        (e["attributes"][c.BREAKER_PREVIOUS_STATE], e["attributes"][c.BREAKER_STATE])
        for s in spans
        for e in s["events"]
        if e["name"] == c.STATE_CHANGE_EVENT
    ]


def assert_breaker_transitions_and_closed(run: ConsoleRun, breaker: str) -> None:
    """The transitions metric counts one trip and one recovery; the status gauge shows ``breaker`` closed."""
    assert run.metric_values(c.BREAKER_TRANSITIONS.name, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE) == {
        change: 1 for change in TRIPPED_AND_RECOVERED
    }
    assert_breaker_closed(run, breaker)


def assert_breaker_closed(run: ConsoleRun, breaker: str) -> None:
    assert run.metric_values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE) == {
        (breaker, "closed"): 1
    }


def assert_recovered_at_the_third_attempt(run: ConsoleRun, operation: str, error_type: str) -> dict[str, Any]:
    """``operation`` is one root span that succeeded at its third attempt, after two failures of
    ``error_type`` and two backoffs of 0.1 s: its span is returned."""
    (span,) = spans_named(run, operation)
    assert span["kind"] == "SpanKind.INTERNAL"
    assert span["parent_id"] is None
    assert span["attributes"] == {
        c.RETRY_NAME: operation,
        c.OUTCOME: "success_with_retry",
        c.RETRY_ATTEMPTS: 3,
    }
    attempts = sorted(
        (s for s in run.spans if s["parent_id"] == span["context"]["span_id"]),
        key=lambda s: s["attributes"][c.RETRY_ATTEMPT],
    )
    assert [(s["attributes"][c.RETRY_ATTEMPT], s["attributes"].get(c.ERROR_TYPE)) for s in attempts] == [
        (1, error_type),
        (2, error_type),
        (3, None),
    ]
    assert [s["status"]["status_code"] for s in attempts] == ["ERROR", "ERROR", "UNSET"]
    backoffs = [
        e["attributes"][c.RETRY_BACKOFF]
        for s in attempts
        for e in s["events"]
        if e["name"] == c.BACKOFF_EVENT
    ]
    assert backoffs == [0.1, 0.1]
    return span


def printed_outcomes(line: str) -> dict[str, int]:
    """The app's own count of its triggers' outcomes, printed as ``outcomes: {json}``."""
    assert line.startswith("outcomes: "), line
    outcomes: dict[str, int] = json.loads(line.removeprefix("outcomes: "))
    return outcomes


def machine_spans(run: ConsoleRun, machine: str) -> list[dict[str, Any]]:
    return [s for s in run.spans if s["attributes"].get(c.STATEMACHINE_NAME) == machine]


def assert_triggers_counted_by_outcome(run: ConsoleRun, outcomes: dict[str, int]) -> None:
    """The trigger counter and the trigger duration histogram both count ``outcomes``, outcome by outcome."""
    expected = {(outcome,): n for outcome, n in outcomes.items()}
    assert run.metric_values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_OUTCOME) == expected
    assert run.metric_values(c.STATEMACHINE_TRIGGER_DURATION.name, c.STATEMACHINE_OUTCOME) == expected


def instances(run: ConsoleRun, machine: str) -> dict[str, float]:
    """The instances gauge of ``machine``, by state (zeros included)."""
    return {
        p["attributes"][c.STATEMACHINE_STATE]: p["value"]
        for p in run.metrics[c.STATEMACHINE_INSTANCES.name]
        if p["attributes"][c.STATEMACHINE_NAME] == machine
    }
