"""What a user of the tenacity instrumentation sees, for every way of using tenacity."""

from __future__ import annotations

import asyncio
import gc
import inspect
import pickle
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stamina
import tenacity
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from tenacity.tornadoweb import TornadoRetrying
from tornado import gen, ioloop

from otel_resilience import contract as c
from otel_resilience._kit.deferred import run_deferred
from otel_resilience.tenacity import TenacityInstrumentor
from tests.support.cancellation import cancel_after
from tests.support.loops import site
from tests.support.telemetry import Telemetry
from tests.support.threads import shared_by_threads

pytestmark = pytest.mark.usefixtures("retry_telemetry")

NO_WAIT = tenacity.wait_none()
HAS_NAME = "name" in inspect.signature(tenacity.BaseRetrying.__init__).parameters
_app: list[trace.Tracer] = []


@pytest.fixture(autouse=True)
def app_tracer(telemetry: Telemetry) -> Iterator[None]:
    """The application's own tracer, exporting where the instrumentation does."""
    _app.append(telemetry.tracer_provider.get_tracer("app"))
    yield
    _app.clear()


def app() -> trace.Tracer:
    return _app[-1]


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


class Script:
    """Fails with each exception given, then returns ``result``; spans its work as the app would."""

    def __init__(self, *failures: BaseException, result: Any = "ok") -> None:
        self.failures = list(failures)
        self.result = result
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        with app().start_as_current_span("app work"):
            if self.failures:
                raise self.failures.pop(0)
        return self.result


def run(script: Script) -> Any:
    """A module-level function for tenacity to retry: ``tests.test_tenacity.run``."""
    return script()


def poll(values: Iterator[Any]) -> Any:
    return next(values)


RUN = f"{__name__}.run"
FLAKY = f"{__name__}.Flaky"
FATAL = f"{__name__}.Fatal"


async def arun(script: Script) -> Any:
    await asyncio.sleep(0)
    return script()


# -- reading what was exported ------------------------------------------------------------------


def operations(t: Telemetry) -> list[ReadableSpan]:
    return [s for s in t.spans() if s.attributes and c.RETRY_ATTEMPTS in s.attributes]


def children(t: Telemetry, parent: ReadableSpan) -> list[ReadableSpan]:
    found = [s for s in t.spans() if s.parent is not None and s.parent.span_id == parent.context.span_id]
    return sorted(found, key=lambda s: s.start_time or 0)


def attempts_of(t: Telemetry, operation: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in children(t, operation) if s.attributes and c.RETRY_ATTEMPT in s.attributes]


def calls(t: Telemetry) -> dict[tuple[Any, ...], float]:
    return t.values(c.RETRY_CALLS.name, c.RETRY_NAME, c.OUTCOME, c.ERROR_TYPE)


def attempt_counts(t: Telemetry) -> dict[tuple[Any, ...], float]:
    return t.values(c.RETRY_ATTEMPTS_METRIC.name, c.OUTCOME, c.ERROR_TYPE)


def histogram(t: Telemetry, spec: c.MetricSpec) -> tuple[int, float]:
    points = t.points(spec.name)
    return sum(p.count for p in points), sum(p.sum for p in points)


