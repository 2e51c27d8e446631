"""Overhead benchmark: what the instrumentation costs per call, as ratios measured in one process.

    .venv/bin/python bench/overhead.py [--quick] [--json bench/results.json]

Each mode runs in a fresh child process (the OpenTelemetry globals can be set only once):

- ``full``: SDK tracing (batch span processor, exporter that drops) and metrics;
- ``metrics``: SDK metrics, ``metrics_only=True``;
- ``sampled``: as ``full``, with the 1 % parent-based sampler production services use (99 % of the
  calls are sampled out: they must cost within 1.2 x ``metrics``);
- ``none``: no SDK configured (the API's no-op globals).

For every scenario, four variants run interleaved, in a new random order in every round:

- ``bare``: not instrumented;
- ``pass``: plain wrapt wrappers on the same patch points that only call through (what wrapt costs);
- ``instr``: instrumented;
- ``prim``: the OpenTelemetry calls the instrumentation makes for one call, made directly.

Reported per call (medians over the rounds): the four times, ``glue = (instr - bare) / prim`` (1.0
means our code adds nothing to the OpenTelemetry calls it makes), ``instr/pass`` and ``instr/bare``.
Targets: glue <= 1.2 in ``full`` and ``metrics``; in ``none``, instr <= 1.15 x pass, and for
tenacity instr <= 1.2 x bare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pybreaker
import tenacity
from opentelemetry import context, metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from wrapt import wrap_function_wrapper

from otel_resilience import contract as c
from otel_resilience._kit.exceptions import record_exception
from otel_resilience._kit.instruments import create_instrument
from otel_resilience.pybreaker import PyBreakerInstrumentor
from otel_resilience.tenacity import TenacityInstrumentor

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

MODES = ("full", "metrics", "sampled", "none")
VARIANTS = ("bare", "pass", "instr", "prim")
PATCH_POINTS = (
    (pybreaker.CircuitBreaker, "__init__"),
    (pybreaker.CircuitBreaker, "call"),
    (pybreaker.CircuitBreaker, "is_system_error"),
    (pybreaker.CircuitBreaker, "_create_new_state"),
    (pybreaker.CircuitBreakerState, "call"),
    (tenacity.BaseRetrying, "iter"),
    (tenacity.AsyncRetrying, "iter"),
    (tenacity.RetryCallState, "set_result"),
    (tenacity.RetryCallState, "set_exception"),
    (tenacity.AttemptManager, "__enter__"),
    (tenacity.AttemptManager, "__exit__"),
)


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
            for instrumentor in (PyBreakerInstrumentor(), TenacityInstrumentor()):
                instrumentor.instrument(metrics_only=self.mode == "metrics")
        self.current = variant

    def _reset(self) -> None:
        for instrumentor in (PyBreakerInstrumentor(), TenacityInstrumentor()):
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        for (owner, name), original in self._originals.items():
            setattr(owner, name, original)


# -- the OpenTelemetry calls the instrumentation makes, made directly ---------------------------


class Primitives:
    def __init__(self, mode: str) -> None:
        self.spans = mode in ("full", "sampled")
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
        self.rejection = _raised_through_pybreaker()
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
        if self.spans:
            span = self.tracer.start_span(
                "bench", kind=SpanKind.INTERNAL, attributes={c.BREAKER_NAME: "bench"}
            )
            token = context.attach(trace.set_span_in_context(span))
            context.detach(token)
        self.instruments[c.BREAKER_CALLS.name].add(1, attributes)
        self.instruments[c.BREAKER_CALL_DURATION.name].record(0.001, attributes)
        if self.spans:
            span.set_attributes(attributes)
            if outcome != "success":
                error = self.rejection if outcome == "rejected" else self.failure
                record_exception(span, error, messages=True, stack=outcome != "rejected")
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


def _raised_through_pybreaker() -> BaseException:
    tripped = pybreaker.CircuitBreaker(reset_timeout=1e9)
    tripped.open()
    try:
        tripped.call(lambda: None)
    except pybreaker.CircuitBreakerError as exc:
        return exc
    raise AssertionError("the breaker is open")


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


# -- scenarios: (run n calls of the scenario, run n primitive blocks) ---------------------------


def scenarios(primitives: Primitives) -> dict[str, tuple[Callable[[int], None], Callable[[int], None], int]]:
    healthy = pybreaker.CircuitBreaker(name="bench")
    failing_breaker = pybreaker.CircuitBreaker(name="bench-failing", fail_max=10**9)
    tripped = pybreaker.CircuitBreaker(name="bench-open", reset_timeout=1e9)
    tripped.open()

    def nothing() -> None:
        return None

    def breaker_success(n: int) -> None:
        call = healthy.call
        for _ in range(n):
            call(nothing)

    def failing() -> None:
        raise Flaky("down")

    def breaker_failure(n: int) -> None:
        call = failing_breaker.call
        for _ in range(n):
            with contextlib.suppress(Flaky):
                call(failing)

    def breaker_rejected(n: int) -> None:
        for _ in range(n):
            with contextlib.suppress(pybreaker.CircuitBreakerError):
                tripped.call(nothing)

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

    def async_three_attempts(n: int) -> None:
        async def run() -> None:
            for _ in range(n):
                await third_try_async()

        state["calls"] = 0
        asyncio.run(run())

    def repeat(block: Callable[[], None]) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                block()

        return run

    return {
        "pybreaker success": (breaker_success, repeat(primitives.breaker_call), 2000),
        "pybreaker failure": (breaker_failure, repeat(lambda: primitives.breaker_call("failure")), 1000),
        "pybreaker rejected": (breaker_rejected, repeat(lambda: primitives.breaker_call("rejected")), 1000),
        "tenacity first try": (retry_first_try, repeat(lambda: primitives.retry_operation(0)), 500),
        "tenacity 3 attempts": (retry_three_attempts, repeat(lambda: primitives.retry_operation(2)), 200),
        "AsyncRetrying 3 attempts": (
            async_three_attempts,
            repeat(lambda: primitives.retry_operation(2)),
            200,
        ),
    }


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
    if mode in ("full", "sampled"):
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        sampler = ParentBased(TraceIdRatioBased(0.01)) if mode == "sampled" else None
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=1 << 16))
        trace.set_tracer_provider(provider)


def measure_mode(mode: str, rounds: int) -> dict[str, dict[str, float]]:
    configure(mode)
    primitives = Primitives(mode)
    variants = Variants(mode)
    results: dict[str, dict[str, float]] = {}
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
        medians = {v: statistics.median(s) for v, s in samples.items()}
        medians["glue"] = (medians["instr"] - medians["bare"]) / medians["prim"]
        medians["instr/pass"] = medians["instr"] / medians["pass"]
        medians["instr/bare"] = medians["instr"] / medians["bare"]
        results[name] = medians
    return results


# -- the report -----------------------------------------------------------------------------------


def verdict(mode: str, scenario: str, row: dict[str, float]) -> str:
    if mode in ("full", "metrics", "sampled"):
        return "ok" if row["glue"] <= 1.2 else "MISSED glue <= 1.2"
    missed = []
    if row["instr/pass"] > 1.15:
        missed.append("instr <= 1.15 x pass")
    if scenario.startswith(("tenacity", "Async")) and row["instr/bare"] > 1.2:
        missed.append("instr <= 1.2 x bare")
    return "MISSED " + ", ".join(missed) if missed else "ok"


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    columns = (
        "mode",
        "scenario",
        "bare µs",
        "pass µs",
        "instr µs",
        "prim µs",
        "glue",
        "instr/pass",
        "instr/bare",
    )
    lines = ["| " + " | ".join((*columns, "target")) + " |", "|" + "---|" * (len(columns) + 1)]
    for mode, rows in results.items():
        for scenario, row in rows.items():
            lines.append(
                f"| {mode} | {scenario} | {row['bare'] / 1000:.2f} | {row['pass'] / 1000:.2f} | "
                f"{row['instr'] / 1000:.2f} | {row['prim'] / 1000:.2f} | {row['glue']:.2f} | "
                f"{row['instr/pass']:.2f} | {row['instr/bare']:.2f} | {verdict(mode, scenario, row)} |"
            )
    lines += ["", *failure_path_targets(results), *sampled_out_targets(results)]
    return "\n".join(lines)


def sampled_out_targets(results: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """With a 1 % sampler, almost every call is sampled out: it may cost 1.2 times a metrics-only call."""
    sampled, metrics_only = results.get("sampled", {}), results.get("metrics", {})
    lines = []
    for scenario, row in sampled.items():
        if scenario in metrics_only:
            ratio = row["instr"] / metrics_only[scenario]["instr"]
            mark = "ok" if ratio <= 1.2 else "MISSED <= 1.2"
            lines.append(f"- sampled 1 %: {scenario} costs {ratio:.2f} x metrics only ({mark})")
    return lines


def failure_path_targets(results: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Failures come in storms: a rejection may cost what a success costs, a failure 1.5 times that."""
    lines = []
    for mode, rows in results.items():
        success = rows.get("pybreaker success", {}).get("instr")
        if not success or mode == "none":
            continue
        for scenario, limit in (("pybreaker rejected", 1.0), ("pybreaker failure", 1.5)):
            if scenario in rows:
                ratio = rows[scenario]["instr"] / success
                mark = "ok" if ratio <= limit else f"MISSED <= {limit}"
                lines.append(f"- {mode}: {scenario} costs {ratio:.2f} x a success ({mark})")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 21 (a rough look)")
    parser.add_argument(
        "--json",
        type=Path,
        default=Path(__file__).with_name("results.json"),
        help="where to write the results",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    rounds = arguments.rounds or (5 if arguments.quick else 21)
    if arguments.child:
        print(json.dumps(measure_mode(arguments.child, rounds)))
        return 0

    results: dict[str, dict[str, dict[str, float]]] = {}
    for mode in arguments.modes:
        print(f"measuring mode {mode!r} ({rounds} rounds)...", file=sys.stderr, flush=True)
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--rounds", str(rounds)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        results[mode] = json.loads(done.stdout)
        print(f"  done in {time.monotonic() - began:.0f} s", file=sys.stderr)
    report = table(results)
    print(report)
    arguments.json.write_text(
        json.dumps({"rounds": rounds, "python": sys.version.split()[0], "results": results}, indent=2) + "\n"
    )
    print(f"\nwritten to {arguments.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
