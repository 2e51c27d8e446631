"""Differential property test: instrumented tenacity behaves exactly like uninstrumented tenacity.

Each example draws an entry form (``@retry`` on functions and coroutine functions, ``Retrying(...)(fn)``,
``retry_with``, the for-attempt loop run to its end, left with ``return`` or with ``break``, the
async-for loop, tasks sharing one ``AsyncRetrying``, ``TornadoRetrying``, ``stamina.retry`` sync and
async, ``stamina.retry_context``), a policy (stop after 1-4 attempts or never, retry on exceptions,
on results (``retry_if_result``) or both, waits, ``reraise``, ``retry_error_callback``,
``before_sleep``) and, per operation, a sequence of attempt outcomes (return a value, ``None`` or
raise a retryable error, a fatal one or ``TryAgain``). The example runs once while tenacity is not
instrumented, then once under ``TenacityInstrumentor`` with in-memory SDK providers.

- Both runs must give the same results, exceptions (type, arguments, ``__cause__``/``__context__``
  types, which of the function's exceptions it is, traceback frames outside this package),
  sequences of calls to the function, to ``before``/``after``/``before_sleep``/
  ``retry_error_callback`` and to ``sleep``, and ``statistics``.
- The instrumented run's metrics and spans must equal the ground truth derived from what the
  uninstrumented run observably did: the function's calls and exceptions, the ``after`` calls
  (tenacity's verdict "retry"), the sleeps, and what the application finally got.

``test_sabotage_is_caught`` checks that a wrapper which changed behaviour would fail this test.
Each form gets its own ``EXAMPLES_PER_FORM`` examples; the numbers run are printed (``pytest -s``)
and asserted.
"""

from __future__ import annotations

import asyncio
import gc
import traceback
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import stamina
import tenacity
import wrapt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from tenacity.tornadoweb import TornadoRetrying
from tornado import gen

from otel_resilience import contract as c
from otel_resilience._kit.deferred import run_deferred
from otel_resilience._kit.exceptions import error_type
from otel_resilience.tenacity import TenacityInstrumentor, _telemetry
from tests.support.telemetry import Telemetry, in_memory_telemetry

EXAMPLES_PER_FORM = 30


class Retryable(Exception):
    pass


class Fatal(Exception):
    pass


RAISED: dict[str, type[Exception]] = {"retryable": Retryable, "fatal": Fatal, "try_again": tenacity.TryAgain}

SYNC_FORMS = ("decorator", "retry_with", "call", "for", "for_return", "for_break", "tornado")
ASYNC_FORMS = (
    "async_decorator",
    "async_call",
    "async_for",
    "async_for_return",
    "async_shared",
    "async_for_shared",
)
STAMINA_FORMS = ("stamina", "stamina_async", "stamina_context")
FORMS = SYNC_FORMS + ASYNC_FORMS + STAMINA_FORMS
LEFT_EARLY = (
    "for_return",
    "for_break",
    "async_for_return",
    "async_for_shared",
    "stamina",
    "stamina_async",
    "stamina_context",
)


@dataclass(frozen=True)
class Policy:
    attempts: int | None
    """stop_after_attempt(attempts), or stop_never (the function ends with a non-retried value)."""
    retry: str
    """``exception`` (Retryable), ``result`` (None) or ``both``."""
    wait: str
    reraise: bool
    fallback: bool
    """A retry_error_callback returning a value."""
    before_sleep: bool


