"""The telemetry contract: every metric, attribute and allowed value this package emits.

The instrumentors create their instruments from these specifications, ``docs/telemetry.md`` is
generated from them (``python -m otel_resilience.contract > docs/telemetry.md``), so are the Grafana
dashboards (``otel-resilience dashboards --out dashboards``), and the test suite checks the alert rules
against :func:`prometheus_name`. Change a name here and every consumer follows, or a test fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

# -- attributes ---------------------------------------------------------------------------------

BREAKER_NAME: Final = "resilience.circuit_breaker.name"
BREAKER_STATE: Final = "resilience.circuit_breaker.state"
BREAKER_PREVIOUS_STATE: Final = "resilience.circuit_breaker.previous_state"
RETRY_NAME: Final = "resilience.retry.name"
OUTCOME: Final = "resilience.outcome"
ERROR_TYPE: Final = "error.type"
DIAGNOSTIC: Final = "resilience.diagnostic"
"""The misuse a diagnostics finding reports (a :class:`Finding` value)."""

# Span-only attributes.
RETRY_ATTEMPT: Final = "resilience.retry.attempt"
"""1-based number of the attempt, on each attempt span."""
RETRY_ATTEMPTS: Final = "resilience.retry.attempts"
"""How many attempts the operation made, on the operation span."""
RETRY_BACKOFF: Final = "resilience.retry.backoff"
"""Seconds tenacity decided to sleep, on each ``retry.backoff`` event."""
BREAKER_FALLBACK: Final = "resilience.circuit_breaker.fallback"
"""True on a ``rejected`` call that the breaker's fallback function served instead of raising."""

# -- span events --------------------------------------------------------------------------------

STATE_CHANGE_EVENT: Final = "circuit_breaker.state_change"
BACKOFF_EVENT: Final = "retry.backoff"
ABANDONED_EVENT: Final = "circuit_breaker.awaitable_abandoned"
"""On an ``unguarded`` call's span: the awaitable was dropped without being awaited, so the guarded
function never ran."""

REJECTED_RESULT: Final = "result"
"""``error.type`` of a retry attempt that returned a value the retry policy rejected
(``retry_if_result``): there is no exception to name."""

# State machines (transitions, automat, python-statemachine).
STATEMACHINE_NAME: Final = "statemachine.name"
"""The machine's own name where the library has one, else the model's class (``module.QualName``)."""
STATEMACHINE_TRIGGER: Final = "statemachine.trigger"
STATEMACHINE_STATE: Final = "statemachine.state"
"""The state after a trigger or transition; on ``statemachine.instances``, the state counted."""
STATEMACHINE_PREVIOUS_STATE: Final = "statemachine.previous_state"
"""The state a trigger was fired in."""
STATEMACHINE_OUTCOME: Final = "statemachine.outcome"

OVERFLOW_NAME: Final = "_OTHER"
"""Reported instead of a breaker or operation name once the cardinality cap is reached."""


