"""Bad configuration of either instrumentor, and what telemetry may say about the application's data.

Bad configuration: every option of ``otel_resilience._kit.settings``, for both instrumentors, given an
invalid value through ``instrument()`` (wrong types included) or its environment variable: one
warning naming the setting, the value given and the value used; that value is in effect; the
application runs. This is the one table of bad settings, for every instrumentor.

Privacy: the application's function arguments and exception messages, seeded with secrets, never
reach a metric attribute (every metric of both libraries, every outcome); with
``exception_messages=False`` (or ``OTEL_PYTHON_RESILIENCE_EXCEPTION_MESSAGES=false``) no span of
either library carries a message or a traceback, only exception types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import pybreaker
import pytest
import tenacity
from opentelemetry import trace

from otel_resilience import contract as c
from otel_resilience.pybreaker import PyBreakerInstrumentor
from otel_resilience.tenacity import TenacityInstrumentor
from tests.support.breaker_scenario import UNINSTRUMENTED, exercise
from tests.support.telemetry import Telemetry, options_fixture

# -- bad configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """An invalid setting, the warning it gets, and a check that the value used is in effect."""

    options: dict[str, Any]
    environment: dict[str, str]
    warning: str
    in_effect: Callable[[Telemetry], None] = lambda telemetry: None


def spans_recorded(telemetry: Telemetry) -> None:
    assert telemetry.spans(), "metrics_only is off: spans are recorded"


def messages_recorded(telemetry: Telemetry) -> None:
    events = [e for s in telemetry.spans() for e in s.events if e.name == "exception"]
    assert events, "exception events"
    assert all("exception.message" in (e.attributes or {}) for e in events), "exception_messages is on"


def names_passed(telemetry: Telemetry) -> None:
    names = {k for (k,) in telemetry.values(c.BREAKER_CALLS.name, c.BREAKER_NAME)} | {
        k for (k,) in telemetry.values(c.RETRY_CALLS.name, c.RETRY_NAME)
    }
    assert names, "calls were counted"
    assert c.OVERFLOW_NAME not in names, "max_names is 200: no name is capped"


def metrics_recorded(telemetry: Telemetry) -> None:
    assert telemetry.values(c.BREAKER_CALLS.name, c.OUTCOME) or telemetry.values(
        c.RETRY_CALLS.name, c.OUTCOME
    )


def no_spans_to_the_test_provider(telemetry: Telemetry) -> None:
    assert telemetry.spans() == (), "the global tracer provider is used instead"
    metrics_recorded(telemetry)


def no_metrics_to_the_test_provider(telemetry: Telemetry) -> None:
    assert not telemetry.values(c.BREAKER_CALLS.name), "the global meter provider is used instead"
    assert not telemetry.values(c.RETRY_CALLS.name)
    spans_recorded(telemetry)


METRICS_ONLY = "OTEL_PYTHON_RESILIENCE_METRICS_ONLY"
MAX_NAMES = "OTEL_PYTHON_RESILIENCE_MAX_NAMES"
MESSAGES = "OTEL_PYTHON_RESILIENCE_EXCEPTION_MESSAGES"

ROWS = {
    # instrument() arguments of the wrong type or value
    "max_names 'many'": Row({"max_names": "many"}, {}, "invalid max_names='many'; using 200", names_passed),
    "max_names 0": Row({"max_names": 0}, {}, "invalid max_names=0; using 200", names_passed),
    "max_names -5": Row({"max_names": -5}, {}, "invalid max_names=-5; using 200", names_passed),
    "max_names 2.5": Row({"max_names": 2.5}, {}, "invalid max_names=2.5; using 200", names_passed),
    "max_names True": Row({"max_names": True}, {}, "invalid max_names=True; using 200", names_passed),
    "metrics_only 'yes'": Row(
        {"metrics_only": "yes"}, {}, "invalid metrics_only='yes'; using False", spans_recorded
    ),
    "metrics_only 1": Row({"metrics_only": 1}, {}, "invalid metrics_only=1; using False", spans_recorded),
    "exception_messages 'no'": Row(
        {"exception_messages": "no"}, {}, "invalid exception_messages='no'; using True", messages_recorded
    ),
    "exception_messages 0": Row(
        {"exception_messages": 0}, {}, "invalid exception_messages=0; using True", messages_recorded
    ),
    "span_hook 42": Row({"span_hook": 42}, {}, "invalid span_hook=42; using None", spans_recorded),
    "tracer_provider 'nope'": Row(
        {"tracer_provider": "nope"},
        {},
        "invalid tracer_provider='nope'; using 'the global provider'",
        no_spans_to_the_test_provider,
    ),
    "meter_provider 'nope'": Row(
        {"meter_provider": "nope"},
        {},
        "invalid meter_provider='nope'; using 'the global provider'",
        no_metrics_to_the_test_provider,
    ),
    # environment variables
    f"{MAX_NAMES} -3": Row({}, {MAX_NAMES: "-3"}, f"invalid {MAX_NAMES}='-3'; using 200", names_passed),
    f"{MAX_NAMES} lots": Row({}, {MAX_NAMES: "lots"}, f"invalid {MAX_NAMES}='lots'; using 200", names_passed),
    f"{MAX_NAMES} 2.5": Row({}, {MAX_NAMES: "2.5"}, f"invalid {MAX_NAMES}='2.5'; using 200", names_passed),
    f"{METRICS_ONLY} sometimes": Row(
        {}, {METRICS_ONLY: "sometimes"}, f"invalid {METRICS_ONLY}='sometimes'; using False", spans_recorded
    ),
    f"{MESSAGES} maybe": Row(
        {}, {MESSAGES: "maybe"}, f"invalid {MESSAGES}='maybe'; using True", messages_recorded
    ),
}  # fmt: skip
TESTED_IN_PYBREAKER_OPTIONS = {
    "max_names 'many'",
    "max_names 0",
    "metrics_only 'yes'",
    "span_hook 42",
    "tracer_provider 'nope'",
    f"{MAX_NAMES} -3",
    f"{METRICS_ONLY} sometimes",
}


class Boom(Exception):
    pass


def retried_calls() -> None:
    """What a tenacity app does: a retried failure, then a retried success; as without us."""
    failures = iter([Boom("1"), Boom("2"), Boom("3")])

    def work() -> str:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return "ok"

    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_none())
    with pytest.raises(tenacity.RetryError) as raised:
        retrying(work)
    assert str(raised.value.last_attempt.exception()) == "2"
    assert retrying(work) == "ok"


def app_runs(instrumentor: type) -> None:
    if instrumentor is PyBreakerInstrumentor:
        assert exercise(pybreaker.CircuitBreaker(name="db", fail_max=2)) == UNINSTRUMENTED
    else:
        retried_calls()


INSTRUMENTORS = [PyBreakerInstrumentor, TenacityInstrumentor]


instrument_pybreaker = options_fixture(PyBreakerInstrumentor)
instrument_tenacity = options_fixture(TenacityInstrumentor)


@pytest.fixture
def instrumented(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``instrumented(instrumentor, **options)``: with the test's providers, undone after the test."""

    def instrument(instrumentor: type, **options: Any) -> None:
        name = "instrument_pybreaker" if instrumentor is PyBreakerInstrumentor else "instrument_tenacity"
        request.getfixturevalue(name)(**options)

    return instrument