def check_operation(
    t: Telemetry,
    name: str,
    outcome: str,
    attempt_errors: list[str | None],
    backoffs: list[float] | None = None,
    error_type: str | None = None,
) -> ReadableSpan:
    """The one operation span and its attempt children are as a user would expect."""
    (operation,) = [s for s in operations(t) if s.name == name]
    assert operation.kind is SpanKind.INTERNAL
    expected = {c.RETRY_NAME: name, c.OUTCOME: outcome, c.RETRY_ATTEMPTS: len(attempt_errors)}
    if error_type is not None:
        expected[c.ERROR_TYPE] = error_type
    assert dict(operation.attributes or {}) == expected
    failed = outcome.startswith("failed")
    assert operation.status.status_code is (StatusCode.ERROR if failed else StatusCode.UNSET)
    attempts = attempts_of(t, operation)
    assert [a.attributes[c.RETRY_ATTEMPT] for a in attempts] == list(range(1, len(attempt_errors) + 1))
    assert [a.name for a in attempts] == [f"{name} attempt"] * len(attempt_errors)
    for attempt, etype in zip(attempts, attempt_errors):
        assert attempt.attributes[c.OUTCOME] == ("success" if etype is None else "failure")
        assert attempt.attributes.get(c.ERROR_TYPE) == etype
        assert attempt.status.status_code is (StatusCode.UNSET if etype is None else StatusCode.ERROR)
        assert operation.start_time <= attempt.start_time <= attempt.end_time <= operation.end_time
    sleeps = [e.attributes[c.RETRY_BACKOFF] for a in attempts for e in a.events if e.name == c.BACKOFF_EVENT]
    assert sleeps == (backoffs if backoffs is not None else [0.0] * (len(attempt_errors) - 1))
    return operation


# -- the call forms -----------------------------------------------------------------------------


def test_decorated_function_that_fails_twice(retry_telemetry: Telemetry) -> None:
    decorated = tenacity.retry(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_fixed(0.01))(run)
    script = Script(Flaky("one"), Flaky("two"))
    assert decorated(script) == "ok"
    assert script.calls == 3

    name = RUN
    operation = check_operation(
        retry_telemetry, name, "success_with_retry", [FLAKY, FLAKY, None], backoffs=[0.01, 0.01]
    )
    attempts = attempts_of(retry_telemetry, operation)
    for attempt in attempts:  # the application's spans are children of the attempt they ran in
        assert [s.name for s in children(retry_telemetry, attempt)] == ["app work"]
    first = attempts[0]
    assert [e.name for e in first.events] == ["exception", c.BACKOFF_EVENT]
    assert first.events[0].attributes["exception.message"] == "one"
    assert first.events[1].timestamp == first.end_time
    assert operation.events == ()

    assert calls(retry_telemetry) == {(name, "success_with_retry", None): 1}
    assert attempt_counts(retry_telemetry) == {("failure", FLAKY): 2, ("success", None): 1}
    assert histogram(retry_telemetry, c.RETRY_CALL_ATTEMPTS) == (1, 3)
    assert histogram(retry_telemetry, c.RETRY_BACKOFF_DURATION) == (2, pytest.approx(0.02))
    assert histogram(retry_telemetry, c.RETRY_CALL_DURATION)[1] >= 0.02
    assert histogram(retry_telemetry, c.RETRY_ATTEMPT_DURATION)[0] == 3
    for spec in (
        c.RETRY_CALL_ATTEMPTS,
        c.RETRY_CALL_DURATION,
        c.RETRY_ATTEMPT_DURATION,
        c.RETRY_BACKOFF_DURATION,
    ):
        assert tuple(retry_telemetry.points(spec.name)[0].explicit_bounds) == spec.buckets


def test_decorated_coroutine_function(retry_telemetry: Telemetry) -> None:
    decorated = tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=NO_WAIT)(arun)
    assert asyncio.run(decorated(Script(Flaky()))) == "ok"
    operation = check_operation(retry_telemetry, f"{__name__}.arun", "success_with_retry", [FLAKY, None])
    for attempt in attempts_of(retry_telemetry, operation):
        assert [s.name for s in children(retry_telemetry, attempt)] == ["app work"]


def test_retrying_call(retry_telemetry: Telemetry) -> None:
    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(2), wait=NO_WAIT)
    assert retrying(run, Script(Flaky())) == "ok"
    check_operation(retry_telemetry, RUN, "success_with_retry", [FLAKY, None])


def test_retry_with(retry_telemetry: Telemetry) -> None:
    decorated = tenacity.retry(stop=tenacity.stop_after_attempt(1))(run)
    assert decorated.retry_with(stop=tenacity.stop_after_attempt(3), wait=NO_WAIT)(Script(Flaky())) == "ok"
    check_operation(retry_telemetry, RUN, "success_with_retry", [FLAKY, None])