class BreakerState(str, Enum):
    """Values of ``resilience.circuit_breaker.state`` and ``...previous_state``."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOutcome(str, Enum):
    """Values of ``resilience.outcome`` on breaker calls."""

    SUCCESS = "success"
    """The function ran and returned."""
    FAILURE = "failure"
    """The function ran and raised an exception the breaker counts as a failure."""
    REJECTED = "rejected"
    """The breaker was open: the function never ran."""
    IGNORED = "ignored"
    """The function raised an excluded exception: re-raised, not counted as a failure."""
    UNGUARDED = "unguarded"
    """The function returned an awaitable (an ``async def``): the breaker counted the call before it
    ran and never saw its result. ``error.type`` names what the awaited body raised, if anything."""


class RetryOutcome(str, Enum):
    """Values of ``resilience.outcome`` on retried operations."""

    SUCCESS_WITHOUT_RETRY = "success_without_retry"
    SUCCESS_WITH_RETRY = "success_with_retry"
    FAILED_WITHOUT_RETRY = "failed_without_retry"
    """A non-retryable exception on the first attempt, or a stop after a single attempt."""
    FAILED_WITH_RETRY = "failed_with_retry"
    """Stopped after retries, or a non-retryable exception after retries."""


class AttemptOutcome(str, Enum):
    """Values of ``resilience.outcome`` on attempts."""

    SUCCESS = "success"
    FAILURE = "failure"


class TriggerOutcome(str, Enum):
    """Values of ``statemachine.outcome``: what became of an event fired at a state machine."""

    TRANSITIONED = "transitioned"
    """The state changed, or an internal or reflexive transition ran."""
    REFUSED = "refused"
    """The trigger is not valid in that state: the library raised, or ignored it
    (``ignore_invalid_triggers``)."""
    BLOCKED = "blocked"
    """A condition or guard said no: the state is unchanged."""
    FAILED = "failed"
    """A callback raised. As in the libraries, the state may already have changed (enter/after callbacks)."""
    CANCELLED = "cancelled"
    """Async machines: the trigger was superseded by a newer one, or its task was cancelled."""


class Finding(str, Enum):
    """Values of ``resilience.diagnostic``: resilience code used in a way that defeats it."""

    BREAKER_BLIND_TO_ASYNC = "breaker_blind_to_async"
    RETRY_UNBOUNDED = "retry_unbounded"
    RETRY_ON_REJECTION = "retry_on_rejection"


@dataclass(frozen=True)
class FindingGuide:
    """What a finding means to a user: the warning logged once per name, and its docs section."""

    title: str
    wrong: str
    """What is wrong, in one sentence."""
    cost: str
    """What it costs the application."""
    fix: str
    """What to do instead."""
    example: str
    """A minimal program that shows it (Python)."""
    counted: str
    """What ``resilience.diagnostics`` counts for this finding."""
    subject: str
    """The attribute that names what the finding is about: a breaker's or an operation's name."""


FINDING_GUIDES: Final[dict[Finding, FindingGuide]] = {
    Finding.BREAKER_BLIND_TO_ASYNC: FindingGuide(
        title="A breaker that cannot see async failures",
        wrong="the breaker guards an `async def`: it counts each call as a success when the coroutine is"
        " created, before its body runs, and never sees the body's exceptions",
        cost="failures never count, so the breaker never opens while its dependency is down; every call"
        " still waits for the failing dependency",
        fix="use an asyncio-aware breaker (the `circuitbreaker` package supports `async def`), or guard"
        " a synchronous function",
        example="""import asyncio

import pybreaker

breaker = pybreaker.CircuitBreaker(fail_max=3, name="service")


@breaker
async def call_service() -> str:
    raise ConnectionError("down")


async def main() -> None:
    for _ in range(6):
        try:
            await call_service()
        except ConnectionError:
            pass
    print(breaker.current_state, breaker.fail_counter)  # closed 0: six failures, never opened


asyncio.run(main())""",
        counted="every call through the breaker that returned an awaitable (outcome `unguarded`)",
        subject=BREAKER_NAME,
    ),
    Finding.RETRY_UNBOUNDED: FindingGuide(
        title="A retry without a stop",
        wrong="the retry policy has no stop condition (tenacity's default is `stop_never`)",
        cost="an operation whose dependency stays down retries forever: the caller never gets an error,"
        " and each waiting caller holds its thread, connection or task",
        fix="give the policy a stop: `stop=stop_after_attempt(5)` or `stop=stop_after_delay(30)`",
        example="""import tenacity


