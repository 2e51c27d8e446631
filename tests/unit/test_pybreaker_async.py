"""pybreaker on ``async def``: the instrumented call behaves as the uninstrumented twin, and tells the truth.

pybreaker has no asyncio support: ``breaker.call(async_fn)`` returns the coroutine and pybreaker
counts a success before the body ran. The instrumentation hands back a proxy of that coroutine and
follows it to its end. Each case below runs on a fresh breaker twice, uninstrumented and
instrumented, and must observe the same: result, exception (the very object the body raised, its
``__context__``, the application's traceback frames), what the body saw (cancellation), pybreaker's
state and counters, warnings. The instrumented run's telemetry is then checked against what
happened: outcome ``unguarded``, ``error.type`` of what the body raised, cancellation recorded as
such (status UNSET), the span current inside the body, abandoned coroutines ended.
"""

from __future__ import annotations

import asyncio
import gc
import re
import warnings
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Callable

import anyio
import pybreaker
import pytest
import trio
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from otel_resilience import contract as c
from otel_resilience._kit.deferred import run_deferred
from otel_resilience.pybreaker import PyBreakerInstrumentor
from tests.support.telemetry import Telemetry, instrumented_fixture


class ServiceDown(Exception):
    pass


@dataclass
class Seen:
    """What one run observed."""

    result: Any = None
    error: tuple[str, tuple[str, ...]] | None = None
    same_object: bool | None = None
    """Whether the caller caught the very exception object the body raised."""
    context: str | None = None
    frames: list[str] = field(default_factory=list)
    """Function names of the traceback's frames, without ours and wrapt's."""
    body: list[str] = field(default_factory=list)
    """What the guarded body noted as it ran."""
    state: str = ""
    fail_counter: int = 0
    warnings: list[str] = field(default_factory=list)


RAISED: list[BaseException] = []
ADDRESS = re.compile(r"\b(0x)?[0-9a-f]{9,}\b")


def app_frames(exc: BaseException) -> list[str]:
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if not module.startswith(("otel_resilience", "wrapt")):
            frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return frames


def make_guarded(breaker: pybreaker.CircuitBreaker, seen: Seen) -> Callable[..., Awaitable[Any]]:
    @breaker
    async def guarded(behaviour: str, delay: float = 0.0) -> str:
        seen.body.append("started")
        span = trace.get_current_span()
        seen.body.append("in a span" if span.get_span_context().is_valid else "no span")
        try:
            if delay:
                await sleep(delay)
        except BaseException as exc:
            seen.body.append(f"saw {type(exc).__name__}")
            raise
        if behaviour == "fail":
            error = ServiceDown("down")
            RAISED.append(error)
            try:
                raise KeyError("lookup")
            except KeyError:
                raise error  # noqa: B904 - __context__ is part of what is compared
        return f"ok:{behaviour}"

    return guarded


async def sleep(delay: float) -> None:
    await anyio.sleep(delay)


async def observe(seen: Seen, call: Awaitable[Any]) -> None:
    try:
        seen.result = await call
    except BaseException as exc:
        # Cancellation messages name cancel scopes and tasks by address: compare them without.
        seen.error = (type(exc).__name__, tuple(ADDRESS.sub("<address>", str(a)) for a in exc.args))
        seen.same_object = bool(RAISED) and exc is RAISED[-1]
        seen.context = type(exc.__context__).__name__ if exc.__context__ else None
        seen.frames = app_frames(exc)


# -- the cases: each drives `guarded` one way and records what it saw ------------------------


async def awaited_success(guarded: Any, seen: Seen) -> None:
    await observe(seen, guarded("fine"))


async def awaited_failure(guarded: Any, seen: Seen) -> None:
    await observe(seen, guarded("fail"))


async def as_task(guarded: Any, seen: Seen) -> None:
    task = asyncio.create_task(guarded("fine"))
    await observe(seen, task)


async def as_failing_task(guarded: Any, seen: Seen) -> None:
    await observe(seen, asyncio.ensure_future(guarded("fail")))


async def gathered(guarded: Any, seen: Seen) -> None:
    await observe(seen, asyncio.gather(guarded("a"), guarded("b"), guarded("fail"), return_exceptions=True))
    seen.result = [r if isinstance(r, str) else type(r).__name__ for r in seen.result]


async def timed_out(guarded: Any, seen: Seen) -> None:
    await observe(seen, asyncio.wait_for(guarded("slow", 5.0), timeout=0.05))


async def anyio_cancelled(guarded: Any, seen: Seen) -> None:
    async with anyio.create_task_group() as group:

        async def run() -> None:
            await observe(seen, guarded("slow", 5.0))

        group.start_soon(run)
        await anyio.sleep(0.05)
        group.cancel_scope.cancel()


async def anyio_awaited(guarded: Any, seen: Seen) -> None:
    await observe(seen, guarded("fine", 0.001))
    await observe(seen, guarded("fail", 0.001))


def in_asyncio(case: Callable[[Any, Seen], Awaitable[None]]) -> Callable[[Any, Seen], None]:
    return lambda guarded, seen: asyncio.run(case(guarded, seen))  # type: ignore[arg-type]


def in_anyio(backend: str, case: Callable[[Any, Seen], Awaitable[None]]) -> Callable[[Any, Seen], None]:
    return lambda guarded, seen: anyio.run(case, guarded, seen, backend=backend)


def in_trio(case: Callable[[Any, Seen], Awaitable[None]]) -> Callable[[Any, Seen], None]:
    return lambda guarded, seen: trio.run(case, guarded, seen)


def never_awaited(guarded: Any, seen: Seen) -> None:
    guarded("fine")  # a coroutine made and dropped
    gc.collect()


