"""What the backoff and purgatory instrumentations cost per call, instrumented vs bare, in one process.

    .venv/bin/python bench/backoff_purgatory.py [--rounds N] [--no-sdk]

SDK tracing (batch span processor, exporter that drops) and SDK metrics; with ``--no-sdk``, no SDK
at all (the API's no-op globals: what an application that exports nothing pays). Each round times every
scenario bare (not instrumented, functions decorated and factories made while not instrumented)
and instrumented (decorated and made while instrumented), in a random order; the table gives the
medians over the rounds, per call, in microseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from typing import TYPE_CHECKING, Any

import backoff
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from purgatory import SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from otel_resilience.backoff import BackoffInstrumentor
from otel_resilience.purgatory import PurgatoryInstrumentor

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

CALLS = 2000


class Flaky(Exception):
    pass


class Dropping(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def backoff_scenarios() -> dict[str, Callable[[], None]]:
    @backoff.on_exception(backoff.constant, Flaky, interval=0, jitter=None, max_tries=3, logger=None)
    def succeed() -> int:
        return 1

    @backoff.on_exception(backoff.constant, Flaky, interval=0, jitter=None, max_tries=3, logger=None)
    def fail() -> int:
        raise Flaky()

    def failure_path() -> None:
        with contextlib.suppress(Flaky):
            fail()

    return {"backoff success (1 attempt)": succeed, "backoff failure (3 attempts, gives up)": failure_path}


def purgatory_scenarios() -> dict[str, Callable[[], None]]:
    factory = SyncCircuitBreakerFactory(default_threshold=10**9)
    rejecting = SyncCircuitBreakerFactory(default_threshold=1, default_ttl=10**6)

    @factory("ok")
    def succeed() -> int:
        return 1

    @factory("failing")
    def fail() -> int:
        raise Flaky()

    @rejecting("open")
    def open_breaker() -> int:
        raise Flaky()

    def failure_path() -> None:
        with contextlib.suppress(Flaky):
            fail()

    def rejected() -> None:
        with contextlib.suppress(Flaky, OpenedState):
            open_breaker()

    return {
        "purgatory success": succeed,
        "purgatory failure (counted)": failure_path,
        "purgatory rejected": rejected,
    }


def time_per_call(call: Callable[[], None]) -> float:
    for _ in range(50):
        call()
    started = time.perf_counter()
    for _ in range(CALLS):
        call()
    return (time.perf_counter() - started) / CALLS * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--no-sdk", action="store_true")
    options = parser.parse_args(argv)
    rounds = options.rounds
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    providers: dict[str, Any] = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    if options.no_sdk:
        providers = {}
    instrumentors = (BackoffInstrumentor(), PurgatoryInstrumentor())
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        variants = ["bare", "instr"]
        random.shuffle(variants)
        for variant in variants:
            if variant == "instr":
                for instrumentor in instrumentors:
                    instrumentor.instrument(**providers)
            try:
                for name, call in {**backoff_scenarios(), **purgatory_scenarios()}.items():
                    times.setdefault((name, variant), []).append(time_per_call(call))
            finally:
                if variant == "instr":
                    for instrumentor in instrumentors:
                        instrumentor.uninstrument()
    names = list(dict.fromkeys(name for name, _ in times))
    print(f"{'scenario':42} {'bare us':>9} {'instr us':>9} {'added us':>9} {'instr/bare':>10}")
    for name in names:
        bare = statistics.median(times[name, "bare"])
        instr = statistics.median(times[name, "instr"])
        print(f"{name:42} {bare:9.2f} {instr:9.2f} {instr - bare:9.2f} {instr / bare:10.2f}")
    tracer_provider.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