@tenacity.retry(wait=tenacity.wait_fixed(1))  # no stop=: retries forever
def fetch() -> bytes:
    raise ConnectionError("down")""",
        counted="every retried operation started with such a policy",
        subject=RETRY_NAME,
    ),
    Finding.RETRY_ON_REJECTION: FindingGuide(
        title="Retrying a breaker's rejection",
        wrong="an attempt failed with a circuit breaker's open-breaker error (raised when the breaker"
        " rejects a call without running it, and by pybreaker on the call that trips it), and the retry"
        " policy decided to retry it",
        cost="the breaker is open: each retry adds its backoff to a call that cannot succeed until the"
        " breaker closes, and keeps hammering the open breaker",
        fix="do not retry the breaker's rejection error: `retry=retry_if_not_exception_type("
        "pybreaker.CircuitBreakerError)`, or put the retry inside the breaker",
        example="""import pybreaker
import tenacity

breaker = pybreaker.CircuitBreaker(fail_max=1, name="payments")


@tenacity.retry(stop=tenacity.stop_after_attempt(3))  # retries CircuitBreakerError too
@breaker
def pay() -> None:
    raise ConnectionError("down")""",
        counted="every attempt that failed with a breaker's rejection and was retried",
        subject=RETRY_NAME,
    ),
}


# -- metrics ------------------------------------------------------------------------------------


class InstrumentKind(str, Enum):
    """OpenTelemetry instrument kinds used by the contract."""

    COUNTER = "Counter"
    HISTOGRAM = "Histogram"
    OBSERVABLE_GAUGE = "ObservableGauge"
    OBSERVABLE_UP_DOWN_COUNTER = "ObservableUpDownCounter"


DURATION_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Seconds, 1 ms to 60 s: breaker calls, attempts, backoff sleeps."""
OPERATION_DURATION_BUCKETS: Final = (*DURATION_BUCKETS, 120.0, 300.0, 600.0)
"""Seconds, 1 ms to 600 s: a retried operation spans all its attempts and sleeps."""
ATTEMPT_COUNT_BUCKETS: Final = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 50.0)


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the contract."""

    name: str
    kind: InstrumentKind
    unit: str
    description: str
    attributes: tuple[str, ...]
    buckets: tuple[float, ...] | None = None

    @property
    def prometheus_name(self) -> str:
        """The metric's name in Prometheus (histograms: the base of ``_bucket``/``_sum``/``_count``)."""
        return prometheus_name(self)


BREAKER_CALL_ATTRIBUTES: Final = (BREAKER_NAME, BREAKER_STATE, OUTCOME, ERROR_TYPE)
RETRY_ATTRIBUTES: Final = (RETRY_NAME, OUTCOME, ERROR_TYPE)

# OpenTelemetry's guidance for state metrics (semantic conventions, how-to-write-conventions/status-metrics):
# an UpDownCounter `<thing>.status` with a `<thing>.state` attribute, one series per state.
BREAKER_STATUS: Final = MetricSpec(
    "resilience.circuit_breaker.status",
    InstrumentKind.OBSERVABLE_UP_DOWN_COUNTER,
    "{state}",
    "Breakers in each state: 1 for the state a breaker is in, 0 for the other two.",
    (BREAKER_NAME, BREAKER_STATE),
)
BREAKER_TRANSITIONS: Final = MetricSpec(
    "resilience.circuit_breaker.transitions",
    InstrumentKind.COUNTER,
    "{transition}",
    "State transitions, including manual ones and those noticed from shared storage.",
    (BREAKER_NAME, BREAKER_STATE, BREAKER_PREVIOUS_STATE),
)
BREAKER_CALLS: Final = MetricSpec(
    "resilience.circuit_breaker.calls",
    InstrumentKind.COUNTER,
    "{call}",
    "Calls through a breaker by outcome; state is the state the call started in.",
    BREAKER_CALL_ATTRIBUTES,
)
BREAKER_CALL_DURATION: Final = MetricSpec(
    "resilience.circuit_breaker.call.duration",
    InstrumentKind.HISTOGRAM,
    "s",
    "Duration of calls through a breaker, generators and calling() blocks to their end.",
    BREAKER_CALL_ATTRIBUTES,
    DURATION_BUCKETS,
)
BREAKER_CONSECUTIVE_FAILURES: Final = MetricSpec(
    "resilience.circuit_breaker.consecutive_failures",
    InstrumentKind.OBSERVABLE_GAUGE,
    "{failure}",
    "The breaker's current count of consecutive failures (its fail_counter).",
    (BREAKER_NAME,),
)

