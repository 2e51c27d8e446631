"""Collector outage: the application's call latency with the collector down, against the collector up.

    scripts/stack up    # the collector on 127.0.0.1:4317
    .venv/bin/python bench/collector_outage.py [--rounds 10] [--calls 1000] [--rate 200] [--json FILE]

The demo's workload (its three dependencies, breakers and retry policies; their simulated latencies
and backoff waits set to zero unless ``--demo-latency``, so that what is timed is the application's
own code, ours and the SDK's) runs instrumented, the way ``opentelemetry-instrument`` sets the SDK up:
a tracer provider with a ``BatchSpanProcessor`` and a meter provider with a
``PeriodicExportingMetricReader`` (every second here), exporting over OTLP/gRPC

- ``up``: to the running collector;
- ``down``: to a closed port on 127.0.0.1 (what a killed collector leaves: connection refused).

Each round runs both, in a random order, each in a process of its own (one SDK per process, as in an
application), on the very same sequence of dependency behaviour (the round's seed). A process first
runs ``--warmup`` seconds of the workload untimed, so that the ``down`` one is in its steady state (span
queue full and dropping, exporters backing off), then times ``--calls`` operations
(``Dependency.call``: a retried call through a breaker). It leaves without the SDK's exit flush,
which is not the application's calls. Reported: median and p99 per-call latency over all rounds,
the down/up ratios (target: within 1.1x), and the SDK's log records in the ``down`` processes (its
exporters' retries and failures, the span queue's drops), counted instead of printed.

With the collector down the span queue is full, and the SDK's batch span processor logs a warning
for every span it drops (a record is built each time; a filter discards repeats afterwards): most
of the difference. ``--quiet-queue-full`` measures without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

COLLECTOR = "http://127.0.0.1:4317"
TARGET = 1.1


class CountingHandler(logging.Handler):
    """Counts the SDK's log records by message template, instead of printing each to stderr."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        """Count it."""
        self.counts[f"{record.levelname} {record.name}: {str(record.msg)[:60]}"] += 1


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(endpoint: str) -> bool:
    """Whether something accepts connections at ``http://host:port``."""
    host, port = endpoint.rsplit("/", 1)[-1].split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


# -- one process: one pipeline, timed ----------------------------------------------------------


def instrument(endpoint: str) -> None:
    """The SDK as ``opentelemetry-instrument`` sets it up, exporting to ``endpoint``; both instrumentors."""
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_resilience.pybreaker import PyBreakerInstrumentor
    from otel_resilience.tenacity import TenacityInstrumentor

    resource = Resource.create({"service.name": "collector-outage-bench"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint, insecure=True)))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint, insecure=True), export_interval_millis=1000
    )
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader], resource=resource))
    PyBreakerInstrumentor().instrument()
    TenacityInstrumentor().instrument()


def dependencies(seed: int, demo_latency: bool) -> list[Any]:
    """The demo's three dependencies, seeded; without simulated latency and waits unless asked."""
    import tenacity

    from otel_resilience._demo.simulation import PROFILES, Dependency, GroundTruth

    rng = random.Random(seed)
    truth = GroundTruth(seed)
    made = []
    for demo_profile in PROFILES:
        profile = demo_profile if demo_latency else dataclasses.replace(demo_profile, latency_seconds=(0, 0))
        dependency = Dependency(profile, random.Random(rng.random()), truth, None)
        if not demo_latency:
            dependency.retrying.wait = tenacity.wait_none()
        made.append(dependency)
    return made


def run(seed: int, calls: int, rate: float, demo_latency: bool, timed: bool) -> list[int]:
    """``calls`` operations paced at ``rate`` per second (0: back to back); their latencies in ns."""
    deps = dependencies(seed, demo_latency)
    pick = random.Random(seed)
    interval = 1.0 / rate if rate else 0.0
    latencies = []
    next_call = time.monotonic()
    for number in range(calls):
        dependency = pick.choice(deps)
        began = time.perf_counter_ns()
        dependency.call(number / calls)
        if timed:
            latencies.append(time.perf_counter_ns() - began)
        if interval:
            next_call += interval
            pause = next_call - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    return latencies