@pytest.mark.skipif(not HAS_NAME, reason="tenacity < 9.2 has no name=")
def test_tenacity_name_wins(retry_telemetry: Telemetry) -> None:
    assert tenacity.Retrying(name="inventory")(run, Script()) == "ok"
    check_operation(retry_telemetry, "inventory", "success_without_retry", [None])


def test_stop_raises_retry_error_named_after_the_last_attempt(retry_telemetry: Telemetry) -> None:
    decorated = tenacity.retry(stop=tenacity.stop_after_attempt(2), wait=NO_WAIT)(run)
    with pytest.raises(tenacity.RetryError) as raised:
        decorated(Script(Flaky("a"), Fatal("b")))
    assert isinstance(raised.value.last_attempt.exception(), Fatal)
    name = RUN
    operation = check_operation(retry_telemetry, name, "failed_with_retry", [FLAKY, FATAL], error_type=FATAL)
    assert operation.events == (), "the last attempt recorded the exception the RetryError wraps"
    assert calls(retry_telemetry) == {(name, "failed_with_retry", FATAL): 1}


def test_reraise_reads_the_same_as_retry_error(retry_telemetry: Telemetry) -> None:
    decorated = tenacity.retry(stop=tenacity.stop_after_attempt(2), wait=NO_WAIT, reraise=True)(run)
    failure = Fatal("b")
    with pytest.raises(Fatal) as raised:
        decorated(Script(Flaky("a"), failure))
    assert raised.value is failure
    check_operation(
        retry_telemetry,
        RUN,
        "failed_with_retry",
        [FLAKY, FATAL],
        error_type=FATAL,
    )


def test_non_retryable_error_on_the_first_attempt(retry_telemetry: Telemetry) -> None:
    decorated = tenacity.retry(retry=tenacity.retry_if_exception_type(Flaky))(run)
    with pytest.raises(Fatal):
        decorated(Script(Fatal()))
    check_operation(retry_telemetry, RUN, "failed_without_retry", [FATAL], error_type=FATAL)


def test_rejected_results_have_error_type_result(retry_telemetry: Telemetry) -> None:
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda r: r is None), stop=tenacity.stop_after_attempt(3)
    )
    assert retrying(poll, iter([None, None, "ready"])) == "ready"
    name = f"{__name__}.poll"
    check_operation(retry_telemetry, name, "success_with_retry", [c.REJECTED_RESULT, c.REJECTED_RESULT, None])

    with pytest.raises(tenacity.RetryError):
        retrying(poll, iter([None] * 3))
    assert calls(retry_telemetry)[(name, "failed_with_retry", c.REJECTED_RESULT)] == 1


def test_retry_error_callback_value_is_a_failed_operation(retry_telemetry: Telemetry) -> None:
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(2), retry_error_callback=lambda state: "fallback"
    )
    assert retrying(run, Script(Flaky(), Fatal())) == "fallback"
    check_operation(retry_telemetry, RUN, "failed_with_retry", [FLAKY, FATAL], error_type=FATAL)


def test_error_from_a_callback_is_the_operation_error(retry_telemetry: Telemetry) -> None:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        raise KeyError("callback")

    retrying = tenacity.Retrying(before_sleep=before_sleep)
    with pytest.raises(KeyError):
        retrying(run, Script(Flaky()))
    operation = check_operation(
        retry_telemetry,
        RUN,
        "failed_without_retry",
        [FLAKY],
        backoffs=[],
        error_type="KeyError",
    )
    assert [e.attributes["exception.type"] for e in operation.events] == ["KeyError"]


inner = tenacity.retry(stop=tenacity.stop_after_attempt(2), wait=NO_WAIT, reraise=True)(run)


def outer(script: Script) -> Any:
    return inner(script)