RETRY_CALLS: Final = MetricSpec(
    "resilience.retry.calls",
    InstrumentKind.COUNTER,
    "{call}",
    "Retried operations by how they ended.",
    RETRY_ATTRIBUTES,
)
RETRY_ATTEMPTS_METRIC: Final = MetricSpec(
    "resilience.retry.attempts",
    InstrumentKind.COUNTER,
    "{attempt}",
    "Attempts by outcome.",
    RETRY_ATTRIBUTES,
)
RETRY_ATTEMPT_DURATION: Final = MetricSpec(
    "resilience.retry.attempt.duration",
    InstrumentKind.HISTOGRAM,
    "s",
    "Duration of each attempt.",
    RETRY_ATTRIBUTES,
    DURATION_BUCKETS,
)
RETRY_CALL_DURATION: Final = MetricSpec(
    "resilience.retry.call.duration",
    InstrumentKind.HISTOGRAM,
    "s",
    "Duration of each retried operation, all attempts and sleeps included.",
    RETRY_ATTRIBUTES,
    OPERATION_DURATION_BUCKETS,
)
RETRY_CALL_ATTEMPTS: Final = MetricSpec(
    "resilience.retry.call.attempts",
    InstrumentKind.HISTOGRAM,
    "{attempt}",
    "Attempts per operation: the retry-storm signal.",
    (RETRY_NAME, OUTCOME),
    ATTEMPT_COUNT_BUCKETS,
)
RETRY_BACKOFF_DURATION: Final = MetricSpec(
    "resilience.retry.backoff.duration",
    InstrumentKind.HISTOGRAM,
    "s",
    "Each backoff sleep tenacity decided on.",
    (RETRY_NAME,),
    DURATION_BUCKETS,
)

STATEMACHINE_TRIGGERS: Final = MetricSpec(
    "statemachine.triggers",
    InstrumentKind.COUNTER,
    "{trigger}",
    "Every event fired at a state machine, by the state it was fired in and its outcome.",
    (STATEMACHINE_NAME, STATEMACHINE_TRIGGER, STATEMACHINE_PREVIOUS_STATE, STATEMACHINE_OUTCOME, ERROR_TYPE),
)
STATEMACHINE_TRANSITIONS: Final = MetricSpec(
    "statemachine.transitions",
    InstrumentKind.COUNTER,
    "{transition}",
    "Transitions that ran: the state changed (also by a trigger whose later callback failed), or an"
    " internal or reflexive transition ran.",
    (STATEMACHINE_NAME, STATEMACHINE_PREVIOUS_STATE, STATEMACHINE_STATE, STATEMACHINE_TRIGGER),
)
STATEMACHINE_TRIGGER_DURATION: Final = MetricSpec(
    "statemachine.trigger.duration",
    InstrumentKind.HISTOGRAM,
    "s",
    "Duration of each trigger, its callbacks included.",
    (STATEMACHINE_NAME, STATEMACHINE_TRIGGER, STATEMACHINE_OUTCOME),
    DURATION_BUCKETS,
)
STATEMACHINE_INSTANCES: Final = MetricSpec(
    "statemachine.instances",
    InstrumentKind.OBSERVABLE_UP_DOWN_COUNTER,
    "{instance}",
    "Live machines (models) of each name in each state, read at collection time; 0 for empty states.",
    (STATEMACHINE_NAME, STATEMACHINE_STATE),
)
STATEMACHINE_METRICS: Final = (
    STATEMACHINE_TRIGGERS,
    STATEMACHINE_TRANSITIONS,
    STATEMACHINE_TRIGGER_DURATION,
    STATEMACHINE_INSTANCES,
)

