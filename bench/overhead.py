"""Overhead benchmark: what the instrumentation costs per call, against the bare call, in one run.

    .venv/bin/python bench/overhead.py [--quick] [--modes full metrics ...] [--json bench/results.json]
    .venv/bin/python bench/overhead.py --profile full "pybreaker failure"

Each mode runs in a fresh child process (the OpenTelemetry globals can be set only once):

- ``full``: SDK tracing (default sampler, batch span processor, exporter that drops) and metrics;
- ``metrics``: SDK metrics, ``metrics_only=True``;
- ``sampled``: as ``full``, with the 1 % parent-based sampler production services use, the calls made
  in a request that was sampled out upstream (a remote parent whose trace flags say "not sampled"):
  what 99 % of a service's calls cost;
- ``sampled-root``: the same sampler, but every call is a trace of its own (no parent): the sampler
  decides for each call, and 1 % of them are recorded in full. Information, no target;
- ``none``: no SDK configured (the API's no-op globals).

Scenarios: pybreaker's success, failure (the function raises) and rejection (the breaker is open);
a pybreaker breaker on an ``async def`` (success and failure: pybreaker hands back the coroutine,
the instrumentation follows it to its end); aiobreaker's ``call_async`` (success, failure,
rejection); tenacity and ``AsyncRetrying`` at the first try and after 3 attempts (two failed). The
async scenarios run on one event loop, created once.

For every scenario, four variants run interleaved, in a new random order in every round:

- ``bare``: not instrumented;
- ``pass``: plain wrapt wrappers on the same patch points (``PATCH_POINTS``) that only call through
  (what wrapt costs);
- ``instr``: instrumented;
- ``prim``: the OpenTelemetry calls the instrumentation makes for one call, made directly. The async
  pybreaker and the aiobreaker rows reuse pybreaker's primitives (the same instruments, spans and
  attribute sets, but pybreaker's exceptions and ``error.type``): the closest existing primitive.

The report, in this order:

1. what a user pays (the README's table): per scenario, the median ``bare`` time and, per mode,
   ``added = instr - bare`` per call with ``instr/bare`` (each mode against its own ``bare``);
2. per mode and scenario (medians over the rounds, µs per call): ``bare``, ``pass``, ``instr``,
   ``added``, ``instr/bare``, ``instr/pass``; for diagnosis only, no target: ``prim`` and
   ``glue = (instr - bare) / prim`` (1.0: our code and wrapt add nothing to the OpenTelemetry calls);
3. 8 threads calling one pybreaker breaker (pybreaker holds its lock for the whole call): the
   median calls per second of each variant, per mode, and instrumented throughput relative to bare,
   beside the same ratio at one thread (``bare / instr`` of the 'pybreaker success' row); no target;
4. the targets, each with its measured figure and ok or MISSED;
5. information: the failure-path ratios of the targets, in ``metrics`` and ``sampled``.

Targets:

- ``full``: a rejected breaker call costs at most 1.0 x a successful one, a failed breaker call at
  most 1.5 x (the instrumented per-call costs, ``instr``, of the same breaker's rows);
- ``full``: a failed tenacity attempt costs at most 1.5 x a successful one. Defined from the rows:
  the cost added per failed attempt is ``(added('3 attempts') - added('first try')) / 2`` (the two
  rows differ by two failed attempts, each with its backoff); the successful one is
  ``added('first try')``, an operation with its one successful attempt. The operation's own cost
  is in that denominator (no scenario can separate it from its attempt), so this ratio is lower
  than a failed attempt against a successful attempt alone would be. The same for
  ``AsyncRetrying``. (A difference of two rows: noisier than the rows themselves.)
- ``sampled``: every scenario's ``instr`` is at most 1.2 x its ``instr`` in ``metrics``;
- ``metrics``: a successful pybreaker call adds at most 10 µs;
- ``none``: ``instr`` at most 1.15 x ``pass`` for every scenario, and for tenacity (and
  ``AsyncRetrying``) at most 1.2 x ``bare``.

``--profile MODE SCENARIO`` runs the instrumented variant of one scenario under cProfile in a child
process of that mode and prints the 25 functions of most own time (what is left of each cost).

The children import ``otel_resilience`` from this checkout (its root first on ``PYTHONPATH``), not
from wherever the environment's editable install points; the JSON records which code was measured.
The default run takes about a minute and a half on 2 cores; ``--quick`` (5 rounds, not 21) about 25 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import aiobreaker.circuitbreaker
import aiobreaker.state
import pybreaker
import tenacity
from opentelemetry import context, metrics, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from wrapt import wrap_function_wrapper

import otel_resilience
from otel_resilience import contract as c
from otel_resilience._kit.exceptions import record_exception
from otel_resilience._kit.instruments import create_instrument
from otel_resilience._kit.recording import NO_EXEMPLAR, exemplar_context
from otel_resilience.aiobreaker import AioBreakerInstrumentor
from otel_resilience.pybreaker import PyBreakerInstrumentor
from otel_resilience.tenacity import TenacityInstrumentor

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

MODES = ("full", "metrics", "sampled", "sampled-root", "none")
SAMPLED = ("sampled", "sampled-root")
VARIANTS = ("bare", "pass", "instr", "prim")
INSTRUMENTORS = (PyBreakerInstrumentor, TenacityInstrumentor, AioBreakerInstrumentor)
PATCH_POINTS = (
    (pybreaker.CircuitBreaker, "__init__"),
    (pybreaker.CircuitBreaker, "call"),
    (pybreaker.CircuitBreaker, "is_system_error"),
    (pybreaker.CircuitBreaker, "_create_new_state"),
    (pybreaker.CircuitBreakerState, "before_call"),
    (aiobreaker.circuitbreaker.CircuitBreaker, "__init__"),
    (aiobreaker.circuitbreaker.CircuitBreaker, "is_system_error"),
    (aiobreaker.circuitbreaker.CircuitBreaker, "_create_new_state"),
    (aiobreaker.state.CircuitBreakerBaseState, "call"),
    (aiobreaker.state.CircuitBreakerBaseState, "call_async"),
    (aiobreaker.state.CircuitOpenState, "call"),
    (aiobreaker.state.CircuitOpenState, "call_async"),
    (tenacity.BaseRetrying, "iter"),
    (tenacity.AsyncRetrying, "iter"),
    (tenacity.RetryCallState, "set_result"),
    (tenacity.RetryCallState, "set_exception"),
    (tenacity.AttemptManager, "__enter__"),
    (tenacity.AttemptManager, "__exit__"),
)
SCENARIOS = (
    "pybreaker success",
    "pybreaker failure",
    "pybreaker rejected",
    "pybreaker async def success",
    "pybreaker async def failure",
    "aiobreaker call_async success",
    "aiobreaker call_async failure",
    "aiobreaker call_async rejected",
    "tenacity first try",
    "tenacity 3 attempts",
    "AsyncRetrying first try",
    "AsyncRetrying 3 attempts",
)
BREAKERS = ("pybreaker", "pybreaker async def", "aiobreaker call_async")
"""The breaker rows' prefixes: each has a success and a failure row, and may have a rejected one."""
RETRIES = ("tenacity", "AsyncRetrying")
"""The retry rows' prefixes: each has a first try row and a 3 attempts row."""
THREADS, THREAD_CALLS = 8, 1000
ROOT = Path(__file__).resolve().parent.parent