def test_retry_of_retries_and_exceptions_are_unchanged(retry_telemetry: Telemetry) -> None:
    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(2), wait=NO_WAIT)
    failure = Fatal("deep")
    try:
        retrying(outer, Script(Flaky(), Flaky(), Flaky(), failure))
    except tenacity.RetryError as exc:
        caught = exc
    assert caught.last_attempt.exception() is failure
    assert caught.__cause__ is failure
    frames = [f.name for f in traceback.extract_tb(failure.__traceback__)]
    assert frames[-2:] == ["run", "__call__"], "the failure's own traceback still ends where it was raised"
    outer_name = f"{__name__}.outer"
    assert calls(retry_telemetry) == {
        (outer_name, "failed_with_retry", FATAL): 1,
        (RUN, "failed_with_retry", FLAKY): 1,
        (RUN, "failed_with_retry", FATAL): 1,
    }
    (outer_span,) = [s for s in operations(retry_telemetry) if s.name == outer_name]
    inner_spans = [s for s in operations(retry_telemetry) if s.name != outer_name]
    outer_attempts = {a.context.span_id for a in attempts_of(retry_telemetry, outer_span)}
    assert {s.parent.span_id for s in inner_spans if s.parent} == outer_attempts


@pytest.mark.skipif(
    "__getstate__" not in vars(tenacity.BaseRetrying), reason="this tenacity's Retrying does not pickle"
)
def test_retrying_object_still_pickles_after_use() -> None:
    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(2), wait=NO_WAIT)
    retrying(run, Script(Flaky()))
    restored = pickle.loads(pickle.dumps(retrying))
    assert restored(run, Script()) == "ok"


# -- the for-attempt forms ----------------------------------------------------------------------


def loop_to_the_end(script: Script) -> Any:
    for attempt in tenacity.Retrying(stop=tenacity.stop_after_attempt(3), wait=NO_WAIT):
        with attempt:
            result = script()
    return result


def test_for_attempt_loop_is_named_after_its_code(retry_telemetry: Telemetry) -> None:
    outer = app().start_span("request")
    with trace.use_span(outer, end_on_exit=True):
        assert loop_to_the_end(Script(Flaky())) == "ok"
        assert trace.get_current_span() is outer, "the loop leaves the current span as it found it"
    name = site(loop_to_the_end)
    operation = check_operation(retry_telemetry, name, "success_with_retry", [FLAKY, None])
    assert operation.parent is not None
    assert operation.parent.span_id == outer.get_span_context().span_id
    for attempt in attempts_of(retry_telemetry, operation):
        assert [s.name for s in children(retry_telemetry, attempt)] == ["app work"]


def return_inside_attempt(script: Script) -> Any:
    for attempt in tenacity.Retrying(stop=tenacity.stop_after_attempt(3), wait=NO_WAIT):
        with attempt:
            return script()
    return None


def test_return_inside_attempt_is_recorded_at_the_next_call(retry_telemetry: Telemetry) -> None:
    assert return_inside_attempt(Script(Flaky(), Flaky())) == "ok"
    assert operations(retry_telemetry) == [], "iter was never asked again: the loop was left"
    tenacity.Retrying()(run, Script())  # the next instrumented call records it
    name = site(return_inside_attempt)
    check_operation(retry_telemetry, name, "success_with_retry", [FLAKY, FLAKY, None])
    assert calls(retry_telemetry) == {
        (name, "success_with_retry", None): 1,
        (RUN, "success_without_retry", None): 1,
    }


def test_break_after_a_swallowed_failure_is_a_failure(retry_telemetry: Telemetry) -> None:
    for attempt in tenacity.Retrying(stop=tenacity.stop_after_attempt(3)):
        with attempt:
            raise Fatal
        break  # the app saw the failure in attempt.retry_state and stopped
    del attempt
    run_deferred()
    name = site(test_break_after_a_swallowed_failure_is_a_failure)
    check_operation(retry_telemetry, name, "failed_without_retry", [FATAL], error_type=FATAL)


def test_break_before_the_attempt_ran_is_a_success(retry_telemetry: Telemetry) -> None:
    for _attempt in tenacity.Retrying():
        break
    del _attempt  # the last reference to tenacity's state: the loop is over
    run_deferred()
    name = site(test_break_before_the_attempt_ran_is_a_success, "for _attempt in")
    check_operation(retry_telemetry, name, "success_without_retry", [None])


