"""tenacity instrumentation: options, suppression, uninstrument, and faults in our own telemetry path."""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import tenacity
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.trace import TracerProvider

from otel_resilience import contract as c
from otel_resilience.tenacity import RetryCallInfo, TenacityInstrumentor
from tests.support.faulty import RaisingInstrument, RaisingProcessor, faulty_hook
from tests.support.telemetry import Telemetry, options_fixture
from tests.support.tenacity_patch_points import WITH_ATTEMPT, WRAPPED

instrument = options_fixture(TenacityInstrumentor)


class Flaky(Exception):
    pass


def work(tracer: trace.Tracer, failures: Iterator[Exception | None]) -> str:
    with tracer.start_as_current_span("app work"):
        failure = next(failures)
        if failure is not None:
            raise failure
        return "ok"


def exercise(tracer: trace.Tracer) -> list[object]:
    """A retried success, a retried failure and a for-attempt loop: what the app observes."""
    seen: list[object] = []
    failures = iter([Flaky("1"), None, Flaky("2"), Flaky("3")])
    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(2))
    for _ in range(2):
        try:
            seen.append(retrying(work, tracer, failures))
        except tenacity.RetryError as exc:
            seen.append((type(exc), str(exc.last_attempt.exception())))
    for attempt in tenacity.Retrying():
        with attempt:
            seen.append(trace.get_current_span().is_recording())
    seen.append(retrying.statistics["attempt_number"])
    return seen


OPERATION = f"{__name__}.work"
_lines, _first = inspect.getsourcelines(exercise)
LOOP = f"{__name__}.exercise:{next(_first + i for i, line in enumerate(_lines) if 'for attempt' in line)}"


UNINSTRUMENTED = ["ok", (tenacity.RetryError, "3"), False, 2]


def test_retry_scenario_uninstrumented(telemetry: Telemetry) -> None:
    assert exercise(telemetry.tracer_provider.get_tracer("app")) == UNINSTRUMENTED


def calls(t: Telemetry) -> dict[tuple[Any, ...], float]:
    return t.values(c.RETRY_CALLS.name, c.RETRY_NAME, c.OUTCOME)


EXPECTED_CALLS = {
    (OPERATION, "success_with_retry"): 1,
    (OPERATION, "failed_with_retry"): 1,
    (LOOP, "success_without_retry"): 1,
}


def test_defaults(instrument: Any) -> None:
    telemetry = instrument()
    assert exercise(telemetry.tracer_provider.get_tracer("app")) == [
        "ok",
        (tenacity.RetryError, "3"),
        True,
        2,
    ]
    assert calls(telemetry) == EXPECTED_CALLS