BREAKER_METRICS: Final = (
    BREAKER_STATUS,
    BREAKER_TRANSITIONS,
    BREAKER_CALLS,
    BREAKER_CALL_DURATION,
    BREAKER_CONSECUTIVE_FAILURES,
)
DIAGNOSTICS: Final = MetricSpec(
    "resilience.diagnostics",
    InstrumentKind.COUNTER,
    "{finding}",
    "Calls or operations affected by a misuse of the resilience code (docs/diagnostics.md).",
    (DIAGNOSTIC, BREAKER_NAME, RETRY_NAME),
)

RETRY_METRICS: Final = (
    RETRY_CALLS,
    RETRY_ATTEMPTS_METRIC,
    RETRY_ATTEMPT_DURATION,
    RETRY_CALL_DURATION,
    RETRY_CALL_ATTEMPTS,
    RETRY_BACKOFF_DURATION,
)
METRICS: Final = (*BREAKER_METRICS, *RETRY_METRICS, DIAGNOSTICS, *STATEMACHINE_METRICS)

ALLOWED_VALUES: Final[dict[str, tuple[str, ...]]] = {
    BREAKER_STATE: tuple(s.value for s in BreakerState),
    BREAKER_PREVIOUS_STATE: tuple(s.value for s in BreakerState),
    DIAGNOSTIC: tuple(f.value for f in Finding),
}
"""Closed value sets of attributes whose values do not depend on the metric (outcomes do)."""

OUTCOMES_BY_METRIC: Final[dict[str, tuple[str, ...]]] = {
    BREAKER_CALLS.name: tuple(o.value for o in BreakerOutcome),
    BREAKER_CALL_DURATION.name: tuple(o.value for o in BreakerOutcome),
    RETRY_CALLS.name: tuple(o.value for o in RetryOutcome),
    RETRY_CALL_DURATION.name: tuple(o.value for o in RetryOutcome),
    RETRY_CALL_ATTEMPTS.name: tuple(o.value for o in RetryOutcome),
    RETRY_ATTEMPTS_METRIC.name: tuple(o.value for o in AttemptOutcome),
    RETRY_ATTEMPT_DURATION.name: tuple(o.value for o in AttemptOutcome),
    STATEMACHINE_TRIGGERS.name: tuple(o.value for o in TriggerOutcome),
    STATEMACHINE_TRIGGER_DURATION.name: tuple(o.value for o in TriggerOutcome),
}

# -- Prometheus translation ---------------------------------------------------------------------

_UNIT_SUFFIXES: Final = {"s": "seconds", "1": "ratio", "By": "bytes"}


def prometheus_name(spec: MetricSpec) -> str:
    """Translate a metric name as the collector's Prometheus exporter does by default.

    Characters outside ``[a-zA-Z0-9:]`` become ``_``, the unit is appended as a suffix (units in
    braces are dropped) and monotonic counters get ``_total``.
    """
    name = re.sub(r"[^a-zA-Z0-9:]", "_", spec.name)
    suffix = "" if spec.unit.startswith("{") else _UNIT_SUFFIXES.get(spec.unit, spec.unit)
    if suffix and not name.endswith("_" + suffix):
        name = f"{name}_{suffix}"
    if spec.kind is InstrumentKind.COUNTER:
        name += "_total"
    return name


