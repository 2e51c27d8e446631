"""Concurrency: threads and tasks sharing one breaker and shared retry objects. Totals exact, no deadlock.

The application keeps its own books of what happened (each thread its own, added up at the end; the
breaker's transitions through a pybreaker listener of its own), in the demo's ground-truth format, and
every metric total must equal them (``otel_resilience._demo.truth``). Meanwhile a thread collects
metrics without pause, as a periodic exporter would, so that the observable callbacks run while
breakers change state. Each workload runs under a watchdog: if it has not finished in time, the
test fails with the stack of every thread.

Why our code cannot deadlock with the breaker's lock. pybreaker holds its ``RLock`` for the whole of
``CircuitBreaker.call`` and for ``open()``/``half_open()``/``close()`` and the ``state`` setter. Our
wrapper of ``CircuitBreaker.call`` runs outside that lock (pybreaker takes it inside the wrapped
call). What runs under it: the ``CircuitBreakerState.before_call`` and ``is_system_error`` patches, which take
no lock (a context variable, a thread-local dict); and the transition patch ``_create_new_state``, which
takes only leaf locks: the name cap's lock (new names only), the SDK's (a counter's aggregation, a
span and the span processors'), the ``logging`` handlers' (the transition's log record) and the fault
log's. None of these is ever held by code that then waits for a breaker's lock: the SDK never calls
into pybreaker, and our observable callbacks, which the SDK calls while holding its collection lock,
read the breaker's cached state object and ``fail_counter`` without taking the breaker's lock (no
``breaker.state``, whose setter takes it), and run deferred work that takes the SDK's leaf locks
only. So every lock order is "breaker lock, then a leaf lock", never the reverse. (The one way to
invert it is the application's: a logging handler that itself calls through the same breaker from
another thread; a pybreaker listener that logs has the same exposure.) tenacity has no locks; ours
there (the one that installs the attempt patches, once, maybe inside a breaker call) are leaves too.

Sizes: 8 threads x 10,000 calls through one breaker, 8 threads x 10,000 operations through shared
retry objects, 1,000 asyncio tasks x 5 operations through ``@retry`` coroutines, ``AsyncRetrying``
loops and one breaker, each as the issue asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from typing import Any, Callable, TypeVar

import pybreaker
import pytest
import tenacity
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from otel_resilience import contract as c
from otel_resilience._demo.dependencies.pybreaker_tenacity import TransitionBooks
from otel_resilience._demo.run import _points
from otel_resilience._demo.simulation import BreakerBooks, GroundTruth, OperationBooks
from otel_resilience._demo.truth import compare, expected_totals, observed_totals
from otel_resilience._kit.deferred import run_deferred
from otel_resilience.pybreaker import PyBreakerInstrumentor
from otel_resilience.tenacity import TenacityInstrumentor
from tests.support.demo_runs import totals_table
from tests.support.loops import site
from tests.support.threads import shared_by_threads

THREADS = 8
CALLS_PER_THREAD = 10_000
TASKS = 1_000
OPERATIONS_PER_TASK = 5
WATCHDOG_S = 120.0
T = TypeVar("T")


class Boom(Exception):
    """The dependency failed: a failure for the breaker."""


class Business(Exception):
    """Excluded by the breaker."""


class Flaky(Exception):
    """Retried."""


class Fatal(Exception):
    """Not retried."""


# -- the harness --------------------------------------------------------------------------------


class SpanCounter(SpanProcessor):
    """Ended spans by name; keeps none (80,000 calls' spans would hold hundreds of MB)."""

    def __init__(self) -> None:
        self.by_name: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.by_name[span.name] += 1


class Rig:
    """Both instrumentors on in-process SDK providers, and a thread collecting metrics non-stop."""

    def __init__(self) -> None:
        self.spans = SpanCounter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(self.spans)
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentors = [PyBreakerInstrumentor(), TenacityInstrumentor()]
        self.collections = 0
        self._stop = threading.Event()
        self._collector = threading.Thread(target=self._collect, name="metric collection", daemon=True)

    def _collect(self) -> None:
        while not self._stop.wait(0.001):
            self.reader.collect()
            self.collections += 1

    def __enter__(self) -> Rig:
        for instrumentor in self.instrumentors:
            instrumentor.instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)
        self._collector.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._collector.join(WATCHDOG_S)
        for instrumentor in self.instrumentors:
            instrumentor.uninstrument()
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()

    def check(self, truth: GroundTruth) -> None:
        """Every metric total equals the application's books."""
        gc.collect()  # for-attempt loops left with `return` end when tenacity's state is freed...
        run_deferred()  # ... and are recorded from here
        books = truth.as_json()
        # Breakers of earlier tests that are still alive are observed too: keep to this test's own.
        ours = {*books["breakers"], *books["operations"]}
        points = [
            (metric, attributes, value)
            for metric, attributes, value in _points(self.reader)
            if attributes.get(c.BREAKER_NAME, attributes.get(c.RETRY_NAME)) in ours
        ]
        rows = compare(expected_totals(books), observed_totals(points))
        assert all(expected == observed for _, expected, observed in rows), totals_table(rows)
        print(f"\n{len(rows)} totals agree; metrics collected {self.collections} times meanwhile")


