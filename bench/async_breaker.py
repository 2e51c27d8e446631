"""What a pybreaker breaker on an ``async def`` costs per call, instrumented vs bare (the issue 10 row).

pybreaker hands back the coroutine; the instrumentation follows it to its end through a proxy
(``otel_resilience._kit.awaitables``) and records the call as ``unguarded``. Each mode (``full``: SDK
tracing with a batch processor that drops, and metrics; ``metrics``: ``metrics_only=True``; ``none``:
no SDK) runs in a fresh process; in every round the bare and instrumented variants run in a new
random order, and the medians of the per-call costs are printed in microseconds.

    .venv/bin/python bench/async_breaker.py [--rounds 21] [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import subprocess
import sys
import time
from typing import Any

MODES = ("full", "metrics", "none")


def configure(mode: str) -> dict[str, Any]:
    if mode == "none":
        return {}
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=1 << 16))
    options: dict[str, Any] = {
        "meter_provider": MeterProvider(metric_readers=[InMemoryMetricReader()]),
        "tracer_provider": tracer_provider,
    }
    if mode == "metrics":
        options["metrics_only"] = True
    return options


def child(mode: str, rounds: int, calls: int) -> dict[str, dict[str, float]]:
    import pybreaker

    from otel_resilience.pybreaker import PyBreakerInstrumentor

    options = configure(mode)
    breaker = pybreaker.CircuitBreaker(name="bench", fail_max=10**9)

    @breaker
    async def succeeds() -> int:
        return 1

    @breaker
    async def fails() -> int:
        raise KeyError("down")

    async def run(guarded: Any) -> float:
        began = time.perf_counter()
        for _ in range(calls):
            with contextlib.suppress(KeyError):
                await guarded()
        return (time.perf_counter() - began) / calls * 1e6

    instrumentor = PyBreakerInstrumentor()
    loop = asyncio.new_event_loop()
    samples: dict[str, dict[str, list[float]]] = {
        scenario: {"bare": [], "instr": []} for scenario in ("success", "failure")
    }
    for _ in range(rounds):
        for variant in random.sample(["bare", "instr"], 2):
            if variant == "instr":
                instrumentor.instrument(**options)
            for scenario, guarded in (("success", succeeds), ("failure", fails)):
                samples[scenario][variant].append(loop.run_until_complete(run(guarded)))
            if variant == "instr":
                instrumentor.uninstrument()
    loop.close()
    return {
        scenario: {variant: statistics.median(values) for variant, values in by_variant.items()}
        for scenario, by_variant in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child, options.rounds, options.calls)))
        return
    print("| mode | scenario | bare µs | instr µs | instr/bare |")
    print("|---|---|---|---|---|")
    for mode in MODES:
        command = [sys.executable, __file__, "--child", mode, "--rounds", str(options.rounds)]
        done = subprocess.run(
            [*command, "--calls", str(options.calls)], capture_output=True, text=True, check=True
        )
        for scenario, row in json.loads(done.stdout.splitlines()[-1]).items():
            ratio = row["instr"] / row["bare"]
            print(
                f"| {mode} | async def, {scenario} | {row['bare']:.2f} | {row['instr']:.2f} | {ratio:.2f} |"
            )


if __name__ == "__main__":
    main()