def prometheus_label(attribute: str) -> str:
    """Translate an attribute name into its Prometheus label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", attribute)


# -- user documentation -------------------------------------------------------------------------


def render_markdown() -> str:
    """The contract as ``docs/telemetry.md``."""
    lines = [
        "# Telemetry reference",
        "",
        "Generated from `otel_resilience/contract.py` by `python -m otel_resilience.contract`;",
        "a test fails when this file and the contract differ.",
        "",
        "## Metrics",
        "",
        "| OpenTelemetry name | instrument | unit | attributes | Prometheus name | description |",
        "|---|---|---|---|---|---|",
    ]
    for spec in METRICS:
        prom = spec.prometheus_name
        if spec.kind is InstrumentKind.HISTOGRAM:
            prom += "_bucket`, `" + spec.prometheus_name + "_sum`, `" + spec.prometheus_name + "_count"
        attrs = ", ".join(f"`{a}`" for a in spec.attributes)
        lines.append(
            f"| `{spec.name}` | {spec.kind.value} | `{spec.unit}` | {attrs} | `{prom}` | {spec.description} |"
        )
    lines += ["", "Histogram bucket boundaries (explicit):", ""]
    lines += [f"- `{s.name}`: {', '.join(f'{b:g}' for b in s.buckets or ())}" for s in METRICS if s.buckets]
    lines += [
        "",
        "## Attributes",
        "",
        "| attribute | Prometheus label | values |",
        "|---|---|---|",
        f"| `{BREAKER_NAME}` | `{prometheus_label(BREAKER_NAME)}` | the breaker's `name`; unnamed"
        " breakers: `module.qualname:line` of the code that created them; `_OTHER` past the"
        " cardinality cap |",
        f"| `{BREAKER_STATE}` | `{prometheus_label(BREAKER_STATE)}` | "
        + ", ".join(f"`{s.value}`" for s in BreakerState)
        + "; on calls, the state the call started in |",
        f"| `{BREAKER_PREVIOUS_STATE}` | `{prometheus_label(BREAKER_PREVIOUS_STATE)}` | as state |",
        f"| `{RETRY_NAME}` | `{prometheus_label(RETRY_NAME)}` | tenacity's `name=`, else"
        " `module.qualname` of the retried function, else (for-attempt loops) `module.qualname:line`"
        " of the loop; `_OTHER` past the cap |",
        f"| `{DIAGNOSTIC}` | `{prometheus_label(DIAGNOSTIC)}` | "
        + ", ".join(f"`{f.value}`" for f in Finding)
        + "; see [diagnostics](diagnostics.md) |",
    ]
    for metric, values in OUTCOMES_BY_METRIC.items():
        lines.append(
            f"| `{OUTCOME}` on `{metric}` | `{prometheus_label(OUTCOME)}` | "
            + ", ".join(f"`{v}`" for v in values)
            + " |"
        )
    lines += [
        f"| `{ERROR_TYPE}` | `{prometheus_label(ERROR_TYPE)}` | the exception's class, `module.QualName`"
        f" (builtins without module); `{REJECTED_RESULT}` for a retry attempt whose result the retry"
        " policy rejected (`retry_if_result`); absent on success |",
        f"| `{STATEMACHINE_NAME}` | `{prometheus_label(STATEMACHINE_NAME)}` | the machine's own name where"
        " the library has one, else the model's class, `module.QualName`; `_OTHER` past the cap |",
        f"| `{STATEMACHINE_TRIGGER}` | `{prometheus_label(STATEMACHINE_TRIGGER)}` | the event's name (Enum"
        " values by their name); not capped: finite by construction |",
        f"| `{STATEMACHINE_STATE}` | `{prometheus_label(STATEMACHINE_STATE)}` | the state's name (Enum"
        " members by their name; nested states by their full name, `B_1`; parallel states as their leaves"
        " joined by `,`); not capped |",
        f"| `{STATEMACHINE_PREVIOUS_STATE}` | `{prometheus_label(STATEMACHINE_PREVIOUS_STATE)}` | as state |",
        f"| `{STATEMACHINE_OUTCOME}` | `{prometheus_label(STATEMACHINE_OUTCOME)}` | "
        + ", ".join(f"`{o.value}`" for o in TriggerOutcome)
        + "; `error.type` on `refused`, `failed` and `cancelled` when an exception says why |",
        "",
        "## Span attributes and events",
        "",
        f"- `{RETRY_ATTEMPT}`: on each attempt span, the 1-based attempt number.",
        f"- `{RETRY_ATTEMPTS}`: on each operation span, the number of attempts made.",
        f"- `{BREAKER_FALLBACK}`: `true` on a `rejected` breaker call that the breaker's fallback function"
        " served instead of raising (circuitbreaker's `fallback_function`).",
        f"- Event `{STATE_CHANGE_EVENT}` ({BREAKER_NAME}, {BREAKER_PREVIOUS_STATE}, {BREAKER_STATE}):"
        " every breaker transition, on the span active at the time or on a short span of its own.",
        f"- Event `{BACKOFF_EVENT}` (`{RETRY_BACKOFF}`, seconds): each backoff, on the attempt that failed.",
        f"- Event `{ABANDONED_EVENT}`: on an `unguarded` breaker call whose awaitable was dropped"
        " without being awaited (the function never ran).",
        f"- State machines: one INTERNAL span per trigger, named `{{{STATEMACHINE_NAME}}} {{trigger}}`,"
        f" with `{STATEMACHINE_NAME}`, `{STATEMACHINE_TRIGGER}`, `{STATEMACHINE_PREVIOUS_STATE}`,"
        f" `{STATEMACHINE_STATE}` (the state after) and `{STATEMACHINE_OUTCOME}`; status ERROR for"
        " `refused` and `failed`. A `failed` trigger may have changed the state already (an enter or"
        " after callback raised), as in the libraries.",
        "",
        "## Reading rates",
        "",
        "Prometheus computes `rate()` and `increase()` from the samples it scraped, so what a counter"
        " series counted before its first scrape is missing from them (the `_total` values themselves"
        " are exact). To keep that from hiding a breaker's first trip, each breaker's success, rejected"
        " and transition series, and each retried operation's success series, are reported at 0 when the"
        " breaker is first collected or called and when the operation first runs. What happens before"
        " that zero has been exported (`OTEL_METRIC_EXPORT_INTERVAL`, 60 s by default) and scraped"
        " still escapes the rate panels:"
        " a breaker that trips within a minute of the process starting shows fewer rejections in"
        " *Rejected calls* than it made. Failures carry an `error.type` not known in advance, so their"
        " series start with their first failure.",
        "",
    ]
    return "\n".join(lines)


def render_diagnostics() -> str:
    """The findings as ``docs/diagnostics.md``."""
    lines = [
        "# Diagnostics",
        "",
        "Generated from `otel_resilience/contract.py` by `python -m otel_resilience.contract diagnostics`;",
        "a test fails when this file and the contract differ.",
        "",
        "Some uses of breakers and retries defeat them without any error. The instrumentation notices"
        f" them as they happen: each finding is logged once per breaker or operation name as a WARNING on"
        f" logger `otel_resilience`, and `{DIAGNOSTICS.name}` (Prometheus `{DIAGNOSTICS.prometheus_name}`)"
        f" counts every call or operation affected, with `{DIAGNOSTIC}` and the breaker's or operation's"
        " name. The alert `ResilienceMisuse` fires while a finding keeps counting.",
        "",
    ]
    for finding, guide in FINDING_GUIDES.items():
        lines += [
            f'<a id="{finding.value}"></a>',
            "",
            f"## `{finding.value}`: {guide.title}",
            "",
            f"**What is wrong**: {guide.wrong}.",
            "",
            f"**What it costs**: {guide.cost}.",
            "",
            f"**What to do instead**: {guide.fix}.",
            "",
            f"**Counted**: {guide.counted}.",
            "",
            "```python",
            guide.example,
            "```",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    documents = {"telemetry": render_markdown, "diagnostics": render_diagnostics}
    document = sys.argv[1] if len(sys.argv) > 1 else "telemetry"
    if document not in documents:
        sys.exit(f"usage: python -m otel_resilience.contract [{' | '.join(documents)}]")
    print(documents[document](), end="")