@pytest.fixture
def rig() -> Iterator[Rig]:
    with Rig() as rig:
        yield rig


def within(seconds: float, work: Callable[[], T]) -> T:
    """``work()`` in a thread of its own; fail with every thread's stack if it is not done in time."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("returned", work()))
        except BaseException as exc:
            outcome.append(("raised", exc))

    began = time.monotonic()
    worker = threading.Thread(target=run, name="workload", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        names = {t.ident: t.name for t in threading.enumerate()}
        stacks = "\n".join(
            f"--- thread {names.get(ident, ident)}:\n{''.join(traceback.format_stack(frame))}"
            for ident, frame in sys._current_frames().items()
        )
        pytest.fail(f"deadlock or stall: not done after {seconds:.0f} s; every thread's stack:\n{stacks}")
    print(f"\nworkload done in {time.monotonic() - began:.1f} s")
    kind, value = outcome[0]
    if kind == "raised":
        raise value
    return value  # type: ignore[no-any-return]


def in_threads(worker: Callable[[int, GroundTruth], None]) -> GroundTruth:
    """``worker(index, books)`` in 8 threads at once, each with books of its own; their sum."""
    books = [GroundTruth(seed=index) for index in range(THREADS)]
    threads = [threading.Thread(target=worker, args=(i, books[i]), daemon=True) for i in range(THREADS)]
    failures: list[str] = []

    def died(args: Any) -> None:
        failures.append(
            "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        )

    excepthook, threading.excepthook = threading.excepthook, died
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        threading.excepthook = excepthook
    assert failures == [], "an application thread died:\n" + "\n".join(failures)
    return added_up(books)


def added_up(books: list[GroundTruth]) -> GroundTruth:
    total = GroundTruth(seed=0)
    for one in books:
        for name, breaker in one.breakers.items():
            total.breakers.setdefault(name, BreakerBooks()).calls.update(breaker.calls)
        for name, operation in one.operations.items():
            mine = total.operations.setdefault(name, OperationBooks())
            mine.calls.update(operation.calls)
            mine.attempts.update(operation.attempts)
            mine.sleeps += operation.sleeps
    return total


# -- one breaker, eight threads -----------------------------------------------------------------

BREAKER_OUTCOMES = (["ok", "boom", "business"], [75, 20, 5])
"""Three failures in a row (0.8% of calls) trip the breaker; after 1 ms it lets a probe through."""


def dependency(kind: str, ran: list[bool]) -> str:
    ran.append(True)
    if kind == "boom":
        raise Boom(kind)
    if kind == "business":
        raise Business(kind)
    return kind


def through_breaker(breaker: pybreaker.CircuitBreaker, form: int, kind: str, books: BreakerBooks) -> str:
    """One call in one of three forms (``call``, ``@breaker``, ``calling()``), booked as the app saw it."""
    ran: list[bool] = []
    try:
        if form == 0:
            result = breaker.call(dependency, kind, ran)
        elif form == 1:
            result = breaker(dependency)(kind, ran)
        else:
            with breaker.calling():
                result = dependency(kind, ran)
    except Business:
        books.calls["ignored"] += 1
        raise
    except pybreaker.CircuitBreakerError:
        books.calls["failure" if ran else "rejected"] += 1
        raise
    except Boom:
        books.calls["failure"] += 1
        raise
    books.calls["success"] += 1
    return result  # type: ignore[no-any-return]


def shared_breaker(name: str, transitions: BreakerBooks) -> pybreaker.CircuitBreaker:
    return pybreaker.CircuitBreaker(
        name=name,
        fail_max=3,
        reset_timeout=0.001,
        exclude=[Business],
        listeners=[TransitionBooks(transitions)],
    )


def test_eight_threads_through_one_breaker(rig: Rig) -> None:
    transitions = BreakerBooks()
    breaker = shared_breaker("shared", transitions)

    def worker(index: int, books: GroundTruth) -> None:
        rng = random.Random(index)
        mine = books.breakers["shared"] = BreakerBooks()
        for call in range(CALLS_PER_THREAD):
            (kind,) = rng.choices(*BREAKER_OUTCOMES)
            with contextlib.suppress(Boom, Business, pybreaker.CircuitBreakerError):
                through_breaker(breaker, call % 3, kind, mine)

    truth = within(WATCHDOG_S, lambda: in_threads(worker))
    truth.breakers["shared"].transitions = transitions.transitions
    truth.breakers["shared"].final_state = transitions.final_state
    calls = truth.breakers["shared"].calls
    print(f"\ncalls: {dict(calls)}; transitions: {dict(transitions.transitions)}")
    assert sum(calls.values()) == THREADS * CALLS_PER_THREAD
    assert transitions.transitions["closed->open"] > 0, "trips"
    assert transitions.transitions["half_open->closed"] > 0, "and recoveries"
    assert calls["rejected"] > 0
    rig.check(truth)
    assert rig.spans.by_name["shared"] == THREADS * CALLS_PER_THREAD, "one span per call"


# -- shared retry objects, eight threads --------------------------------------------------------

POLICY: dict[str, Any] = {
    "stop": tenacity.stop_after_attempt(3),
    "wait": tenacity.wait_none(),
    "retry": tenacity.retry_if_exception_type(Flaky),
}
SCRIPTS = ([["ok"], ["flaky", "ok"], ["flaky", "flaky", "ok"], ["flaky"] * 3, ["fatal"]], [60, 20, 10, 5, 5])
"""What an operation's attempts do: first-try success, retried success, exhaustion, a fatal error."""