def child(arguments: argparse.Namespace) -> int:
    """One pipeline in this process: warm up, time, print the latencies as JSON, leave."""
    sdk_log = CountingHandler()
    sdk_logger = logging.getLogger("opentelemetry")
    sdk_logger.addHandler(sdk_log)
    sdk_logger.propagate = False
    if arguments.quiet_queue_full:
        logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)
    instrument(arguments.endpoint)
    warmup_calls = int(arguments.warmup * (arguments.rate or 1000))
    run(-1 - arguments.seed, warmup_calls, arguments.rate, arguments.demo_latency, timed=False)
    latencies = run(arguments.seed, arguments.calls, arguments.rate, arguments.demo_latency, timed=True)
    print(json.dumps({"latencies_ns": latencies, "sdk_log": sdk_log.counts}), flush=True)
    os._exit(0)  # no exit flush: with the collector down it waits for every export to give up


# -- the rounds and the report ------------------------------------------------------------------


def p99(values: list[int]) -> float:
    """The 99th percentile."""
    return statistics.quantiles(values, n=100)[98]


def main(argv: list[str] | None = None) -> int:
    """Run the rounds, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds, each running both pipelines")
    parser.add_argument("--calls", type=int, default=1000, help="timed operations per pipeline and round")
    parser.add_argument("--rate", type=float, default=200.0, help="operations per second (0: back to back)")
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds of untimed workload first")
    parser.add_argument("--collector", default=COLLECTOR, help="the running collector's OTLP/gRPC endpoint")
    parser.add_argument("--demo-latency", action="store_true", help="keep the demo's simulated latencies")
    parser.add_argument(
        "--quiet-queue-full",
        action="store_true",
        help="raise the level of the SDK's logger of span-queue drops to ERROR, as an application may:"
        " the batch span processor then builds no log record for each span it drops",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)  # in a child: export here
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.endpoint:
        return child(arguments)
    if not listening(arguments.collector):
        print(f"no collector at {arguments.collector}: run `scripts/stack up` first", file=sys.stderr)
        return 2

    endpoints = {"up": arguments.collector, "down": f"http://127.0.0.1:{closed_port()}"}
    latencies: dict[str, list[int]] = {name: [] for name in endpoints}
    sdk_log: dict[str, Counter[str]] = {name: Counter() for name in endpoints}
    passed = [
        f"--{k}={v}"
        for k, v in (("calls", arguments.calls), ("rate", arguments.rate), ("warmup", arguments.warmup))
    ]
    passed += ["--demo-latency"] if arguments.demo_latency else []
    passed += ["--quiet-queue-full"] if arguments.quiet_queue_full else []
    began = time.monotonic()
    for number in range(arguments.rounds):
        order = list(endpoints)
        random.shuffle(order)
        for name in order:
            command = [sys.executable, __file__, f"--endpoint={endpoints[name]}", f"--seed={number}", *passed]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{' '.join(command)} failed:\n{done.stderr}", file=sys.stderr)
                return 1
            result = json.loads(done.stdout)
            latencies[name] += result["latencies_ns"]
            sdk_log[name].update(result["sdk_log"])
        elapsed = time.monotonic() - began
        print(f"round {number + 1}/{arguments.rounds} done ({elapsed:.0f} s)", file=sys.stderr)

    rows: dict[str, Any] = {
        name: {
            "endpoint": endpoints[name],
            "calls": len(values),
            "median_us": statistics.median(values) / 1000,
            "p99_us": p99(values) / 1000,
        }
        for name, values in latencies.items()
    }
    ratios = {q: rows["down"][f"{q}_us"] / rows["up"][f"{q}_us"] for q in ("median", "p99")}
    latency = "the demo's simulated latencies" if arguments.demo_latency else "no simulated latency"
    quiet = "; queue-full warnings off" if arguments.quiet_queue_full else ""
    rounds, calls, rate = arguments.rounds, arguments.calls, arguments.rate
    print(f"\n{rounds} rounds x {calls} timed operations per pipeline, {rate:g}/s, {latency}{quiet}")
    print("\n| collector | endpoint | operations | median µs | p99 µs |\n|---|---|---|---|---|")
    for name, row in rows.items():
        median, tail = row["median_us"], row["p99_us"]
        print(f"| {name} | {row['endpoint']} | {row['calls']} | {median:.1f} | {tail:.1f} |")
    verdicts = {q: "ok" if r <= TARGET else f"MISSED (target {TARGET}x)" for q, r in ratios.items()}
    summary = ", ".join(f"{q} {ratios[q]:.3f} ({verdicts[q]})" for q in ratios)
    print(f"\ndown/up: {summary}")
    print("\nthe SDK's log records in the down processes (logger: message; it drops repeats within 20 s):")
    for message, count in sorted(sdk_log["down"].items()):
        print(f"  {count:6d}  {message}")
    if arguments.json:
        report = {
            "arguments": {**vars(arguments), "json": str(arguments.json)},
            "rows": rows,
            "ratios": ratios,
        }
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
