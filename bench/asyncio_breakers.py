"""What a call through a circuitbreaker or aiobreaker breaker costs, instrumented vs bare (issue 13 rows).

Per library and path (``success``: the function returns; ``failure``: it raises an exception the
breaker counts, with a threshold high enough that the breaker never opens), rounds alternate bare
and instrumented (SDK tracing with a batch processor that drops, and metrics) in a random order; the
medians of the per-call costs are printed in microseconds.

    .venv/bin/python bench/asyncio_breakers.py [--rounds 11] [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import time
from datetime import timedelta
from typing import Any, Callable

import aiobreaker
import circuitbreaker
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_resilience.aiobreaker import AioBreakerInstrumentor
from otel_resilience.circuitbreaker import CircuitBreakerInstrumentor


class Drop(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Boom(Exception):
    pass


def ok() -> int:
    return 1


def fail() -> None:
    raise Boom


async def aok() -> int:
    return 1


async def afail() -> None:
    raise Boom


def cases() -> dict[str, Callable[[int], None]]:
    cb = circuitbreaker.CircuitBreaker(failure_threshold=10**9, name="bench-cb")
    cb_ok, cb_fail, cb_aok = cb(ok), cb(fail), cb(aok)
    ab = aiobreaker.CircuitBreaker(fail_max=10**9, timeout_duration=timedelta(seconds=60), name="bench-ab")
    loop = asyncio.new_event_loop()

    def sync_calls(function: Callable[[], Any]) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                with contextlib.suppress(Boom):
                    function()

        return run

    def async_calls(make: Callable[[], Any]) -> Callable[[int], None]:
        async def many(n: int) -> None:
            for _ in range(n):
                with contextlib.suppress(Boom):
                    await make()

        return lambda n: loop.run_until_complete(many(n))

    return {
        "circuitbreaker sync success": sync_calls(cb_ok),
        "circuitbreaker sync failure": sync_calls(cb_fail),
        "circuitbreaker async success": async_calls(cb_aok),
        "aiobreaker call_async success": async_calls(lambda: ab.call_async(aok)),
        "aiobreaker call_async failure": async_calls(lambda: ab.call_async(afail)),
        "aiobreaker call success": sync_calls(lambda: ab.call(ok)),
        "aiobreaker call failure": sync_calls(lambda: ab.call(fail)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--calls", type=int, default=2000)
    options = parser.parse_args()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=1 << 16))
    providers = {
        "tracer_provider": tracer_provider,
        "meter_provider": MeterProvider(metric_readers=[InMemoryMetricReader()]),
    }
    instrumentors = (CircuitBreakerInstrumentor(), AioBreakerInstrumentor())
    runs = cases()
    costs: dict[tuple[str, str], list[float]] = {}
    for _ in range(options.rounds):
        for variant in random.sample(["bare", "instrumented"], 2):
            for instrumentor in instrumentors:
                if variant == "instrumented":
                    instrumentor.instrument(**providers)
            for name, run in runs.items():
                run(100)  # warm up
                began = time.perf_counter()
                run(options.calls)
                costs.setdefault((name, variant), []).append(
                    (time.perf_counter() - began) / options.calls * 1e6
                )
            for instrumentor in instrumentors:
                if variant == "instrumented":
                    instrumentor.uninstrument()
    print(f"{'case':34} {'bare µs':>8} {'instr. µs':>9} {'added µs':>9}")
    for name in runs:
        bare = statistics.median(costs[name, "bare"])
        instrumented = statistics.median(costs[name, "instrumented"])
        print(f"{name:34} {bare:8.2f} {instrumented:9.2f} {instrumented - bare:9.2f}")


if __name__ == "__main__":
    main()
