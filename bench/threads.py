"""Eight threads calling one pybreaker breaker: throughput instrumented (full SDK) relative to bare.

pybreaker holds the breaker's lock for the whole call, so calls through one breaker are serialised;
what the instrumentation adds inside the call (the span's start, the function's run) is paid under
that lock, what it adds after (recording) is not. Bare and instrumented rounds alternate in a new
random order; the medians of calls per second are printed, and their ratio.

    .venv/bin/python bench/threads.py [--rounds 11] [--calls 2000] [--threads 8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from typing import Any

import pybreaker
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_resilience.pybreaker import PyBreakerInstrumentor


class Drop(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def throughput(breaker: pybreaker.CircuitBreaker, threads: int, calls: int) -> float:
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        for _ in range(calls):
            breaker.call(len, "ok")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * calls / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    options = parser.parse_args()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=1 << 16))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrumentor = PyBreakerInstrumentor()
    breaker = pybreaker.CircuitBreaker(name="bench-threads")
    samples: dict[str, list[float]] = {"bare": [], "instr": []}
    for _ in range(options.rounds):
        for variant in random.sample(list(samples), 2):
            if variant == "instr":
                instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            samples[variant].append(throughput(breaker, options.threads, options.calls))
            if variant == "instr":
                instrumentor.uninstrument()
    bare, instr = (statistics.median(samples[v]) for v in ("bare", "instr"))
    print(
        f"{options.threads} threads, one breaker: bare {bare:,.0f} calls/s, instrumented {instr:,.0f} calls/s"
    )
    print(f"instrumented throughput = {instr / bare:.3f} x bare")


if __name__ == "__main__":
    main()