def test_retry_metrics_only(instrument: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    originals = {(owner, name): owner.__dict__[name] for owner, name in WRAPPED}
    monkeypatch.setenv("OTEL_PYTHON_RESILIENCE_METRICS_ONLY", "true")
    telemetry = instrument()
    assert exercise(telemetry.tracer_provider.get_tracer("app")) == UNINSTRUMENTED
    assert {s.name for s in telemetry.spans()} == {"app work"}, "no spans of ours"
    assert all(s.parent is None for s in telemetry.spans()), "and no context changes"
    assert calls(telemetry) == EXPECTED_CALLS
    assert all(owner.__dict__[name] is originals[owner, name] for owner, name in WITH_ATTEMPT), (
        "the with-attempt patches exist for spans only"
    )


def test_span_hook_sees_operations_and_attempts(instrument: Any) -> None:
    seen: list[RetryCallInfo] = []

    def hook(span: Any, info: RetryCallInfo) -> None:
        seen.append(info)
        span.set_attribute("app.tenant", "acme")

    telemetry = instrument(span_hook=hook)
    exercise(telemetry.tracer_provider.get_tracer("app"))
    assert [(i.name, i.attempt, i.attempts, i.outcome, type(i.error)) for i in seen] == [
        (OPERATION, 1, 1, "failure", Flaky),
        (OPERATION, 2, 2, "success", type(None)),
        (OPERATION, None, 2, "success_with_retry", type(None)),
        (OPERATION, 1, 1, "failure", Flaky),
        (OPERATION, 2, 2, "failure", Flaky),
        (OPERATION, None, 2, "failed_with_retry", tenacity.RetryError),
        (LOOP, 1, 1, "success", type(None)),
        (LOOP, None, 1, "success_without_retry", type(None)),
    ]
    assert all(i.retry_state is not None for i in seen[:6])
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen[0].name = "other"  # type: ignore[misc]
    ours = [s for s in telemetry.spans() if s.name != "app work"]
    assert len(ours) == 8
    assert all(s.attributes["app.tenant"] == "acme" for s in ours)


def one() -> None: ...
def two() -> None: ...
def three() -> None: ...
def four() -> None: ...


def test_operation_names_are_capped(instrument: Any, caplog: pytest.LogCaptureFixture) -> None:
    telemetry = instrument(max_names=2)
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        for function in (one, two, three, four):
            tenacity.Retrying()(function)
    one_name, two_name = f"{__name__}.one", f"{__name__}.two"
    assert telemetry.values(c.RETRY_CALLS.name, c.RETRY_NAME) == {
        (one_name,): 1,
        (two_name,): 1,
        (c.OVERFLOW_NAME,): 2,
    }
    assert {s.name for s in telemetry.spans()} == {
        *(one_name, two_name, c.OVERFLOW_NAME),
        *(f"{one_name} attempt", f"{two_name} attempt", f"{c.OVERFLOW_NAME} attempt"),
    }
    assert len([r for r in caplog.records if "distinct retry names" in r.getMessage()]) == 1


def test_suppressed_operations_are_invisible(instrument: Any) -> None:
    telemetry = instrument()
    with suppress_instrumentation():
        assert tenacity.Retrying()(lambda: 1) == 1
        for attempt in tenacity.Retrying():
            with attempt:
                pass
    assert telemetry.spans() == ()
    assert calls(telemetry) == {}


def test_uninstrument_restores_tenacity(instrument: Any) -> None:
    instrumentor = TenacityInstrumentor()
    originals = {(owner, name): owner.__dict__[name] for owner, name in WRAPPED}
    telemetry = instrument()
    assert all(owner.__dict__[name] is not originals[owner, name] for owner, name in WRAPPED)
    instrumentor.uninstrument()
    assert {(owner, name): owner.__dict__[name] for owner, name in WRAPPED} == originals
    tenacity.Retrying()(lambda: None)
    assert telemetry.spans() == ()


class RaisingMeter(NoOpMeter):
    """Instruments that raise when used (counters are kept in process: their histograms raise)."""

    def create_counter(self, *args: Any, **kwargs: Any) -> RaisingInstrument:  # type: ignore[override]
        return RaisingInstrument()

    create_histogram = create_counter  # type: ignore[assignment]


class RaisingMeterProvider:
    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> RaisingMeter:
        return RaisingMeter(name)


@pytest.mark.faults
@pytest.mark.parametrize("fault", ["processor", "instrument", "hook"])
def test_faults_never_reach_a_retried_operation(
    instrument: Any, telemetry: Telemetry, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    app_tracer = TracerProvider().get_tracer("app")  # the app's own spans are not what is tested
    if fault == "processor":
        telemetry.tracer_provider.add_span_processor(RaisingProcessor())
    options: dict[str, Any] = {"span_hook": faulty_hook} if fault == "hook" else {}
    if fault == "instrument":
        options["meter_provider"] = RaisingMeterProvider()
    instrument(**options)
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        for _ in range(3):
            in_attempt_span = fault != "processor"  # no span could start: the operation is not recorded
            assert exercise(app_tracer) == ["ok", (tenacity.RetryError, "3"), in_attempt_span, 2]
    ours = [r for r in caplog.records if r.getMessage().startswith("otel-resilience: telemetry failed")]
    assert ours, "a fault in our own path is reported"
    assert len(ours) == len({r.getMessage() for r in ours}), "each kind of fault is logged once"