Row = dict[str, float]
Results = dict[str, dict[str, Row]]


class Flaky(Exception):
    pass


# -- setting each variant up ---------------------------------------------------------------------


def _call_through(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


async def _acall_through(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    return await wrapped(*args, **kwargs)


class Variants:
    """Switches the process between bare, pass-through and instrumented."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.current = "bare"
        self._originals = {(owner, name): vars(owner)[name] for owner, name in PATCH_POINTS}

    def activate(self, variant: str) -> None:
        if variant == self.current or {variant, self.current} <= {"bare", "prim"}:
            self.current = variant
            return
        self._reset()
        if variant == "pass":
            for owner, name in PATCH_POINTS:
                original = self._originals[owner, name]
                wrapper = _acall_through if asyncio.iscoroutinefunction(original) else _call_through
                wrap_function_wrapper(owner, name, wrapper)
        elif variant == "instr":
            for instrumentor in INSTRUMENTORS:
                instrumentor().instrument(metrics_only=self.mode == "metrics")
        self.current = variant

    def _reset(self) -> None:
        for kind in INSTRUMENTORS:
            instrumentor = kind()
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        for (owner, name), original in self._originals.items():
            setattr(owner, name, original)


# -- the OpenTelemetry calls the instrumentation makes, made directly ---------------------------


class Primitives:
    def __init__(self, mode: str) -> None:
        self.spans = mode == "full" or mode in SAMPLED
        self.tracer = trace.get_tracer("bench.primitives")
        meter = metrics.get_meter("bench.primitives")
        self.instruments = {
            spec.name: create_instrument(meter, spec)
            for spec in c.METRICS
            if spec.buckets or spec.kind is c.InstrumentKind.COUNTER
        }
        # The attribute sets the instrumentation records (each attribute costs the SDK per call).
        self.breaker_attributes = {
            "success": {c.BREAKER_NAME: "bench", c.BREAKER_STATE: "closed", c.OUTCOME: "success"},
            "failure": {
                c.BREAKER_NAME: "bench",
                c.BREAKER_STATE: "closed",
                c.OUTCOME: "failure",
                c.ERROR_TYPE: f"{__name__}.{Flaky.__qualname__}",
            },
            "rejected": {
                c.BREAKER_NAME: "bench",
                c.BREAKER_STATE: "open",
                c.OUTCOME: "rejected",
                c.ERROR_TYPE: "pybreaker.CircuitBreakerError",
            },
        }
        # Recording an exception formats its traceback: give the primitives' exceptions the
        # tracebacks the instrumentation sees, raised through the libraries themselves.
        self.failure = _failed_through_pybreaker()
        self.error = _raised_through_tenacity()
        # The attribute sets the instrumentation records with: the SDK's cost grows with their size.
        name = {c.RETRY_NAME: "bench"}
        self.retry_name = name
        self.attempt_attributes = {
            False: {**name, c.OUTCOME: c.AttemptOutcome.SUCCESS.value},
            True: {
                **name,
                c.OUTCOME: c.AttemptOutcome.FAILURE.value,
                c.ERROR_TYPE: f"{__name__}.{Flaky.__qualname__}",
            },
        }
        self.operation_attributes = {
            retried: {**name, c.OUTCOME: outcome.value}
            for retried, outcome in (
                (False, c.RetryOutcome.SUCCESS_WITHOUT_RETRY),
                (True, c.RetryOutcome.SUCCESS_WITH_RETRY),
            )
        }

    def breaker_call(self, outcome: str = "success") -> None:
        attributes = self.breaker_attributes[outcome]
        self.instruments[c.BREAKER_CALLS.name].add(1, attributes)
        duration = self.instruments[c.BREAKER_CALL_DURATION.name]
        if outcome == "rejected":
            # Nothing ran: one span with all its attributes, no exception event, no exemplar.
            if self.spans:
                rejected = self.tracer.start_span("bench", kind=SpanKind.INTERNAL, attributes=attributes)
                rejected.set_status(Status(StatusCode.ERROR))
            duration.record(0.001, attributes, NO_EXEMPLAR)
            if self.spans:
                rejected.end()
            return
        if not self.spans:
            duration.record(0.001, attributes)
            return
        span = self.tracer.start_span(
            "bench", kind=SpanKind.INTERNAL, attributes={c.BREAKER_NAME: "bench", c.BREAKER_STATE: "closed"}
        )
        token = context.attach(trace.set_span_in_context(span))
        context.detach(token)
        duration.record(0.001, attributes, exemplar_context(span))
        span.set_attributes(attributes)
        if outcome != "success":
            record_exception(span, self.failure, messages=True)
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def retry_operation(self, failures: int) -> None:
        instruments = self.instruments
        operation = None
        if self.spans:
            operation = self.tracer.start_span("bench", kind=SpanKind.INTERNAL, attributes=self.retry_name)
            parent = trace.set_span_in_context(operation)
        for attempt in range(failures + 1):
            failed = attempt < failures
            attributes = self.attempt_attributes[failed]
            if self.spans:
                span = self.tracer.start_span(
                    "bench attempt",
                    parent,
                    SpanKind.INTERNAL,
                    attributes={c.RETRY_NAME: "bench", c.RETRY_ATTEMPT: attempt},
                )
                token = context.attach(trace.set_span_in_context(span))
                context.detach(token)
            instruments[c.RETRY_ATTEMPTS_METRIC.name].add(1, attributes)
            instruments[c.RETRY_ATTEMPT_DURATION.name].record(0.001, attributes)
            if failed:
                instruments[c.RETRY_BACKOFF_DURATION.name].record(0.0, self.retry_name)
            if self.spans:
                span.set_attributes(attributes)
                if failed:
                    record_exception(span, self.error, messages=True)
                    span.set_status(Status(StatusCode.ERROR))
                    span.add_event(c.BACKOFF_EVENT, {c.RETRY_BACKOFF: 0.0})
                span.end()
        attributes = self.operation_attributes[failures > 0]
        instruments[c.RETRY_CALLS.name].add(1, attributes)
        instruments[c.RETRY_CALL_DURATION.name].record(0.001, attributes)
        instruments[c.RETRY_CALL_ATTEMPTS.name].record(failures + 1, attributes)
        if operation is not None:
            operation.set_attributes(attributes)
            operation.set_attribute(c.RETRY_ATTEMPTS, failures + 1)
            operation.end()


def _no_sleep(seconds: float) -> None:
    return None


async def _no_sleep_async(seconds: float) -> None:
    return None


def _failed_through_pybreaker() -> BaseException:
    def fail() -> None:
        raise Flaky("down")

    try:
        pybreaker.CircuitBreaker(fail_max=10**9).call(fail)
    except Flaky as exc:
        return exc
    raise AssertionError("fail() raises")


def _raised_through_tenacity() -> BaseException:
    """A failed attempt's exception as tenacity caught it: what the instrumentation records.

    (Re-raised out of tenacity, by ``reraise=True``, its traceback would hold tenacity's frames
    too, and formatting it would cost three times as much.)
    """

    def fail() -> None:
        raise Flaky("again")

    def caught(retry_state: tenacity.RetryCallState) -> BaseException | None:
        return None if retry_state.outcome is None else retry_state.outcome.exception()

    error = tenacity.Retrying(stop=tenacity.stop_after_attempt(1), retry_error_callback=caught)(fail)
    if not isinstance(error, Flaky):
        raise AssertionError("fail() raises")
    return error


# -- scenarios: run n calls of the scenario, run n primitive blocks ------------------------------


class Scenario(NamedTuple):
    run: Callable[[int], None]
    primitive: Callable[[int], None]
    calls: int


def scenarios(primitives: Primitives) -> dict[str, Scenario]:
    loop = asyncio.new_event_loop()
    healthy = pybreaker.CircuitBreaker(name="bench")
    failing_breaker = pybreaker.CircuitBreaker(name="bench-failing", fail_max=10**9)
    tripped = pybreaker.CircuitBreaker(name="bench-open", reset_timeout=1e9)
    tripped.open()
    async_breaker = pybreaker.CircuitBreaker(name="bench-async", fail_max=10**9)
    aio_healthy = aiobreaker.circuitbreaker.CircuitBreaker(name="bench-aio", fail_max=10**9)
    aio_tripped = aiobreaker.circuitbreaker.CircuitBreaker(
        name="bench-aio-open", timeout_duration=datetime.timedelta(days=3650)
    )
    aio_tripped.open()  # type: ignore[no-untyped-call]  # aiobreaker 1.2: open() is unannotated

    def nothing() -> None:
        return None

    def failing() -> None:
        raise Flaky("down")

    async def nothing_async() -> None:
        return None

    async def failing_async() -> None:
        raise Flaky("down")

    def breaker_success(n: int) -> None:
        call = healthy.call
        for _ in range(n):
            call(nothing)

    def breaker_failure(n: int) -> None:
        call = failing_breaker.call
        for _ in range(n):
            with contextlib.suppress(Flaky):
                call(failing)

    def breaker_rejected(n: int) -> None:
        for _ in range(n):
            with contextlib.suppress(pybreaker.CircuitBreakerError):
                tripped.call(nothing)

    # A breaker on an async def (the decorator calls breaker.call, which hands back the coroutine).
    guarded_success = async_breaker(nothing_async)
    guarded_failure = async_breaker(failing_async)

    def on_loop(step: Callable[[], Any], *expected: type[BaseException]) -> Callable[[int], None]:
        async def calls(n: int) -> None:
            for _ in range(n):
                with contextlib.suppress(*expected):
                    await step()

        def run(n: int) -> None:
            loop.run_until_complete(calls(n))

        return run

    # wait_none() still calls sleep(0), a system call whose time varies with the machine's load:
    # the benchmark measures overhead, not the scheduler.
    @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none(), sleep=_no_sleep)
    def first_try() -> None:
        return None

    state = {"calls": 0}

    @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none(), sleep=_no_sleep)
    def third_try() -> None:
        state["calls"] += 1
        if state["calls"] % 3:
            raise Flaky("again")

    @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none(), sleep=_no_sleep_async)
    async def first_try_async() -> None:
        return None

    @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none(), sleep=_no_sleep_async)
    async def third_try_async() -> None:
        state["calls"] += 1
        if state["calls"] % 3:
            raise Flaky("again")

    def retry_first_try(n: int) -> None:
        for _ in range(n):
            first_try()

    def retry_three_attempts(n: int) -> None:
        state["calls"] = 0
        for _ in range(n):
            third_try()

    async_three = on_loop(third_try_async)

    def async_three_attempts(n: int) -> None:
        state["calls"] = 0
        async_three(n)

    def repeat(block: Callable[[], None]) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                block()

        return run

    breaker_success_prim = repeat(primitives.breaker_call)
    breaker_failure_prim = repeat(lambda: primitives.breaker_call("failure"))
    breaker_rejected_prim = repeat(lambda: primitives.breaker_call("rejected"))
    first_try_prim = repeat(lambda: primitives.retry_operation(0))
    three_attempts_prim = repeat(lambda: primitives.retry_operation(2))
    built = {
        "pybreaker success": Scenario(breaker_success, breaker_success_prim, 2000),
        "pybreaker failure": Scenario(breaker_failure, breaker_failure_prim, 1000),
        "pybreaker rejected": Scenario(breaker_rejected, breaker_rejected_prim, 1000),
        "pybreaker async def success": Scenario(on_loop(guarded_success), breaker_success_prim, 1000),
        "pybreaker async def failure": Scenario(on_loop(guarded_failure, Flaky), breaker_failure_prim, 1000),
        "aiobreaker call_async success": Scenario(
            on_loop(lambda: aio_healthy.call_async(nothing_async)), breaker_success_prim, 1000
        ),
        "aiobreaker call_async failure": Scenario(
            on_loop(lambda: aio_healthy.call_async(failing_async), Flaky), breaker_failure_prim, 1000
        ),
        "aiobreaker call_async rejected": Scenario(
            on_loop(lambda: aio_tripped.call_async(nothing_async), aiobreaker.state.CircuitBreakerError),
            breaker_rejected_prim,
            1000,
        ),
        "tenacity first try": Scenario(retry_first_try, first_try_prim, 500),
        "tenacity 3 attempts": Scenario(retry_three_attempts, three_attempts_prim, 200),
        "AsyncRetrying first try": Scenario(on_loop(first_try_async), first_try_prim, 500),
        "AsyncRetrying 3 attempts": Scenario(async_three_attempts, three_attempts_prim, 200),
    }
    if tuple(built) != SCENARIOS:
        raise AssertionError("SCENARIOS lists the scenarios, in order")
    return built


# -- 8 threads through one breaker -----------------------------------------------------------------


def _nothing() -> None:
    return None


def throughput(breaker: pybreaker.CircuitBreaker, threads: int, calls: int) -> float:
    """Calls per second of ``threads`` threads making ``calls`` calls each through ``breaker``."""
    start = threading.Barrier(threads + 1)

    def work() -> None:
        call = breaker.call
        start.wait()
        for _ in range(calls):
            call(_nothing)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * calls / (time.perf_counter() - began)


def measure_threads(variants: Variants, rounds: int) -> Row:
    breaker = pybreaker.CircuitBreaker(name="bench-threads")
    samples: dict[str, list[float]] = {"bare": [], "pass": [], "instr": []}
    for variant in samples:  # warm-up
        variants.activate(variant)
        throughput(breaker, THREADS, THREAD_CALLS // 10)
    for _ in range(rounds):
        for variant in random.sample(list(samples), len(samples)):
            variants.activate(variant)
            samples[variant].append(throughput(breaker, THREADS, THREAD_CALLS))
    variants.activate("bare")
    row = {variant: statistics.median(values) for variant, values in samples.items()}
    row["instr/bare"] = row["instr"] / row["bare"]
    return row


# -- one mode, in a child process -----------------------------------------------------------------


def configure(mode: str) -> None:
    if mode == "none":
        return
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    if mode == "full" or mode in SAMPLED:
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        sampler = ParentBased(TraceIdRatioBased(0.01)) if mode in SAMPLED else None
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=1 << 16))
        trace.set_tracer_provider(provider)
    if mode == "sampled":
        # Every call of this process runs in a request that the service upstream did not sample
        # (``traceparent`` flags 00). Tasks copy this context; threads start without it.
        upstream = SpanContext(0x5A3, 0x5A4, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
        context.attach(trace.set_span_in_context(NonRecordingSpan(upstream)))


def measure_mode(mode: str, rounds: int) -> dict[str, Any]:
    configure(mode)
    primitives = Primitives(mode)
    variants = Variants(mode)
    results: dict[str, Row] = {}
    for name, (run, primitive, n) in scenarios(primitives).items():
        samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for variant in ("bare", "pass", "instr"):  # warm-up
            variants.activate(variant)
            run(n // 10)
        for _ in range(rounds):
            order = list(VARIANTS)
            random.shuffle(order)
            for variant in order:
                variants.activate(variant)
                block = primitive if variant == "prim" else run
                began = time.perf_counter_ns()
                block(n)
                samples[variant].append((time.perf_counter_ns() - began) / n)
        variants.activate("bare")
        row = {v: statistics.median(s) for v, s in samples.items()}
        row["added"] = row["instr"] - row["bare"]
        row["instr/bare"] = row["instr"] / row["bare"]
        row["instr/pass"] = row["instr"] / row["pass"]
        row["glue"] = row["added"] / row["prim"]
        results[name] = row
    return {
        "code": str(Path(otel_resilience.__file__).parent),
        "results": results,
        "threads": measure_threads(variants, rounds),
    }


def profile_scenario(mode: str, scenario: str, rounds: int) -> None:
    """The instrumented variant of one scenario under cProfile: the 25 functions of most own time."""
    configure(mode)
    variants = Variants(mode)
    run, _, n = scenarios(Primitives(mode))[scenario]
    variants.activate("instr")
    run(n // 10)
    calls = n * rounds
    profiler = cProfile.Profile()
    profiler.enable()
    run(calls)
    profiler.disable()
    variants.activate("bare")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(25)
    print(f"mode {mode!r}, scenario {scenario!r}, instrumented: {calls} calls under cProfile")
    print(f"(cProfile's own cost inflates every time; read the shares; per call: divide by {calls})")
    print(out.getvalue().rstrip())


# -- the report -----------------------------------------------------------------------------------


class Check(NamedTuple):
    mode: str
    text: str
    value: float
    limit: float | None  # None: information, no target
    unit: str = ""

    @property
    def ok(self) -> bool:
        return self.limit is None or self.value <= self.limit

    def line(self) -> str:
        if self.limit is None:
            return f"- {self.mode}: {self.text}"
        verdict = "ok" if self.ok else "MISSED"
        return f"- {self.mode}: {self.text}; target <= {self.limit}{self.unit}: {verdict}"


def us(nanoseconds: float) -> str:
    return f"{nanoseconds / 1000:.2f}"


def summary_table(results: Results) -> list[str]:
    """What a user pays: per scenario and mode, the time added per call and instr/bare (the README's)."""
    modes = list(results)
    names = [name for name in SCENARIOS if any(name in rows for rows in results.values())]
    lines = [
        "Added per call: instr - bare (instr/bare), each mode against its own bare ('bare µs': median):",
        "",
        "| scenario | bare µs | " + " | ".join(modes) + " |",
        "|" + "---|" * (len(modes) + 2),
    ]
    for name in names:
        rows = [results[mode].get(name) for mode in modes]
        bare = statistics.median(row["bare"] for row in rows if row is not None)
        cells = [f"+{us(row['added'])} µs ({row['instr/bare']:.2f}x)" if row else "-" for row in rows]
        lines.append(f"| {name} | {us(bare)} | " + " | ".join(cells) + " |")
    return lines


def table(results: Results) -> list[str]:
    columns = (
        *("mode", "scenario", "bare µs", "pass µs", "instr µs", "added µs", "instr/bare", "instr/pass"),
        *("prim µs (info)", "glue (info)"),
    )
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for mode, rows in results.items():
        for scenario, row in rows.items():
            times = (us(row[key]) for key in ("bare", "pass", "instr", "added"))
            ratios = (f"{row['instr/bare']:.2f}", f"{row['instr/pass']:.2f}")
            cells = (mode, scenario, *times, *ratios, us(row["prim"]), f"{row['glue']:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def threads_table(threads: dict[str, Row], results: Results) -> list[str]:
    """The threads' throughput; beside it, for reference, one thread's (the 'pybreaker success' row)."""
    lines = [
        f"{THREADS} threads calling one pybreaker breaker ({THREAD_CALLS} calls each, median calls/s; "
        "no target; at 1 thread: bare µs / instr µs of the 'pybreaker success' row):",
        "",
        "| mode | bare calls/s | pass calls/s | instr calls/s | instr/bare | instr/bare at 1 thread |",
        "|---|---|---|---|---|---|",
    ]
    for mode, row in threads.items():
        single = results.get(mode, {}).get("pybreaker success")
        reference = f"{single['bare'] / single['instr']:.3f}" if single else "-"
        lines.append(
            f"| {mode} | {row['bare']:,.0f} | {row['pass']:,.0f} | {row['instr']:,.0f} | "
            f"{row['instr/bare']:.3f} | {reference} |"
        )
    return lines


def failure_path(mode: str, rows: dict[str, Row], *, target: bool) -> list[Check]:
    """Failures come in storms: a rejection may cost what a success costs, a failure 1.5 times that."""
    checks = []
    for breaker in BREAKERS:
        success = rows.get(f"{breaker} success")
        if success is None:
            continue
        for outcome, limit in (("rejected", 1.0), ("failure", 1.5)):
            row = rows.get(f"{breaker} {outcome}")
            if row is not None:
                ratio = row["instr"] / success["instr"]
                text = (
                    f"{breaker} {outcome} costs {ratio:.3f} x a success "
                    f"(instr {us(row['instr'])} / {us(success['instr'])} µs)"
                )
                checks.append(Check(mode, text, ratio, limit if target else None))
    for retry in RETRIES:
        first, three = rows.get(f"{retry} first try"), rows.get(f"{retry} 3 attempts")
        if first is None or three is None:
            continue
        failed = (three["added"] - first["added"]) / 2
        ratio = failed / first["added"]
        text = (
            f"a failed {retry} attempt adds {ratio:.3f} x what a first try adds "
            f"((added 3 attempts - added first try) / 2 = {us(failed)} µs / {us(first['added'])} µs)"
        )
        checks.append(Check(mode, text, ratio, 1.5 if target else None))
    return checks


def checks(results: Results) -> tuple[list[Check], list[Check]]:
    """The targets, and the same failure-path ratios in the other modes as information."""
    targets: list[Check] = []
    information: list[Check] = []
    if "full" in results:
        targets += failure_path("full", results["full"], target=True)
    for mode in ("metrics", *SAMPLED):
        if mode in results:
            information += failure_path(mode, results[mode], target=False)
    metrics_only = results.get("metrics", {})
    for mode, kept in (("sampled", targets), ("sampled-root", information)):
        for scenario, row in results.get(mode, {}).items():
            if scenario in metrics_only:
                ratio = row["instr"] / metrics_only[scenario]["instr"]
                text = (
                    f"{scenario} costs {ratio:.3f} x metrics only "
                    f"(instr {us(row['instr'])} / {us(metrics_only[scenario]['instr'])} µs)"
                )
                kept.append(Check(mode, text, ratio, 1.2 if kept is targets else None))
    success = metrics_only.get("pybreaker success")
    if success is not None:
        text = (
            f"pybreaker success adds {us(success['added'])} µs per call "
            f"(instr {us(success['instr'])} - bare {us(success['bare'])} µs)"
        )
        targets.append(Check("metrics", text, success["added"] / 1000, 10.0, " µs"))
    for scenario, row in results.get("none", {}).items():
        text = f"{scenario} instr = {row['instr/pass']:.3f} x pass"
        targets.append(Check("none", text, row["instr/pass"], 1.15))
        if scenario.startswith(RETRIES):
            text = f"{scenario} instr = {row['instr/bare']:.3f} x bare"
            targets.append(Check("none", text, row["instr/bare"], 1.2))
    return targets, information


def report(results: Results, threads: dict[str, Row]) -> tuple[str, list[Check], list[Check]]:
    targets, information = checks(results)
    missed = sum(not check.ok for check in targets)
    lines = [
        *summary_table(results),
        "",
        "Per mode and scenario (prim and glue: for diagnosis, no target):",
        "",
        *table(results),
        "",
        *threads_table(threads, results),
        "",
        f"Targets ({len(targets) - missed} ok, {missed} MISSED):",
        *(check.line() for check in targets),
    ]
    if information:
        lines += ["", "Information (no target):", *(check.line() for check in information)]
    return "\n".join(lines), targets, information


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 21 (a rough look)")
    parser.add_argument(
        "--json",
        type=Path,
        default=Path(__file__).with_name("results.json"),
        help="where to write the results",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--profile",
        nargs=2,
        metavar=("MODE", "SCENARIO"),
        help=f"profile one scenario's instrumented variant (modes: {', '.join(MODES)}; "
        f"scenarios: {', '.join(repr(s) for s in SCENARIOS)})",
    )
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    rounds = arguments.rounds or (5 if arguments.quick else 21)
    # The children measure this checkout's otel_resilience, whatever the environment has installed
    # (an editable install may point at another work tree).
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path}
    if arguments.child:
        if arguments.child_profile:
            profile_scenario(arguments.child, arguments.child_profile, rounds)
        else:
            print(json.dumps(measure_mode(arguments.child, rounds)))
        return 0
    if arguments.profile:
        mode, scenario = arguments.profile
        if mode not in MODES or scenario not in SCENARIOS:
            parser.error(f"--profile MODE SCENARIO: MODE in {MODES}, SCENARIO in {SCENARIOS}")
        command = [sys.executable, __file__, "--child", mode, "--child-profile", scenario]
        return subprocess.run([*command, "--rounds", str(rounds)], env=env, check=False).returncode

    results: Results = {}
    threads: dict[str, Row] = {}
    code = ""
    for mode in arguments.modes:
        print(f"measuring mode {mode!r} ({rounds} rounds)...", file=sys.stderr, flush=True)
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--rounds", str(rounds)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        measured = json.loads(done.stdout)
        results[mode], threads[mode], code = measured["results"], measured["threads"], measured["code"]
        print(f"  done in {time.monotonic() - began:.0f} s (otel_resilience: {code})", file=sys.stderr)
    text, targets, information = report(results, threads)
    print(text)
    arguments.json.write_text(
        json.dumps(
            {
                "rounds": rounds,
                "python": sys.version.split()[0],
                "code": code,
                "results": results,
                "threads": threads,
                "targets": [{**check._asdict(), "ok": check.ok} for check in targets],
                "information": [check._asdict() for check in information],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {arguments.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