def test_for_attempt_with_retry_if_result(retry_telemetry: Telemetry) -> None:
    values = iter([None, 3])
    for attempt in tenacity.Retrying(retry=tenacity.retry_if_result(lambda v: v is None)):
        with attempt:
            value = next(values)
        if not attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
            attempt.retry_state.set_result(value)  # tenacity's documented pattern: set_result twice
    assert value == 3
    name = site(test_for_attempt_with_retry_if_result)
    check_operation(retry_telemetry, name, "success_with_retry", [c.REJECTED_RESULT, None])


def stopped_loop() -> None:
    for attempt in tenacity.Retrying(stop=tenacity.stop_after_attempt(2)):
        with attempt:
            raise Flaky


def test_stop_in_for_attempt_raises_retry_error(retry_telemetry: Telemetry) -> None:
    with pytest.raises(tenacity.RetryError):
        stopped_loop()
    check_operation(
        retry_telemetry, site(stopped_loop), "failed_with_retry", [FLAKY, FLAKY], error_type=FLAKY
    )


async def async_loop(script: Script) -> Any:
    async for attempt in tenacity.AsyncRetrying(stop=tenacity.stop_after_attempt(3)):
        with attempt:
            await asyncio.sleep(0)
            result = script()
    return result


def test_async_for_attempt(retry_telemetry: Telemetry) -> None:
    assert asyncio.run(async_loop(Script(Flaky()))) == "ok"
    operation = check_operation(
        retry_telemetry, site(async_loop, "async for"), "success_with_retry", [FLAKY, None]
    )
    for attempt in attempts_of(retry_telemetry, operation):
        assert [s.name for s in children(retry_telemetry, attempt)] == ["app work"]


async def async_return_inside_attempt() -> Any:
    async for attempt in tenacity.AsyncRetrying():
        async with attempt:  # type: ignore[attr-defined,unused-ignore]
            return Script()()
    return None


@pytest.mark.skipif(
    not hasattr(tenacity.AttemptManager, "__aenter__"), reason="tenacity < 9.2: no async with"
)
def test_async_for_left_with_return_is_recorded_once_collected(retry_telemetry: Telemetry) -> None:
    assert asyncio.run(async_return_inside_attempt()) == "ok"
    gc.collect()  # AsyncRetrying and its state refer to each other
    assert operations(retry_telemetry) == [], "the collector's callback only queued the work"
    run_deferred()
    name = site(async_return_inside_attempt, "async for")
    operation = check_operation(retry_telemetry, name, "success_without_retry", [None])
    (attempt,) = attempts_of(retry_telemetry, operation)
    assert [s.name for s in children(retry_telemetry, attempt)] == ["app work"], "async with, too"


def test_tasks_sharing_one_async_retrying(retry_telemetry: Telemetry) -> None:
    shared = tenacity.AsyncRetrying(stop=tenacity.stop_after_attempt(3), wait=NO_WAIT)

    async def work(label: str, failures: int) -> str:
        script = Script(*[Flaky() for _ in range(failures)], result=label)
        with app().start_as_current_span(f"task {label}"):
            return await shared(arun, script)  # type: ignore[no-any-return]

    async def main() -> list[str]:
        return await asyncio.gather(work("a", 2), work("b", 0), work("c", 1))

    assert asyncio.run(main()) == ["a", "b", "c"]
    tasks = {s.name: s for s in retry_telemetry.spans() if s.name.startswith("task ")}
    by_parent = {s.parent.span_id: s for s in operations(retry_telemetry) if s.parent}
    attempts = {
        label: len(attempts_of(retry_telemetry, by_parent[tasks[f"task {label}"].context.span_id]))
        for label in "abc"
    }
    assert attempts == {"a": 3, "b": 1, "c": 2}, "each task's operation under its own span"
    for operation in operations(retry_telemetry):
        for attempt in attempts_of(retry_telemetry, operation):
            assert [s.name for s in children(retry_telemetry, attempt)] == ["app work"]
    assert calls(retry_telemetry) == {
        (f"{__name__}.arun", "success_with_retry", None): 2,
        (f"{__name__}.arun", "success_without_retry", None): 1,
    }


