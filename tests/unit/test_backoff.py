"""What a user of the backoff instrumentation sees: every decorator form, options, faults, lifecycle."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterator
from typing import Any

import backoff
import backoff._async
import backoff._sync
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

from otel_resilience import contract as c
from otel_resilience.backoff import BackoffCallInfo, BackoffInstrumentor
from tests.support.cancellation import cancel_after
from tests.support.cycles import assert_cycles_restore_every_original
from tests.support.faulty import break_recorder_part
from tests.support.telemetry import Telemetry, instrumented_fixture, options_fixture, span_hook_infos

NAME = c.RETRY_NAME
OUTCOME = c.OUTCOME


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


class Script:
    """Raises each failure given (or returns each value given), then returns ``result``."""

    def __init__(self, *steps: Any, result: Any = "ok") -> None:
        self.steps = list(steps)
        self.result = result
        self.calls = 0

    def next(self) -> Any:
        self.calls += 1
        if self.steps:
            step = self.steps.pop(0)
            if isinstance(step, BaseException):
                raise step
            return step
        return self.result


instrumented = instrumented_fixture(BackoffInstrumentor)
instrument = options_fixture(BackoffInstrumentor)


def on_exception(**options: Any) -> Any:
    options = {"interval": 0, "max_tries": 3, **options}
    return backoff.on_exception(backoff.constant, Flaky, **options)


def operation_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans() if not s.name.endswith(" attempt") and c.RETRY_NAME in s.attributes]


def attempt_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans() if s.name.endswith(" attempt")]


def calls(telemetry: Telemetry) -> dict[tuple[Any, ...], float]:
    return telemetry.values("resilience.retry.calls", NAME, OUTCOME, c.ERROR_TYPE)


# -- on_exception, sync ---------------------------------------------------------------------------


def test_success_with_retry_spans_and_metrics(instrumented: Telemetry) -> None:
    script = Script(Flaky("1"), Flaky("2"))
    app = trace.get_tracer("app", tracer_provider=instrumented.tracer_provider)

    @on_exception()
    def fetch() -> Any:
        with app.start_as_current_span("app work"):
            return script.next()

    assert fetch() == "ok"
    name = f"{__name__}.test_success_with_retry_spans_and_metrics.<locals>.fetch"
    [operation] = operation_spans(instrumented)
    assert operation.name == name
    assert operation.attributes[OUTCOME] == "success_with_retry"
    assert operation.attributes[c.RETRY_ATTEMPTS] == 3
    assert operation.status.status_code is StatusCode.UNSET
    attempts = sorted(attempt_spans(instrumented), key=lambda s: s.attributes[c.RETRY_ATTEMPT])
    assert [a.attributes[OUTCOME] for a in attempts] == ["failure", "failure", "success"]
    assert all(a.parent.span_id == operation.context.span_id for a in attempts)
    assert [e.name for e in attempts[0].events] == ["exception", c.BACKOFF_EVENT]
    assert attempts[0].attributes[c.ERROR_TYPE] == f"{__name__}.Flaky"
    work = [s for s in instrumented.spans() if s.name == "app work"]
    assert {w.parent.span_id for w in work} == {a.context.span_id for a in attempts}
    assert calls(instrumented) == {(name, "success_with_retry", None): 1}
    assert instrumented.values("resilience.retry.attempts", OUTCOME) == {("failure",): 2, ("success",): 1}
    assert instrumented.values("resilience.retry.backoff.duration", NAME) == {(name,): 2}
    assert instrumented.values("resilience.retry.call.attempts", OUTCOME) == {("success_with_retry",): 1}


def test_the_four_outcomes(instrumented: Telemetry) -> None:
    @on_exception()
    def run(script: Script) -> Any:
        return script.next()

    assert run(Script()) == "ok"
    assert run(Script(Flaky())) == "ok"
    with pytest.raises(Fatal):
        run(Script(Fatal()))
    with pytest.raises(Flaky):
        run(Script(Flaky(), Flaky(), Flaky()))
    name = run.__qualname__
    assert {(k[1], k[2]) for k in calls(instrumented)} == {
        ("success_without_retry", None),
        ("success_with_retry", None),
        ("failed_without_retry", f"{__name__}.Fatal"),
        ("failed_with_retry", f"{__name__}.Flaky"),
    }
    assert all(k[0].endswith(name) for k in calls(instrumented))


def test_giveup_without_raise_is_a_failure(instrumented: Telemetry) -> None:
    @on_exception(raise_on_giveup=False, max_tries=2)
    def run(script: Script) -> Any:
        return script.next()

    assert run(Script(Flaky(), Flaky())) is None
    [(key, count)] = calls(instrumented).items()
    assert key[1:] == ("failed_with_retry", f"{__name__}.Flaky")
    assert count == 1


def test_giveup_predicate_stops_at_once(instrumented: Telemetry) -> None:
    @on_exception(giveup=lambda e: True)
    def run(script: Script) -> Any:
        return script.next()

    script = Script(Flaky())
    with pytest.raises(Flaky):
        run(script)
    assert script.calls == 1
    assert [k[1] for k in calls(instrumented)] == ["failed_without_retry"]


def test_exhausted_wait_generator_gives_up(instrumented: Telemetry) -> None:
    def one_wait() -> Iterator[float]:
        yield 0

    @backoff.on_exception(one_wait, Flaky, max_tries=5)
    def run(script: Script) -> Any:
        return script.next()

    with pytest.raises(Flaky):
        run(Script(Flaky(), Flaky(), Flaky()))
    # backoff's init consumes the generator's only value: the first failure exhausts it.
    assert [k[1] for k in calls(instrumented)] == ["failed_without_retry"]


def test_exception_identity_and_context_unchanged(instrumented: Telemetry) -> None:
    error = Fatal("boom")
    try:
        raise KeyError("cause")
    except KeyError as cause:
        error.__context__ = cause

    @on_exception()
    def run() -> Any:
        raise error

    with pytest.raises(Fatal) as raised:
        run()
    assert raised.value is error
    assert isinstance(raised.value.__context__, KeyError)


def test_method_and_handlers_see_a_proxy_of_the_target(instrumented: Telemetry) -> None:
    seen: list[dict[str, Any]] = []

    class Client:
        @on_exception(on_backoff=seen.append, on_success=seen.append)
        def get(self, script: Script) -> Any:
            """Docstring."""
            return script.next()

    client = Client()
    assert client.get(Script(Flaky())) == "ok"
    assert [d["tries"] for d in seen] == [1, 2]
    target = seen[0]["target"]
    assert target.__name__ == "get"
    assert target.__qualname__.endswith("Client.get")
    assert target.__doc__ == "Docstring."
    assert seen[0]["args"][0] is client
    assert Client.get.__name__ == "get"
    assert type(target).__name__ == "TargetProxy"  # not the function itself: documented
    assert target is Client.get.__wrapped__.__wrapped__
    assert list(inspect.signature(Client.get).parameters) == ["self", "script"]
    [operation] = operation_spans(instrumented)
    assert operation.name.endswith("Client.get")


def test_unbounded_policy_is_diagnosed(instrumented: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    @backoff.on_exception(backoff.constant, Flaky, interval=0)
    def run(script: Script) -> Any:
        return script.next()

    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        run(Script(Flaky()))
        run(Script())
    assert instrumented.values("resilience.diagnostics", c.DIAGNOSTIC) == {("retry_unbounded",): 2}
    assert sum("retry_unbounded" in r.getMessage() for r in caplog.records) == 1


def test_stacked_decorators_nest(instrumented: Telemetry) -> None:
    @on_exception(max_tries=2)
    @backoff.on_exception(backoff.constant, Fatal, interval=0, max_tries=2)
    def run(script: Script) -> Any:
        return script.next()

    assert run(Script(Fatal(), Flaky())) == "ok"
    names = {s.name for s in operation_spans(instrumented)}
    assert len(names) == 1  # both layers retry the same function: one name, two operations per outer attempt
    outcomes = sorted(k[1] for k in calls(instrumented))
    assert outcomes == ["failed_with_retry", "success_with_retry", "success_without_retry"]


def test_suppressed_operations_are_not_recorded(instrumented: Telemetry) -> None:
    @on_exception()
    def run(script: Script) -> Any:
        return script.next()

    with suppress_instrumentation():
        assert run(Script(Flaky())) == "ok"
    assert instrumented.spans() == ()
    assert calls(instrumented) == {}


def test_span_hook_receives_the_target(instrument: Any) -> None:
    infos: list[BackoffCallInfo] = span_hook_infos(instrument)

    def fetch(script: Script) -> Any:
        return script.next()

    decorated = on_exception()(fetch)
    script = Script(Flaky())
    decorated(script)
    assert [(i.attempt, i.outcome) for i in infos] == [
        (1, "failure"),
        (2, "success"),
        (None, "success_with_retry"),
    ]
    assert all(i.target is fetch and i.args == (script,) for i in infos)


def test_metrics_only(instrument: Any) -> None:
    telemetry: Telemetry = instrument(metrics_only=True)  # the tracer provider given too: still no span
    run = on_exception()(Script(Flaky()).next)
    assert run() == "ok"
    assert telemetry.spans() == ()
    assert [k[1] for k in calls(telemetry)] == ["success_with_retry"]


# -- on_predicate ---------------------------------------------------------------------------------


def test_predicate_success_and_giveup(instrumented: Telemetry) -> None:
    @backoff.on_predicate(backoff.constant, interval=0, max_tries=3)
    def poll(script: Script) -> Any:
        return script.next()

    assert poll(Script(0, None, result=7)) == 7
    assert poll(Script(0, 0, 0)) == 0  # backoff gives up and returns the last rejected value
    assert {k[1:]: v for k, v in calls(instrumented).items()} == {
        ("success_with_retry", None): 1,
        ("failed_with_retry", c.REJECTED_RESULT): 1,
    }
    assert instrumented.values("resilience.retry.attempts", OUTCOME, c.ERROR_TYPE) == {
        ("failure", c.REJECTED_RESULT): 5,
        ("success", None): 1,
    }


def test_predicate_sees_each_value_once(instrumented: Telemetry) -> None:
    judged: list[Any] = []

    def predicate(value: Any) -> bool:
        judged.append(value)
        return value < 2

    @backoff.on_predicate(backoff.constant, predicate, interval=0, max_tries=5)
    def poll(script: Script) -> Any:
        return script.next()

    assert poll(Script(0, 1, result=2)) == 2
    assert judged == [0, 1, 2]


# -- async ----------------------------------------------------------------------------------------


def test_async_on_exception_and_predicate(instrumented: Telemetry) -> None:
    @on_exception()
    async def fetch(script: Script) -> Any:
        await asyncio.sleep(0)
        return script.next()

    @backoff.on_predicate(backoff.constant, interval=0, max_tries=2)
    async def poll(script: Script) -> Any:
        return script.next()

    assert inspect.iscoroutinefunction(fetch)

    async def main() -> None:
        assert await fetch(Script(Flaky())) == "ok"
        with pytest.raises(Fatal):
            await fetch(Script(Fatal()))
        assert await poll(Script(0, 0)) == 0
        results = await asyncio.gather(*(fetch(Script(Flaky())) for _ in range(5)))
        assert results == ["ok"] * 5

    asyncio.run(main())
    assert {k[1:]: v for k, v in calls(instrumented).items()} == {
        ("success_with_retry", None): 6,
        ("failed_without_retry", f"{__name__}.Fatal"): 1,
        ("failed_with_retry", c.REJECTED_RESULT): 1,
    }
    for operation in operation_spans(instrumented):
        children = [a for a in attempt_spans(instrumented) if a.parent.span_id == operation.context.span_id]
        assert len(children) == operation.attributes[c.RETRY_ATTEMPTS]


def test_async_cancellation_during_backoff(instrumented: Telemetry) -> None:
    @backoff.on_exception(backoff.constant, Flaky, interval=10, max_tries=3)
    async def fetch() -> Any:
        raise Flaky()

    asyncio.run(cancel_after(0.05, fetch))
    [key] = calls(instrumented)
    assert key[1:] == ("failed_without_retry", "asyncio.exceptions.CancelledError")


# -- decorated before instrument() ----------------------------------------------------------------


@on_exception()
def decorated_before_instrument(script: Script) -> Any:
    return script.next()


def test_decorated_before_instrument_records_backoffs_only(
    instrumented: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        assert decorated_before_instrument(Script(Flaky(), Flaky())) == "ok"
        with pytest.raises(Fatal):
            decorated_before_instrument(Script(Fatal()))
        assert decorated_before_instrument(Script(Flaky())) == "ok"
    name = f"{__name__}.decorated_before_instrument"
    assert instrumented.spans() == ()
    assert calls(instrumented) == {}
    assert instrumented.values("resilience.retry.attempts", NAME) == {}
    assert instrumented.values("resilience.retry.backoff.duration", NAME) == {(name,): 3}
    assert sum("decorated with backoff before instrument()" in r.getMessage() for r in caplog.records) == 1
    assert seen == []


# -- lifecycle ------------------------------------------------------------------------------------


PATCHED = [
    (backoff._sync, "retry_exception"),
    (backoff._sync, "retry_predicate"),
    (backoff._async, "retry_exception"),
    (backoff._async, "retry_predicate"),
    (backoff._sync, "_call_handlers"),
    (backoff._async, "_call_handlers"),
]


def test_thousand_cycles_restore_every_original(telemetry: Telemetry) -> None:
    assert_cycles_restore_every_original(BackoffInstrumentor, telemetry, PATCHED)


def test_decorations_outlive_instrumentation(telemetry: Telemetry) -> None:
    instrumentor = BackoffInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    run = on_exception()(lambda script: script.next())
    assert run(Script(Flaky())) == "ok"
    instrumentor.uninstrument()
    assert run(Script(Flaky())) == "ok"  # not instrumented: nothing recorded
    assert sum(calls(telemetry).values()) == 1
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        assert run(Script(Flaky())) == "ok"
    finally:
        instrumentor.uninstrument()
    assert sum(calls(telemetry).values()) == 2


# -- faults ---------------------------------------------------------------------------------------


@pytest.mark.faults
@pytest.mark.parametrize("part", ["calls", "attempts", "backoff", "attempt_duration", "tracer", "span_hook"])
def test_faults_never_reach_the_application(
    instrumented: Telemetry, part: str, caplog: pytest.LogCaptureFixture
) -> None:
    break_recorder_part(BackoffInstrumentor, part)

    @on_exception()
    def run(script: Script) -> Any:
        return script.next()

    @on_exception()
    async def arun(script: Script) -> Any:
        return script.next()

    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        for _ in range(20):
            assert run(Script(Flaky())) == "ok"
            error = Fatal()
            with pytest.raises(Fatal) as raised:
                run(Script(error))
            assert raised.value is error
            assert asyncio.run(arun(Script(Flaky(), Flaky()))) == "ok"
            assert trace.get_current_span() is trace.INVALID_SPAN
    logged = [r for r in caplog.records if "telemetry failed" in r.getMessage()]
    assert 1 <= len(logged) <= 4  # once per place and kind of fault, not once per call


def test_arguments_that_do_not_bind_fail_one_attempt(instrumented: Telemetry) -> None:
    @on_exception()
    def sync(x: int) -> int:
        return x

    @on_exception()
    async def coro(x: int) -> int:
        return x

    with pytest.raises(TypeError):
        sync(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        asyncio.run(coro(1, 2))  # type: ignore[call-arg]
    assert [k[1:] for k in calls(instrumented)] == [("failed_without_retry", "TypeError")] * 2
    assert len(operation_spans(instrumented)) == 2
    assert len(attempt_spans(instrumented)) == 2


@on_exception()
def module_level(script: Script) -> Any:
    return script.next()


def test_decorated_functions_copy_and_pickle_as_functions(instrumented: Telemetry) -> None:
    import copy
    import pickle

    seen: list[dict[str, Any]] = []

    @on_exception(on_backoff=seen.append)
    def local(script: Script) -> Any:
        return script.next()

    local(Script(Flaky()))
    instrumented_module_level = on_exception()(module_level.__wrapped__)  # decorated before: the raw function
    globals()["module_level"], original = instrumented_module_level, module_level
    try:
        assert pickle.loads(pickle.dumps(instrumented_module_level)) is instrumented_module_level
    finally:
        globals()["module_level"] = original
    assert copy.copy(local) is local
    assert copy.deepcopy({"f": local})["f"] is local
    assert copy.deepcopy(seen[0])["target"] is seen[0]["target"]