class Script:
    """The attempts of one operation, booked as the application saw them."""

    def __init__(self, steps: list[str], books: OperationBooks) -> None:
        self.steps = iter(steps)
        self.books = books
        self.attempts = 0

    def step(self) -> str:
        kind = next(self.steps)
        self.attempts += 1
        self.books.attempts["success" if kind == "ok" else "failure"] += 1
        if kind == "flaky":
            raise Flaky(kind)
        if kind == "fatal":
            raise Fatal(kind)
        return kind


def attempt_by_call(script: Script) -> str:
    return script.step()


def attempt_by_decorator(script: Script) -> str:
    return script.step()


def attempt_by_retry_with(script: Script) -> str:
    return script.step()


def attempt_by_wraps(script: Script) -> str:
    return script.step()


SHARED = tenacity.Retrying(**POLICY)
DECORATED = shared_by_threads(tenacity.retry(**POLICY)(attempt_by_decorator))
RETRY_WITH = shared_by_threads(
    tenacity.retry(**POLICY)(attempt_by_retry_with).retry_with(stop=tenacity.stop_after_attempt(3))
)
WRAPPED = shared_by_threads(SHARED.wraps(attempt_by_wraps))


def for_attempt_on_the_shared_retrying(script: Script) -> str:
    for attempt in SHARED:
        with attempt:
            return script.step()
    raise AssertionError("unreachable: tenacity returns or raises")


RETRY_FORMS: list[tuple[str, Callable[[Script], str]]] = [
    (f"{__name__}.attempt_by_call", lambda script: SHARED(attempt_by_call, script)),
    (f"{__name__}.attempt_by_decorator", DECORATED),
    (f"{__name__}.attempt_by_retry_with", RETRY_WITH),
    (f"{__name__}.attempt_by_wraps", WRAPPED),
    (site(for_attempt_on_the_shared_retrying, "for attempt in"), for_attempt_on_the_shared_retrying),
]


def book_operation(books: OperationBooks, script: Script, operation: Callable[[Script], str]) -> None:
    """Run one operation; book its outcome and its backoffs (one per retry) as the app saw them."""
    try:
        operation(script)
    except (tenacity.RetryError, Fatal):
        succeeded = False
    else:
        succeeded = True
    retried = "with_retry" if script.attempts > 1 else "without_retry"
    books.calls[f"{'success' if succeeded else 'failed'}_{retried}"] += 1
    books.sleeps += script.attempts - 1


