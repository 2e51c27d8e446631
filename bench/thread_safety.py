"""pybreaker's ``test_fail_max_thread_safety`` as a benchmark: bare, instrumented, and the SDK's floor.

The test (pybreaker 1.4.1, ``CircuitBreakerThreadsTestCase``): a breaker with ``fail_max=3000`` and
``reset_timeout=1``, a listener whose ``before_call`` sleeps 50 µs, and 3 threads that make 2,000
failing calls each. pybreaker holds the breaker's lock for the whole call, so the calls run one at a
time: 3,000 failures (each with the listener's sleep) open the breaker, and the 3,000 calls left are
rejections. Each round runs it once in each variant, in a new random order:

- ``bare``: uninstrumented;
- ``instr``: instrumented (full mode: every call a span, with the SDK's default sampler);
- ``prim``: uninstrumented, each call wrapped in the OpenTelemetry calls the instrumentation makes
  for it, made directly (a failure: span, exception event, status, counter, duration; a rejection:
  one span with all its attributes, counter, duration): what the SDK alone costs here.

The SDK is set up as the upstream suites' plugin sets it (a simple span processor, an exporter that
counts and keeps nothing), or with ``--batch`` as ``opentelemetry-instrument`` does (a batch span
processor). Prints the medians and each variant over ``bare``.

    .venv/bin/python bench/thread_safety.py [--rounds 7] [--batch]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import pybreaker
from opentelemetry import context, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_resilience import contract as c
from otel_resilience._kit.exceptions import record_exception
from otel_resilience._kit.instruments import create_instrument
from otel_resilience._kit.recording import NO_EXEMPLAR, exemplar_context
from otel_resilience.pybreaker import PyBreakerInstrumentor

if TYPE_CHECKING:
    from collections.abc import Sequence

THREADS, CALLS_PER_THREAD, FAIL_MAX = 3, 2000, 3000
VARIANTS = ("bare", "instr", "prim")


class SpanCount(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


class SleepListener(pybreaker.CircuitBreakerListener):
    def before_call(self, cb: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.00005)


class Primitives:
    """The OpenTelemetry calls of one instrumented call, made directly around an uninstrumented one."""

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        self.tracer = tracer_provider.get_tracer("bench.primitives")
        meter = meter_provider.get_meter("bench.primitives")
        self.calls = create_instrument(meter, c.BREAKER_CALLS)
        self.duration = create_instrument(meter, c.BREAKER_CALL_DURATION)
        self.error = Status(StatusCode.ERROR)
        self.started = {c.BREAKER_NAME: "bench", c.BREAKER_STATE: "closed"}
        self.failed = {**self.started, c.OUTCOME: "failure", c.ERROR_TYPE: "Exception"}
        self.rejected = {
            c.BREAKER_NAME: "bench",
            c.BREAKER_STATE: "open",
            c.OUTCOME: "rejected",
            c.ERROR_TYPE: "pybreaker.CircuitBreakerError",
        }

    def call(self, breaker: pybreaker.CircuitBreaker, function: Callable[[], None]) -> None:
        began = time.perf_counter()
        if breaker._state.name == pybreaker.STATE_OPEN:
            try:
                function()
            except pybreaker.CircuitBreakerError:
                span = self.tracer.start_span("bench", kind=SpanKind.INTERNAL, attributes=self.rejected)
                span.set_status(self.error)
                self.calls.add(1, self.rejected)
                self.duration.record(time.perf_counter() - began, self.rejected, NO_EXEMPLAR)
                span.end()
                raise
        span = self.tracer.start_span("bench", kind=SpanKind.INTERNAL, attributes=self.started)
        token = context.attach(trace.set_span_in_context(span))
        try:
            function()
        except Exception as exc:
            self.calls.add(1, self.failed)
            self.duration.record(time.perf_counter() - began, self.failed, exemplar_context(span))
            span.set_attributes(self.failed)
            record_exception(span, exc, messages=True)
            span.set_status(self.error)
            span.end()
            raise
        finally:
            context.detach(token)


def run_test(call: Callable[[pybreaker.CircuitBreaker, Callable[[], None]], None] | None) -> float:
    """pybreaker's test, once: its duration in seconds (``call``: how each call is made)."""
    breaker = pybreaker.CircuitBreaker(fail_max=FAIL_MAX, reset_timeout=1)

    @breaker
    def err() -> None:
        raise Exception  # the test's own

    def trigger_error() -> None:
        for _ in range(CALLS_PER_THREAD):
            try:
                if call is None:
                    err()
                else:
                    call(breaker, err)
            except Exception:  # the test's own
                pass

    breaker.add_listener(SleepListener())
    threads = [threading.Thread(target=trigger_error) for _ in range(THREADS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if breaker.fail_counter != breaker.fail_max:
        raise SystemExit(f"the test's own assertion failed: {breaker.fail_counter} failures counted")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the three variants (default 7)")
    parser.add_argument(
        "--batch", action="store_true", help="a batch span processor, as opentelemetry-instrument"
    )
    options = parser.parse_args(argv)
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    # Each round trips a breaker: its WARNING log line would interleave with the rounds' lines.
    logging.getLogger("otel_resilience").setLevel(logging.ERROR)
    exported = SpanCount()
    tracer_provider = TracerProvider()
    processor = BatchSpanProcessor(exported) if options.batch else SimpleSpanProcessor(exported)
    tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    primitives = Primitives(tracer_provider, meter_provider)
    instrumentor = PyBreakerInstrumentor()
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for round_number in range(1, options.rounds + 1):
        order = list(VARIANTS)
        random.shuffle(order)
        for variant in order:
            if variant == "instr":
                instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            times[variant].append(run_test(primitives.call if variant == "prim" else None))
            if variant == "instr":
                instrumentor.uninstrument()
        print(
            f"round {round_number}/{options.rounds}: "
            + ", ".join(f"{v} {times[v][-1]:.3f} s" for v in VARIANTS)
        )
    tracer_provider.force_flush()
    bare = statistics.median(times["bare"])
    processor_name = "batch" if options.batch else "simple"
    print(f"\nmedians ({processor_name} span processor, {exported.exported:,} spans exported):")
    for variant in VARIANTS:
        median = statistics.median(times[variant])
        print(f"  {variant:5s} {median:.3f} s  {median / bare:.2f} x bare")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