def test_threads_sharing_one_decorated_function(retry_telemetry: Telemetry) -> None:
    decorated = shared_by_threads(tenacity.retry(wait=NO_WAIT)(run))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(decorated, [Script(*(Flaky() for _ in range(i % 3))) for i in range(12)]))
    assert results == ["ok"] * 12
    assert calls(retry_telemetry) == {
        (RUN, "success_with_retry", None): 8,
        (RUN, "success_without_retry", None): 4,
    }
    for operation in operations(retry_telemetry):
        attempts = attempts_of(retry_telemetry, operation)
        assert len(attempts) == operation.attributes[c.RETRY_ATTEMPTS]
        assert all(children(retry_telemetry, a)[0].name == "app work" for a in attempts)


def test_tasks_sharing_one_async_for_loop_object() -> None:
    """tenacity keeps an async-for loop's state on the AsyncRetrying: tasks sharing it share attempts.

    Whatever tenacity does there, the instrumentation must neither fail nor leave a span current.
    """
    shared = tenacity.AsyncRetrying(stop=tenacity.stop_after_attempt(2))

    async def work() -> int:
        runs = 0
        async for attempt in shared:
            with attempt:
                runs += 1
                await asyncio.sleep(0.001)
        assert trace.get_current_span() is trace.INVALID_SPAN
        return runs

    async def main() -> list[int]:
        return await asyncio.gather(work(), work())

    assert sum(asyncio.run(main())) >= 2


# -- Tornado and stamina ------------------------------------------------------------------------


def test_tornado_retrying(retry_telemetry: Telemetry) -> None:
    script = Script(Flaky())

    @gen.coroutine  # type: ignore[misc]
    def work() -> Any:
        yield gen.sleep(0)
        return script()

    retrying = TornadoRetrying(stop=tenacity.stop_after_attempt(3))
    assert ioloop.IOLoop.current().run_sync(lambda: retrying(work)) == "ok"
    name = f"{__name__}.test_tornado_retrying.<locals>.work"
    operation = check_operation(retry_telemetry, name, "success_with_retry", [FLAKY, None])
    for attempt in attempts_of(retry_telemetry, operation):
        assert [s.name for s in children(retry_telemetry, attempt)] == ["app work"]


@pytest.fixture
def fast_stamina() -> Iterator[None]:
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@stamina.retry(on=Flaky, attempts=3)
def stamina_run(script: Script) -> Any:
    return script()


@stamina.retry(on=Flaky, attempts=3)
async def stamina_arun(script: Script) -> Any:
    return await arun(script)


@pytest.mark.usefixtures("fast_stamina")
def test_stamina_retry_is_named_after_the_function(retry_telemetry: Telemetry) -> None:
    assert stamina_run(Script(Flaky())) == "ok"
    assert asyncio.run(stamina_arun(Script(Flaky(), Flaky()))) == "ok"
    run_deferred()  # stamina returns from inside `with attempt:`
    check_operation(retry_telemetry, f"{__name__}.stamina_run", "success_with_retry", [FLAKY, None])
    gc.collect()
    run_deferred()
    check_operation(retry_telemetry, f"{__name__}.stamina_arun", "success_with_retry", [FLAKY, FLAKY, None])


@pytest.mark.usefixtures("fast_stamina")
def test_stamina_retry_context(retry_telemetry: Telemetry) -> None:
    script = Script(Flaky())
    for attempt in stamina.retry_context(on=Flaky, attempts=3):
        with attempt:
            script()
    check_operation(retry_telemetry, site(test_stamina_retry_context), "success_with_retry", [FLAKY, None])


@stamina.retry(on=Flaky, attempts=3)
def stamina_rows(script: Script) -> Iterator[int]:
    script()
    yield from range(5)