def closed_unstarted(guarded: Any, seen: Seen) -> None:
    coroutine = guarded("fine")
    coroutine.close()
    del coroutine
    gc.collect()


CASES: dict[str, Callable[[Any, Seen], None]] = {
    "await success": in_asyncio(awaited_success),
    "await failure": in_asyncio(awaited_failure),
    "create_task": in_asyncio(as_task),
    "ensure_future failing": in_asyncio(as_failing_task),
    "gather": in_asyncio(gathered),
    "wait_for timeout": in_asyncio(timed_out),
    "anyio asyncio": in_anyio("asyncio", anyio_awaited),
    "anyio trio": in_anyio("trio", anyio_awaited),
    "anyio cancelled (asyncio)": in_anyio("asyncio", anyio_cancelled),
    "anyio cancelled (trio)": in_anyio("trio", anyio_cancelled),
    "trio": in_trio(anyio_awaited),
    "never awaited": never_awaited,
    "closed unstarted": closed_unstarted,
}
# What the instrumented run records, per case: (outcome, error.type) of each call, and whether a
# span must be ERROR; cancellations are not failures.
EXPECTED_CALLS: dict[str, dict[tuple[str, str | None], int]] = {
    "await success": {("unguarded", None): 1},
    "await failure": {("unguarded", f"{__name__}.ServiceDown"): 1},
    "create_task": {("unguarded", None): 1},
    "ensure_future failing": {("unguarded", f"{__name__}.ServiceDown"): 1},
    "gather": {("unguarded", None): 2, ("unguarded", f"{__name__}.ServiceDown"): 1},
    "wait_for timeout": {("unguarded", "asyncio.exceptions.CancelledError"): 1},
    "anyio asyncio": {("unguarded", None): 1, ("unguarded", f"{__name__}.ServiceDown"): 1},
    "anyio trio": {("unguarded", None): 1, ("unguarded", f"{__name__}.ServiceDown"): 1},
    "anyio cancelled (asyncio)": {("unguarded", "asyncio.exceptions.CancelledError"): 1},
    "anyio cancelled (trio)": {("unguarded", "trio.Cancelled"): 1},
    "trio": {("unguarded", None): 1, ("unguarded", f"{__name__}.ServiceDown"): 1},
    "never awaited": {("unguarded", None): 1},
    "closed unstarted": {("unguarded", None): 1},
}


def run_case(name: str) -> Seen:
    seen = Seen()
    breaker = pybreaker.CircuitBreaker(fail_max=2, name=f"async {name}")
    RAISED.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CASES[name](make_guarded(breaker, seen), seen)
        gc.collect()
    seen.warnings = sorted(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning))
    seen.state = breaker.current_state
    seen.fail_counter = breaker.fail_counter
    return seen


instrumented = instrumented_fixture(PyBreakerInstrumentor)


@pytest.mark.parametrize("name", list(CASES))
def test_same_behaviour_as_the_uninstrumented_twin_and_true_telemetry(
    name: str, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    twin = run_case(name)
    instrumentor = PyBreakerInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        seen = run_case(name)
        run_deferred()
    finally:
        instrumentor.uninstrument()

    twin.body = [step for step in twin.body if step != "no span"]
    assert [step for step in seen.body if step != "in a span"] == twin.body
    assert seen == Seen(**{**vars(twin), "body": seen.body}), "the app sees what it sees uninstrumented"
    assert all(step != "no span" for step in seen.body), "the call's span is current in the body"
    if name in ("never awaited", "closed unstarted"):
        assert (twin.warnings, seen.warnings) == (
            (["coroutine 'make_guarded.<locals>.guarded' was never awaited"],) * 2
            if name == "never awaited"
            else ([], [])
        )

    breaker_name = f"async {name}"
    calls = telemetry.values(c.BREAKER_CALLS.name, c.BREAKER_NAME, c.OUTCOME, c.ERROR_TYPE)
    assert {key[1:]: value for key, value in calls.items() if key[0] == breaker_name} == EXPECTED_CALLS[name]
    spans = [s for s in telemetry.spans() if s.name == breaker_name]
    assert len(spans) == sum(EXPECTED_CALLS[name].values()), "every call's span ended, none twice"
    for span in spans:
        failed = span.attributes.get(c.ERROR_TYPE, "").endswith("ServiceDown")
        assert span.status.status_code == (StatusCode.ERROR if failed else StatusCode.UNSET)
        abandoned = any(e.name == c.ABANDONED_EVENT for e in span.events)
        assert abandoned == (name in ("never awaited", "closed unstarted"))
    diagnostics = telemetry.values(c.DIAGNOSTICS.name, c.DIAGNOSTIC, c.BREAKER_NAME)
    assert diagnostics == {("breaker_blind_to_async", breaker_name): len(spans)}
    warned = [r.getMessage() for r in caplog.records if "breaker_blind_to_async" in r.getMessage()]
    assert len(warned) == 1
    assert f"({breaker_name}, {__name__}.make_guarded.<locals>.guarded)" in warned[0]


def test_the_span_lasts_as_long_as_the_body(instrumented: Telemetry) -> None:
    seen = Seen()
    guarded = make_guarded(pybreaker.CircuitBreaker(name="timed"), seen)
    asyncio.run(guarded("slow", 0.05))
    (span,) = [s for s in instrumented.spans() if s.name == "timed"]
    assert span.end_time is not None
    assert span.start_time is not None
    assert (span.end_time - span.start_time) / 1e9 >= 0.05


def test_a_second_await_is_refused_as_without_instrumentation(instrumented: Telemetry) -> None:
    guarded = make_guarded(pybreaker.CircuitBreaker(name="twice"), Seen())

    async def twice() -> str:
        coroutine = guarded("fine")
        await coroutine
        return await coroutine

    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        asyncio.run(twice())