OUTCOME = st.one_of(
    st.tuples(st.just("return"), st.sampled_from([None, 0, "value"])),
    st.tuples(st.just("raise"), st.sampled_from(list(RAISED))),
)
SEQUENCE = st.lists(OUTCOME, max_size=5)
POLICY = st.builds(
    Policy,
    st.one_of(st.none(), st.integers(1, 4)),
    st.sampled_from(["exception", "result", "both"]),
    st.sampled_from(["none", "fixed", "incrementing"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


# -- one run ------------------------------------------------------------------------------------


class Script:
    """The retried function: follows its outcomes, then returns ``"final"``."""

    def __init__(self, label: str, outcomes: list[tuple[str, Any]], log: list[tuple[Any, ...]]) -> None:
        self.label = label
        self.outcomes = outcomes
        self.log = log
        self.calls = 0
        # Weakly: an attempt's exception leads (through its traceback) to the loop's frame and
        # tenacity's state, which must be freed for a loop left early to be recorded.
        self.raised: dict[int, weakref.ref[BaseException]] = {}
        self.errors: dict[int, str] = {}

    def step(self) -> Any:
        self.calls += 1
        kind, value = (
            self.outcomes[self.calls - 1] if self.calls <= len(self.outcomes) else ("return", "final")
        )
        self.log.append(("call", self.label, self.calls))
        if kind == "return":
            return value
        exc = RAISED[value](f"{self.label}{self.calls}")
        self.raised[self.calls] = weakref.ref(exc)
        self.errors[self.calls] = error_type(exc)
        raise exc

    async def astep(self) -> Any:
        await asyncio.sleep(0)
        return self.step()

    @gen.coroutine  # type: ignore[misc]
    def tstep(self) -> Any:
        yield gen.sleep(0)
        return self.step()


def step(script: Script) -> Any:
    return script.step()


async def astep(script: Script) -> Any:
    return await script.astep()


def label_of(state: tenacity.RetryCallState) -> str:
    return state.args[0].label if state.args else "a"


def summary(state: tenacity.RetryCallState) -> Any:
    outcome = state.outcome
    if outcome is None:
        return None
    if outcome.failed:
        exc = outcome.exception()
        return (type(exc).__name__, exc.args)
    return ("returned", outcome.result())


@dataclass
class Run:
    log: list[tuple[Any, ...]] = field(default_factory=list)
    scripts: dict[str, Script] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    """What the application got, per operation: ("value", v) or the exception."""
    statistics: Any = None

    def observable(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "results": {
                label: describe(result, self.scripts[label]) for label, result in self.results.items()
            },
            "statistics": self.statistics,
        }


def frames(exc: BaseException) -> list[tuple[str, str, int | None]]:
    return [
        (f.filename.rsplit("/", 1)[-1], f.name, f.lineno)
        for f in traceback.extract_tb(exc.__traceback__)
        if "otel_resilience" not in f.filename
    ]


def describe(result: Any, script: Script) -> Any:
    if not isinstance(result, BaseException):
        return result
    own = next((n for n, e in script.raised.items() if e() is result), None)
    if isinstance(result, tenacity.RetryError):
        last = result.last_attempt
        detail: Any = (last.attempt_number, summary_of_future(last))
    else:
        detail = result.args
    return (
        type(result).__name__,
        detail,
        own,
        type(result.__cause__).__name__,
        type(result.__context__).__name__,
        frames(result),
        frames(result.__cause__) if result.__cause__ else None,
    )


def summary_of_future(future: tenacity.Future) -> Any:
    exc = future.exception()
    return (type(exc).__name__, exc.args) if exc is not None else ("returned", future.result())


def stats(statistics: dict[str, Any]) -> Any:
    return (sorted(statistics), statistics.get("attempt_number"), statistics.get("idle_for"))


WAITS: dict[str, Callable[[], Any]] = {
    "none": tenacity.wait_none,
    "fixed": lambda: tenacity.wait_fixed(0.5),
    "incrementing": lambda: tenacity.wait_incrementing(0.1, 0.2),
}
RETRIES: dict[str, Callable[[], Any]] = {
    "exception": lambda: tenacity.retry_if_exception_type(Retryable),
    "result": lambda: tenacity.retry_if_result(lambda value: value is None),
    "both": lambda: (
        tenacity.retry_if_exception_type(Retryable) | tenacity.retry_if_result(lambda v: v is None)
    ),
}


def retrying_options(policy: Policy, log: list[tuple[Any, ...]]) -> dict[str, Any]:
    def before(state: tenacity.RetryCallState) -> None:
        log.append(("before", label_of(state), state.attempt_number))

    def after(state: tenacity.RetryCallState) -> None:
        log.append(("after", label_of(state), state.attempt_number, summary(state)))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        log.append(("before_sleep", label_of(state), state.attempt_number, state.upcoming_sleep))

    def fallback(state: tenacity.RetryCallState) -> Any:
        log.append(("fallback", label_of(state), state.attempt_number, summary(state)))
        return "fallback"

    return {
        "stop": tenacity.stop_after_attempt(policy.attempts) if policy.attempts else tenacity.stop_never,
        "retry": RETRIES[policy.retry](),
        "wait": WAITS[policy.wait](),
        "reraise": policy.reraise,
        "retry_error_callback": fallback if policy.fallback else None,
        "before": before,
        "after": after,
        "before_sleep": before_sleep if policy.before_sleep else None,
    }


def sync_sleep(log: list[tuple[Any, ...]]) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        log.append(("sleep", seconds))

    return sleep


def async_sleep(log: list[tuple[Any, ...]]) -> Callable[[float], Any]:
    async def sleep(seconds: float) -> None:
        log.append(("sleep", seconds))
        await asyncio.sleep(0)

    return sleep


def tornado_sleep(log: list[tuple[Any, ...]]) -> Callable[[float], Any]:
    def sleep(seconds: float) -> Any:
        log.append(("sleep", seconds))
        return gen.sleep(0)

    return sleep


def capture(run: Run, label: str, operation: Callable[[], Any]) -> None:
    try:
        run.results[label] = operation()
    except Exception as exc:
        run.results[label] = exc
    run.log.append(("current span left", label, trace.get_current_span() is trace.INVALID_SPAN))


async def acapture(run: Run, label: str, operation: Callable[[], Any]) -> None:
    try:
        run.results[label] = await operation()
    except Exception as exc:
        run.results[label] = exc
    run.log.append(("current span left", label, trace.get_current_span() is trace.INVALID_SPAN))


STAMINA = {"on": Retryable, "wait_initial": 0, "wait_max": 0, "wait_jitter": 0}


def execute(form: str, policy: Policy, sequences: list[list[tuple[str, Any]]]) -> Run:
    run = Run()
    log = run.log
    scripts = [Script(label, outcomes, log) for label, outcomes in zip("ab", sequences)]
    run.scripts = {s.label: s for s in scripts}
    script = scripts[0]
    options = retrying_options(policy, log)
    attempts = {"attempts": policy.attempts}

    if form in ("decorator", "retry_with"):
        if form == "decorator":
            decorated = tenacity.retry(sleep=sync_sleep(log), **options)(step)
        else:
            plain = tenacity.retry(stop=tenacity.stop_after_attempt(1))(step)
            decorated = plain.retry_with(sleep=sync_sleep(log), **options)
        capture(run, "a", lambda: decorated(script))
        run.statistics = stats(decorated.statistics)
    elif form == "call":
        retrying = tenacity.Retrying(sleep=sync_sleep(log), **options)
        capture(run, "a", lambda: retrying(step, script))
        run.statistics = stats(retrying.statistics)
    elif form in ("for", "for_return", "for_break"):
        retrying = tenacity.Retrying(sleep=sync_sleep(log), **options)

        def loop() -> Any:
            result = "loop ended"
            for attempt in retrying:
                with attempt:
                    if form == "for_return":
                        return script.step()
                    result = script.step()
                if attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
                    continue
                if form == "for_break":
                    break
                attempt.retry_state.set_result(result)  # so that retry_if_result sees it
            return result

        capture(run, "a", loop)
        run.statistics = stats(retrying.statistics)
    elif form == "tornado":
        tornado_retrying = TornadoRetrying(sleep=tornado_sleep(log), **options)

        async def tornado_main() -> Any:
            return await tornado_retrying(script.tstep)

        capture(run, "a", lambda: asyncio.run(tornado_main()))
        run.statistics = stats(tornado_retrying.statistics)
    elif form in ASYNC_FORMS:
        async_retrying = tenacity.AsyncRetrying(sleep=async_sleep(log), **options)

        async def async_loop(script: Script) -> Any:
            result = "loop ended"
            async for attempt in async_retrying:
                with attempt:
                    if form == "async_for_return":
                        return await script.astep()
                    result = await script.astep()
                if not attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
                    attempt.retry_state.set_result(result)
            return result

        async def async_main() -> None:
            if form == "async_decorator":
                decorated = tenacity.retry(sleep=async_sleep(log), **options)(astep)
                await acapture(run, "a", lambda: decorated(script))
                run.statistics = stats(decorated.statistics)
                return
            if form == "async_call":
                await acapture(run, "a", lambda: async_retrying(astep, script))
            elif form == "async_shared":
                await asyncio.gather(
                    *(acapture(run, s.label, lambda s=s: async_retrying(astep, s)) for s in scripts)
                )
            elif form == "async_for_shared":  # tenacity keeps the loop's state on the shared object
                await asyncio.gather(*(acapture(run, s.label, lambda s=s: async_loop(s)) for s in scripts))
            else:
                await acapture(run, "a", lambda: async_loop(script))
            run.statistics = stats(async_retrying.statistics)

        asyncio.run(async_main())
    elif form == "stamina":
        capture(run, "a", lambda: stamina.retry(**STAMINA, **attempts)(step)(script))
    elif form == "stamina_async":
        capture(run, "a", lambda: asyncio.run(stamina.retry(**STAMINA, **attempts)(astep)(script)))
    else:

        def context_loop() -> Any:
            result = "loop ended"
            for attempt in stamina.retry_context(**STAMINA, **attempts):
                with attempt:
                    result = script.step()
            return result

        capture(run, "a", context_loop)
    return run


# -- the ground truth of a run ------------------------------------------------------------------


@dataclass
class Truth:
    calls: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    attempts: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    call_attempts: dict[str, list[int]] = field(default_factory=dict)
    sleeps: list[float] = field(default_factory=list)
    operations: list[tuple[str, int]] = field(default_factory=list)


def ground_truth(run: Run, form: str) -> Truth:
    truth = Truth()
    for label, script in run.scripts.items():
        if label not in run.results:
            continue
        result = run.results[label]
        afters = {e[2] for e in run.log if e[0] == "after" and e[1] == label}
        last_error: str | None = None
        for number in range(1, script.calls + 1):
            raised = script.errors.get(number)
            # A retried attempt failed (tenacity's verdict: `after` ran, or another attempt followed).
            failed = raised is not None or number < script.calls or number in afters
            last_error = raised if raised is not None else c.REJECTED_RESULT if failed else None
            truth.attempts["failure" if failed else "success", last_error] += 1
        fallback = any(e[0] == "fallback" and e[1] == label for e in run.log)
        if isinstance(result, BaseException):
            etype = last_error if isinstance(result, tenacity.RetryError) else error_type(result)
        else:
            etype = last_error if fallback else None
        failed = isinstance(result, BaseException) or fallback
        outcome = f"{'failed' if failed else 'success'}_with{'' if script.calls > 1 else 'out'}_retry"
        truth.calls[outcome, etype] += 1
        truth.call_attempts.setdefault(outcome, []).append(script.calls)
        truth.operations.append((outcome, script.calls))
        retried = script.calls - 1
        truth.sleeps += [0.0] * retried if form in STAMINA_FORMS else []
    truth.sleeps += [e[1] for e in run.log if e[0] == "sleep"]
    return truth


def check_telemetry(telemetry: Telemetry, truth: Truth) -> None:
    def counter(spec: c.MetricSpec) -> Counter[tuple[str, str | None]]:
        values = telemetry.values(spec.name, c.OUTCOME, c.ERROR_TYPE)
        return Counter({k: int(v) for k, v in values.items()})  # type: ignore[misc]

    assert counter(c.RETRY_CALLS) == truth.calls
    assert counter(c.RETRY_CALL_DURATION) == truth.calls
    assert counter(c.RETRY_ATTEMPTS_METRIC) == truth.attempts
    assert counter(c.RETRY_ATTEMPT_DURATION) == truth.attempts
    per_outcome = {
        p.attributes[c.OUTCOME]: (p.count, p.sum) for p in telemetry.points(c.RETRY_CALL_ATTEMPTS.name)
    }
    assert per_outcome == {k: (len(v), sum(v)) for k, v in truth.call_attempts.items()}
    backoffs = telemetry.points(c.RETRY_BACKOFF_DURATION.name)
    assert sum(p.count for p in backoffs) == len(truth.sleeps)
    assert sum(p.sum for p in backoffs) == pytest.approx(sum(truth.sleeps))
    names = {p.attributes[c.RETRY_NAME] for p in telemetry.points(c.RETRY_CALLS.name)}
    assert c.OVERFLOW_NAME not in names

    operations = check_structure(telemetry)
    found = sorted((s.attributes[c.OUTCOME], s.attributes[c.RETRY_ATTEMPTS]) for s in operations)
    assert found == sorted(truth.operations)
    events = [e for s in telemetry.spans() for e in s.events if e.name == c.BACKOFF_EVENT]
    assert sorted(e.attributes[c.RETRY_BACKOFF] for e in events) == pytest.approx(sorted(truth.sleeps))


def check_structure(telemetry: Telemetry, every_attempt: bool = True) -> list[Any]:
    """Every attempt span is a child of an operation span; operations match the calls counted.

    ``every_attempt``: each of tenacity's attempt numbers has its span. Tasks sharing an async-for
    loop's state can make tenacity judge an attempt that another task's ``iter`` never started.
    """
    spans = telemetry.spans()
    operations = [s for s in spans if c.RETRY_ATTEMPTS in (s.attributes or {})]
    assert len(operations) == sum(telemetry.values(c.RETRY_CALLS.name).values())
    ids = {s.context.span_id for s in operations}
    assert all(s.parent is not None and s.parent.span_id in ids for s in spans if s not in operations)
    for operation in operations:
        attempts = [
            s for s in spans if s.parent is not None and s.parent.span_id == operation.context.span_id
        ]
        numbers = sorted(a.attributes[c.RETRY_ATTEMPT] for a in attempts)
        expected = list(range(1, operation.attributes[c.RETRY_ATTEMPTS] + 1))
        assert numbers == expected if every_attempt else set(numbers) <= set(expected)
        assert len(set(numbers)) == len(numbers)
        failed = operation.attributes[c.OUTCOME].startswith("failed")
        assert operation.status.status_code is (StatusCode.ERROR if failed else StatusCode.UNSET)
    return operations


# -- the property -------------------------------------------------------------------------------


def assert_uninstrumented() -> None:
    assert not isinstance(tenacity.BaseRetrying.__dict__["iter"], wrapt.ObjectProxy)


def check(form: str, policy: Policy, sequences: list[list[tuple[str, Any]]]) -> None:
    instrumentor = TenacityInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    assert_uninstrumented()
    twin = execute(form, policy, sequences)

    telemetry = in_memory_telemetry()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        instrumented = execute(form, policy, sequences)
        if form in LEFT_EARLY:
            gc.collect()  # an async loop's state and its AsyncRetrying refer to each other
        run_deferred()
    finally:
        instrumentor.uninstrument()
    assert instrumented.observable() == twin.observable()
    if form == "async_for_shared":  # tasks share attempts: no per-operation truth, but well-formed
        check_structure(telemetry, every_attempt=False)
    else:
        check_telemetry(telemetry, ground_truth(twin, form))


@pytest.fixture
def quiet_stamina() -> Any:
    """stamina logs each retry it schedules; its instrumentation is not what is tested."""
    stamina.instrumentation.set_on_retry_hooks([])
    yield
    stamina.instrumentation.set_on_retry_hooks(None)


@pytest.mark.usefixtures("quiet_stamina")
@pytest.mark.parametrize("form", FORMS)
def test_instrumented_tenacity_behaves_like_uninstrumented_tenacity(form: str) -> None:
    examples: list[Policy] = []

    @settings(
        max_examples=EXAMPLES_PER_FORM,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(policy=POLICY, sequences=st.lists(SEQUENCE, min_size=2, max_size=2))
    def differential(policy: Policy, sequences: list[list[tuple[str, Any]]]) -> None:
        examples.append(policy)
        check(form, policy, sequences)

    differential()
    print(f"tenacity differential, {form}: {len(examples)} examples")
    assert len(examples) >= EXAMPLES_PER_FORM


@pytest.mark.usefixtures("quiet_stamina")
@pytest.mark.parametrize("form", FORMS)
def test_every_form_with_retries_stop_and_fallback(form: str) -> None:
    policy = Policy(3, "both", "fixed", reraise=False, fallback=True, before_sleep=True)
    check(form, policy, [[("raise", "retryable"), ("return", None), ("raise", "try_again")], [("return", 1)]])


@pytest.mark.usefixtures("quiet_stamina")
def test_sabotage_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapper that called a user callback once more would be caught."""
    decided = _telemetry.RetryTelemetry.decided

    def meddling(self: Any, operation: Any, retrying: Any, retry_state: Any, action: Any) -> None:
        if isinstance(action, tenacity.DoSleep):
            retrying.after(retry_state)
        decided(self, operation, retrying, retry_state, action)

    monkeypatch.setattr(_telemetry.RetryTelemetry, "decided", meddling)
    policy = Policy(3, "exception", "none", reraise=False, fallback=False, before_sleep=False)
    with pytest.raises(AssertionError):
        check("call", policy, [[("raise", "retryable")], []])