@pytest.mark.parametrize(
    ("instrumentor", "row"),
    [
        pytest.param(instrumentor, row, id=f"{instrumentor.__name__}-{name}")
        for instrumentor in INSTRUMENTORS
        for name, row in ROWS.items()
    ],
)
def test_bad_configuration_warns_once_and_the_app_runs(
    instrumentor: type,
    row: Row,
    instrumented: Callable[..., None],
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in row.environment.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        instrumented(instrumentor, **row.options)
    assert [r.getMessage() for r in caplog.records] == [f"otel-resilience: {row.warning}"]
    app_runs(instrumentor)
    row.in_effect(telemetry)


@pytest.mark.parametrize("instrumentor", INSTRUMENTORS, ids=lambda i: i.__name__)
@pytest.mark.parametrize(
    ("environment", "options", "spans", "messages"),
    [
        ({METRICS_ONLY: " On ", MESSAGES: "FALSE"}, {}, False, False),
        ({METRICS_ONLY: "0", MESSAGES: " no ", MAX_NAMES: " 7 "}, {}, True, False),
        ({METRICS_ONLY: "", MESSAGES: "", MAX_NAMES: ""}, {}, True, True),  # empty: the defaults
        # an argument wins: its variable is not even read
        ({METRICS_ONLY: "garbage", MESSAGES: "garbage"}, {"metrics_only": False, "exception_messages": True},
         True, True),
    ],
)  # fmt: skip
def test_valid_spellings_and_arguments_warn_nothing(
    instrumentor: type,
    environment: dict[str, str],
    options: dict[str, Any],
    spans: bool,
    messages: bool,
    instrumented: Callable[..., None],
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        instrumented(instrumentor, **options)
    assert caplog.records == []
    app_runs(instrumentor)
    metrics_recorded(telemetry)
    assert bool(telemetry.spans()) is spans
    if spans:
        (messages_recorded if messages else no_messages)(telemetry)


# -- privacy ------------------------------------------------------------------------------------

ARGUMENT = "arg-s3cr3t-4471"
MESSAGE = "msg-s3cr3t-9026"


class ServiceDown(Exception):
    """A failure: counted by the breaker, retried by tenacity."""


class NotFound(Exception):
    """Excluded by the breaker; not retried."""


def serve(ok: bool, token: str, *, user: str = ARGUMENT) -> str:
    """The application's function: its arguments and its errors' messages carry user data."""
    if ok:
        return f"ok for {user}"
    raise ServiceDown(f"{MESSAGE}: no account for {user} with {token}")


def not_found(token: str) -> str:
    raise NotFound(f"{MESSAGE} {token}")


def breaker_calls() -> None:
    """Every outcome and entry form of pybreaker, with secrets in arguments and messages."""
    breaker = pybreaker.CircuitBreaker(name="db", fail_max=2, exclude=[NotFound])
    assert breaker.call(serve, True, ARGUMENT, user=ARGUMENT) == f"ok for {ARGUMENT}"
    with pytest.raises(NotFound):
        breaker.call(not_found, ARGUMENT)
    with pytest.raises(ServiceDown):
        breaker(serve)(False, ARGUMENT)
    with pytest.raises(pybreaker.CircuitBreakerError):  # trips, with the ServiceDown as context
        breaker.call(serve, False, ARGUMENT, user=ARGUMENT)
    with pytest.raises(pybreaker.CircuitBreakerError):  # rejected
        breaker.call(serve, True, ARGUMENT)
    breaker.close()

    @breaker
    def rows(token: str) -> Iterator[str]:
        yield token
        serve(False, token)

    with pytest.raises(ServiceDown):
        list(rows(ARGUMENT))
    breaker.close()
    with pytest.raises(ServiceDown), breaker.calling():
        serve(False, ARGUMENT)


RETRY = {"stop": tenacity.stop_after_attempt(2), "wait": tenacity.wait_none()}
FAILED_ATTEMPTS = 14
"""Attempts of ``retry_calls`` that raise: 1 + 2 + 2 + 1 + 2 (chained) + 0 (rejected results) + 2
(callback) + 1 (for attempt) + 1 + 2 (async)."""


class Attempts:
    """Fails ``failures`` times, then returns a value carrying the argument."""

    def __init__(self, failures: int, error: type[Exception] = ServiceDown) -> None:
        self.failures = failures
        self.error = error

    def __call__(self, token: str) -> str:
        if self.failures:
            self.failures -= 1
            raise self.error(f"{MESSAGE} for {token}")
        return f"value for {token}"


def retry_calls() -> None:
    """Every outcome and entry form of tenacity, with secrets in arguments, results and messages."""
    assert tenacity.Retrying(**RETRY)(Attempts(1), ARGUMENT) == f"value for {ARGUMENT}"
    with pytest.raises(tenacity.RetryError):  # the operation gives up: the attempts have the messages
        tenacity.retry(**RETRY)(Attempts(5))(ARGUMENT)
    with pytest.raises(ServiceDown):
        tenacity.Retrying(**RETRY, reraise=True)(Attempts(5), ARGUMENT)
    with pytest.raises(NotFound):  # not retried
        tenacity.Retrying(**RETRY, retry=tenacity.retry_if_exception_type(ServiceDown))(
            Attempts(1, NotFound), ARGUMENT
        )

    def chained(token: str) -> str:
        try:
            not_found(token)
        except NotFound as exc:
            raise ServiceDown("wrapped") from exc
        return token

    with pytest.raises(tenacity.RetryError):  # the message is in the cause
        tenacity.Retrying(**RETRY)(chained, ARGUMENT)
    rejected = tenacity.Retrying(**RETRY, retry=tenacity.retry_if_result(lambda value: ARGUMENT in value))
    with pytest.raises(tenacity.RetryError):  # the results themselves carry the secret
        rejected(Attempts(0), ARGUMENT)

    def give_up_loudly(state: tenacity.RetryCallState) -> None:
        raise NotFound(f"{MESSAGE}: gave up on {state.args[0]}")

    with pytest.raises(NotFound):  # the operation's own error, from the callback
        tenacity.Retrying(**RETRY, retry_error_callback=give_up_loudly)(Attempts(5), ARGUMENT)
    for attempt in tenacity.Retrying(**RETRY):
        with attempt:
            Attempts(1 if attempt.retry_state.attempt_number == 1 else 0)(ARGUMENT)

    async def in_tasks() -> None:
        await tenacity.retry(**RETRY)(async_attempts)(Attempts(1), ARGUMENT)
        with contextlib.suppress(tenacity.RetryError):
            async for attempt in tenacity.AsyncRetrying(**RETRY):
                with attempt:
                    Attempts(1)(ARGUMENT)

    asyncio.run(in_tasks())


async def async_attempts(attempts: Attempts, token: str) -> str:
    return attempts(token)


LIBRARIES = {PyBreakerInstrumentor: breaker_calls, TenacityInstrumentor: retry_calls}
QUALIFIED_NAME = re.compile(r"^[A-Za-z_][\w.<>]*$")  # module.QualName


@pytest.mark.parametrize("instrumentor", INSTRUMENTORS, ids=lambda i: i.__name__)
def test_metric_attributes_never_carry_arguments_or_messages(
    instrumentor: type, instrumented: Callable[..., None], telemetry: Telemetry
) -> None:
    instrumented(instrumentor)
    LIBRARIES[instrumentor]()
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    text = data.to_json()
    assert ARGUMENT not in text
    assert MESSAGE not in text
    specs = {spec.name: spec for spec in c.METRICS}
    seen = set()
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                seen.add(metric.name)
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    assert set(attributes) <= set(specs[metric.name].attributes), (metric.name, attributes)
                    for key, value in attributes.items():
                        allowed = {**c.ALLOWED_VALUES, c.OUTCOME: c.OUTCOMES_BY_METRIC.get(metric.name)}
                        if allowed.get(key) is not None:
                            assert value in allowed[key], (metric.name, key, value)
                        elif key == c.ERROR_TYPE:  # a qualified class name, nothing else
                            assert QUALIFIED_NAME.match(value), (metric.name, key, value)
                        # Names are the application's own (breakers of earlier tests are alive too).
    library = c.BREAKER_METRICS if instrumentor is PyBreakerInstrumentor else c.RETRY_METRICS
    assert seen == {spec.name for spec in library}, "every metric of the library was checked"


def no_messages(telemetry: Telemetry) -> None:
    """No message, traceback or argument on any span; exceptions recorded by type alone."""
    spans = telemetry.spans()
    text = "".join(span.to_json() for span in spans)
    assert ARGUMENT not in text
    assert MESSAGE not in text
    events = [e for span in spans for e in span.events if e.name == "exception"]
    assert events, "exceptions are still recorded, by type"
    assert all(set(e.attributes or {}) == {"exception.type"} for e in events), events
    assert not any(s.status.description for s in spans)


@pytest.mark.parametrize("instrumentor", INSTRUMENTORS, ids=lambda i: i.__name__)
@pytest.mark.parametrize("how", ["option", "environment variable"])
def test_exception_messages_can_be_kept_out_of_every_span(
    instrumentor: type,
    how: str,
    instrumented: Callable[..., None],
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if how == "option":
        instrumented(instrumentor, exception_messages=False)
    else:
        monkeypatch.setenv(MESSAGES, "false")
        instrumented(instrumentor)
    LIBRARIES[instrumentor]()
    no_messages(telemetry)
    if instrumentor is TenacityInstrumentor:
        operations = [s for s in telemetry.spans() if not s.name.endswith(" attempt")]
        attempts = [s for s in telemetry.spans() if s.name.endswith(" attempt")]
        with_exceptions = {
            kind: sum(any(e.name == "exception" for e in s.events) for s in spans)
            for kind, spans in (("operation", operations), ("attempt", attempts))
        }
        # The operation span records only an error no attempt has: here, the callback's.
        assert with_exceptions == {"operation": 1, "attempt": FAILED_ATTEMPTS}


@pytest.mark.parametrize("instrumentor", INSTRUMENTORS, ids=lambda i: i.__name__)
def test_by_default_spans_carry_messages_but_never_arguments(
    instrumentor: type, instrumented: Callable[..., None], telemetry: Telemetry
) -> None:
    """The counterpart: what ``exception_messages=False`` keeps out is there by default."""
    instrumented(instrumentor)
    LIBRARIES[instrumentor]()
    spans = telemetry.spans()
    assert trace.get_current_span() is trace.INVALID_SPAN
    events = [e.attributes or {} for span in spans for e in span.events if e.name == "exception"]
    assert any(MESSAGE in str(e.get("exception.message")) for e in events)
    assert any(MESSAGE in str(e.get("exception.stacktrace")) for e in events)
    assert ARGUMENT not in "".join(
        str(value) for span in spans for value in (span.attributes or {}).values()
    ), "arguments in no span attribute"