def test_eight_threads_through_shared_retry_objects(rig: Rig) -> None:
    def worker(index: int, books: GroundTruth) -> None:
        rng = random.Random(index)
        for number in range(CALLS_PER_THREAD):
            name, operation = RETRY_FORMS[number % len(RETRY_FORMS)]
            mine = books.operations.setdefault(name, OperationBooks())
            (steps,) = rng.choices(*SCRIPTS)
            script = Script(steps, mine)
            book_operation(mine, script, operation)

    truth = within(WATCHDOG_S, lambda: in_threads(worker))
    operations = sum(sum(o.calls.values()) for o in truth.operations.values())
    attempts = sum(sum(o.attempts.values()) for o in truth.operations.values())
    assert operations == THREADS * CALLS_PER_THREAD
    print(f"\n{operations} operations, {attempts} attempts")
    rig.check(truth)
    assert sum(n for name, n in rig.spans.by_name.items() if not name.endswith(" attempt")) == operations
    assert sum(n for name, n in rig.spans.by_name.items() if name.endswith(" attempt")) == attempts


# -- a thousand asyncio tasks -------------------------------------------------------------------

ASYNC_POLICY: dict[str, Any] = {
    "stop": tenacity.stop_after_attempt(3),
    "wait": tenacity.wait_none(),
    "retry": tenacity.retry_if_exception_type((Boom, pybreaker.CircuitBreakerError)),
}


class AsyncScript:
    """An operation whose attempts call a dependency through the shared breaker."""

    def __init__(self, rng: random.Random, breaker: pybreaker.CircuitBreaker, books: GroundTruth, name: str):
        self.rng = rng
        self.breaker = breaker
        self.breaker_books = books.breakers.setdefault(breaker.name, BreakerBooks())
        self.books = books.operations.setdefault(name, OperationBooks())
        self.attempts = 0
        self.breaker_errors: list[int] = []
        """The attempts that raised CircuitBreakerError: a rejection, or the trip of the breaker (a
        retry of one is a retry_on_rejection finding)."""

    async def step(self) -> str:
        await asyncio.sleep(0)  # let the other tasks in, between attempts and within them
        self.attempts += 1
        (kind,) = self.rng.choices(["ok", "boom"], [70, 30])
        try:
            result = through_breaker(self.breaker, 0, kind, self.breaker_books)
        except Exception as exc:
            self.books.attempts["failure"] += 1
            if isinstance(exc, pybreaker.CircuitBreakerError):
                self.breaker_errors.append(self.attempts)
            raise
        self.books.attempts["success"] += 1
        return result


@tenacity.retry(**ASYNC_POLICY)
async def fetch(script: AsyncScript) -> str:
    return await script.step()


async def fetch_in_a_loop(script: AsyncScript) -> str:
    async for attempt in tenacity.AsyncRetrying(**ASYNC_POLICY):
        with attempt:
            return await script.step()
    raise AssertionError("unreachable: tenacity returns or raises")


ASYNC_FORMS = [
    (f"{__name__}.fetch", fetch),
    (site(fetch_in_a_loop, "async for attempt in"), fetch_in_a_loop),
]


def test_a_thousand_tasks_through_retried_coroutines_and_one_breaker(rig: Rig) -> None:
    transitions = BreakerBooks()
    breaker = shared_breaker("async", transitions)
    truth = GroundTruth(seed=0)  # one thread: the tasks share the books

    async def task(index: int) -> None:
        rng = random.Random(index)
        for number in range(OPERATIONS_PER_TASK):
            name, operation = ASYNC_FORMS[(index + number) % len(ASYNC_FORMS)]
            script = AsyncScript(rng, breaker, truth, name)
            try:
                await operation(script)
            except tenacity.RetryError:
                succeeded = False
            else:
                succeeded = True
            retried = "with_retry" if script.attempts > 1 else "without_retry"
            script.books.calls[f"{'success' if succeeded else 'failed'}_{retried}"] += 1
            script.books.sleeps += script.attempts - 1
            for attempt in script.breaker_errors:
                if attempt < script.attempts:  # tenacity retried it
                    truth.found(c.Finding.RETRY_ON_REJECTION.value, name)

    async def main() -> None:
        await asyncio.gather(*(task(i) for i in range(TASKS)))

    within(WATCHDOG_S, lambda: asyncio.run(main()))
    truth.breakers["async"].transitions = transitions.transitions
    truth.breakers["async"].final_state = transitions.final_state
    calls = truth.breakers["async"].calls
    print(f"\nbreaker calls: {dict(calls)}; transitions: {dict(transitions.transitions)}")
    assert sum(sum(o.calls.values()) for o in truth.operations.values()) == TASKS * OPERATIONS_PER_TASK
    assert transitions.transitions["closed->open"] > 0, "trips"
    assert transitions.transitions["half_open->closed"] > 0, "and recoveries"
    rig.check(truth)