@pytest.mark.skipif(
    not inspect.isgeneratorfunction(stamina_rows), reason="this stamina retries no generators"
)
@pytest.mark.usefixtures("fast_stamina")
def test_generator_closed_inside_the_attempt(retry_telemetry: Telemetry) -> None:
    outer = app().start_span("consumer")
    with trace.use_span(outer, end_on_exit=True):
        rows = stamina_rows(Script(Flaky()))
        assert next(rows) == 0
        with app().start_as_current_span("between items"):
            pass
        rows.close()  # the consumer stops early, inside stamina's `with attempt:`
        assert trace.get_current_span() is outer
    del rows
    gc.collect()
    run_deferred()
    check_operation(retry_telemetry, f"{__name__}.stamina_rows", "success_with_retry", [FLAKY, None])
    finished = {s.name: s for s in retry_telemetry.spans()}
    assert finished["between items"].parent.span_id == outer.get_span_context().span_id, (
        "in a generator the attempt span is not made current, so it does not leak into the consumer"
    )


def rows_in_a_cycle(box: dict[str, Any]) -> Iterator[int]:
    for attempt in tenacity.Retrying():
        with attempt:
            yield 1
            yield 2


class SpanWatcher(SpanProcessor):
    """Notes every span started or ended while the garbage collector runs."""

    def __init__(self) -> None:
        self.collecting = False
        self.during_collection: list[str] = []

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        self.collecting = phase == "start"

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.collecting:
            self.during_collection.append(f"start {span.name}")

    def on_end(self, span: ReadableSpan) -> None:
        if self.collecting:
            self.during_collection.append(f"end {span.name}")


def test_the_garbage_collector_only_queues_work(retry_telemetry: Telemetry) -> None:
    watcher = SpanWatcher()
    retry_telemetry.tracer_provider.add_span_processor(watcher)
    box: dict[str, Any] = {}
    rows = box["rows"] = rows_in_a_cycle(box)  # only the collector can close it
    assert next(rows) == 1
    del rows, box
    gc.callbacks.append(watcher.on_gc)
    try:
        gc.collect()  # closes the generator inside `with attempt:`, then frees tenacity's state
        gc.collect()
    finally:
        gc.callbacks.remove(watcher.on_gc)
    assert watcher.during_collection == []
    assert operations(retry_telemetry) == []
    run_deferred()
    check_operation(retry_telemetry, site(rows_in_a_cycle), "success_without_retry", [None])


# -- what changes nothing -----------------------------------------------------------------------


def test_interrupted_backoff_is_a_failure(retry_telemetry: Telemetry) -> None:
    retrying = tenacity.AsyncRetrying(wait=tenacity.wait_fixed(10))
    asyncio.run(cancel_after(0.01, lambda: retrying(arun, Script(Flaky()))))
    gc.collect()
    run_deferred()
    arun_name = f"{__name__}.arun"
    check_operation(
        retry_telemetry, arun_name, "failed_without_retry", [FLAKY], backoffs=[10.0], error_type=FLAKY
    )


def test_objects_created_before_instrument(telemetry: Telemetry) -> None:
    instrumentor = TenacityInstrumentor()
    instrumentor.uninstrument()
    decorated = tenacity.retry(wait=NO_WAIT)(run)
    retrying = tenacity.Retrying(wait=NO_WAIT)
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    assert decorated(Script(Flaky())) == "ok"
    assert retrying(run, Script()) == "ok"
    assert calls(telemetry) == {(RUN, "success_with_retry", None): 1, (RUN, "success_without_retry", None): 1}


def test_attempt_and_operation_durations_carry_exemplars_of_their_spans(retry_telemetry: Telemetry) -> None:
    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_none())
    retrying(int)
    ids = {s.name: (s.context.trace_id, s.context.span_id) for s in retry_telemetry.spans()}
    data = retry_telemetry.reader.get_metrics_data()  # once: a collection hands its exemplars out once
    assert data is not None
    exemplars = {
        metric.name: [(e.trace_id, e.span_id) for point in metric.data.data_points for e in point.exemplars]
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert exemplars[c.RETRY_ATTEMPT_DURATION.name] == [ids["builtins.int attempt"]]
    assert exemplars[c.RETRY_CALL_DURATION.name] == [ids["builtins.int"]]
