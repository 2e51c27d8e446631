"""A fault anywhere in our telemetry path never reaches the application, and is logged once.

Every point where the instrumentation calls into OpenTelemetry or into user code is made to raise,
one at a time (``FAULTS``): starting a span, ending it, setting its attributes, adding its events
and status, adding to a counter and observing its total (counters are counted in process),
recording in a histogram, the observable callbacks (pybreaker's state and consecutive-failure
gauges), the user's ``span_hook``, a span processor's ``on_start`` and ``on_end``, a span exporter
and a metric exporter. For every entry form of both libraries (``FORMS``) the application runs the
same scenario (successes, failures, trips, rejections, excluded errors, retries, exhaustion,
``reraise``) 50 times and must see exactly what its uninstrumented twin sees: return values and
exceptions (type, arguments, identity, ``__context__``), and its own current span unchanged after
each call. Each kind of fault is logged on logger ``otel_resilience`` once: after the first runs, 48
more runs log nothing more. Exporters fail inside the SDK, which handles that
itself: nothing of theirs reaches our code or our logger.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

import pybreaker
import pytest
import tenacity
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from wrapt import ObjectProxy

from otel_resilience._kit.deferred import run_deferred
from otel_resilience._kit.instruments import ExactCounter, active_recorder
from otel_resilience.pybreaker import PyBreakerInstrumentor
from otel_resilience.tenacity import TenacityInstrumentor

pytestmark = pytest.mark.faults  # every test here injects faults into our telemetry

RUNS = 50
FAULT_LOGGED = "otel-resilience: telemetry failed"


class TelemetryFault(RuntimeError):
    """What the injected faults raise (the application never raises it)."""


# -- the faults ---------------------------------------------------------------------------------


class FaultySpan(ObjectProxy):  # type: ignore[misc]
    """A real SDK span, except that one kind of call on it raises."""

    def __init__(self, span: Any, point: str) -> None:
        super().__init__(span)
        self._self_point = point

    def _fault(self, point: str) -> None:
        if self._self_point == point:
            raise TelemetryFault(point)

    def end(self, *args: Any, **kwargs: Any) -> None:
        self._fault("span end")
        self.__wrapped__.end(*args, **kwargs)

    def set_attribute(self, *args: Any, **kwargs: Any) -> None:
        self._fault("span attribute")
        self.__wrapped__.set_attribute(*args, **kwargs)

    def set_attributes(self, *args: Any, **kwargs: Any) -> None:
        self._fault("span attribute")
        self.__wrapped__.set_attributes(*args, **kwargs)

    def add_event(self, *args: Any, **kwargs: Any) -> None:
        self._fault("span event")
        self.__wrapped__.add_event(*args, **kwargs)

    def record_exception(self, *args: Any, **kwargs: Any) -> None:
        self._fault("span event")
        self.__wrapped__.record_exception(*args, **kwargs)

    def set_status(self, *args: Any, **kwargs: Any) -> None:
        self._fault("span status")
        self.__wrapped__.set_status(*args, **kwargs)


class FaultyTracer(ObjectProxy):  # type: ignore[misc]
    def __init__(self, tracer: Any, point: str) -> None:
        super().__init__(tracer)
        self._self_point = point

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        if self._self_point == "span start":
            raise TelemetryFault("span start")
        return FaultySpan(self.__wrapped__.start_span(*args, **kwargs), self._self_point)


class FaultyTracerProvider(ObjectProxy):  # type: ignore[misc]
    def __init__(self, provider: TracerProvider, point: str) -> None:
        super().__init__(provider)
        self._self_point = point

    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return FaultyTracer(self.__wrapped__.get_tracer(*args, **kwargs), self._self_point)


class FaultyHistogram(ObjectProxy):  # type: ignore[misc]
    """A real histogram whose ``record`` raises."""

    def record(self, *args: Any, **kwargs: Any) -> None:
        raise TelemetryFault("histogram record")


class FaultyMeter(ObjectProxy):  # type: ignore[misc]
    def __init__(self, meter: Any, point: str) -> None:
        super().__init__(meter)
        self._self_point = point

    def create_histogram(self, *args: Any, **kwargs: Any) -> Any:
        histogram = self.__wrapped__.create_histogram(*args, **kwargs)
        return FaultyHistogram(histogram) if self._self_point == "histogram record" else histogram


class FaultyMeterProvider(ObjectProxy):  # type: ignore[misc]
    def __init__(self, provider: MeterProvider, point: str) -> None:
        super().__init__(provider)
        self._self_point = point

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return FaultyMeter(self.__wrapped__.get_meter(*args, **kwargs), self._self_point)


class RaisingProcessor(SpanProcessor):
    def __init__(self, point: str) -> None:
        self.point = point

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.point == "on_start":
            raise TelemetryFault("span processor on_start")

    def on_end(self, span: Any) -> None:
        if self.point == "on_end":
            raise TelemetryFault("span processor on_end")


class RaisingSpanExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        raise TelemetryFault("span exporter")


class RaisingMetricExporter(MetricExporter):
    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        raise TelemetryFault("metric exporter")

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class UnreadableRegistry(weakref.WeakKeyDictionary):  # type: ignore[type-arg]
    """The breaker registry that the state and consecutive-failure gauges read, failing when read."""

    def keys(self) -> Any:
        raise TelemetryFault("observable callback")


def raising_hook(span: Any, info: Any) -> None:
    raise TelemetryFault("user hook")


@dataclass
class Rig:
    """The SDK the instrumentation is given, with one fault injected into it."""

    tracer_provider: TracerProvider = field(default_factory=TracerProvider)
    metric_readers: list[MetricReader] = field(default_factory=lambda: [InMemoryMetricReader()])
    span_point: str | None = None
    instrument_point: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    after_instrument: list[Callable[[], None]] = field(default_factory=list)
    undo: list[Callable[[], None]] = field(default_factory=list)
    meter_provider: MeterProvider | None = None
    instrumentor: Any = None

    def instrument(self, instrumentor: Any) -> None:
        self.meter_provider = MeterProvider(metric_readers=self.metric_readers)
        tracer_provider: Any = self.tracer_provider
        meter_provider: Any = self.meter_provider
        if self.span_point is not None:
            tracer_provider = FaultyTracerProvider(tracer_provider, self.span_point)
        if self.instrument_point is not None:
            meter_provider = FaultyMeterProvider(meter_provider, self.instrument_point)
        self.instrumentor = instrumentor
        instrumentor.instrument(
            tracer_provider=tracer_provider, meter_provider=meter_provider, **self.options
        )
        for step in self.after_instrument:
            step()

    def add_span_processor(self, processor: SpanProcessor) -> None:
        self.tracer_provider.add_span_processor(processor)

    def collect(self) -> None:
        """What a metric export does: run the observable callbacks, hand the data to the exporters."""
        for reader in self.metric_readers:
            reader.collect()


def break_counters(rig: Rig, method: str) -> None:
    """Counters are counted in process (``ExactCounter``): make its ``add`` or ``totals`` raise."""
    original = vars(ExactCounter)[method]

    def raising(self: ExactCounter, *args: Any, **kwargs: Any) -> Any:
        raise TelemetryFault(f"counter {method}")

    setattr(ExactCounter, method, raising)
    rig.undo.append(lambda: setattr(ExactCounter, method, original))


def break_registry() -> None:
    registry: Any = active_recorder("otel_resilience.pybreaker").breakers
    registry._sites = UnreadableRegistry(registry._sites)


FAULTS: dict[str, Callable[[Rig], None]] = {
    "span start": lambda rig: setattr(rig, "span_point", "span start"),
    "span end": lambda rig: setattr(rig, "span_point", "span end"),
    "span attribute": lambda rig: setattr(rig, "span_point", "span attribute"),
    "span event": lambda rig: setattr(rig, "span_point", "span event"),
    "span status": lambda rig: setattr(rig, "span_point", "span status"),
    "counter add": lambda rig: break_counters(rig, "add"),
    "counter observation": lambda rig: break_counters(rig, "totals"),
    "histogram record": lambda rig: setattr(rig, "instrument_point", "histogram record"),
    "observable callback": lambda rig: rig.after_instrument.append(break_registry),
    "user hook": lambda rig: rig.options.update(span_hook=raising_hook),
    "span processor on_start": lambda rig: rig.add_span_processor(RaisingProcessor("on_start")),
    "span processor on_end": lambda rig: rig.add_span_processor(RaisingProcessor("on_end")),
    "span exporter": lambda rig: rig.add_span_processor(SimpleSpanProcessor(RaisingSpanExporter())),
    "metric exporter": lambda rig: rig.metric_readers.append(
        PeriodicExportingMetricReader(RaisingMetricExporter(), export_interval_millis=3_600_000)
    ),
}  # fmt: skip
HANDLED_BY_THE_SDK = {"span exporter", "metric exporter"}
"""Faults the SDK catches and logs itself: they never reach our code."""
BREAKER_ONLY = {"observable callback"}  # tenacity has no observable instrument


# -- the application ----------------------------------------------------------------------------


class Boom(Exception):
    """A failure the breaker counts."""


class Business(Exception):
    """Excluded from the breaker's failures."""


class Flaky(Exception):
    """Retried."""


class Fatal(Exception):
    """Not retried."""


class Result:
    """A value the application returns (compared by identity)."""


RAISED = {"boom": Boom, "business": Business, "flaky": Flaky, "fatal": Fatal}


class App:
    """One run of a scenario: what the application made, so that twins compare identities."""

    def __init__(self, request_span: Any) -> None:
        self.made: list[object] = []
        self.request_span = request_span

    def behave(self, kind: str) -> Result:
        """Do one piece of work: return a new value, or raise a new exception of the ``kind``."""
        if kind == "ok":
            value = Result()
            self.made.append(value)
            return value
        error = RAISED[kind](f"{kind} number {len(self.made)}")
        self.made.append(error)
        raise error

    def which(self, thing: object) -> int | None:
        """Which of the objects this run made ``thing`` is, by identity."""
        return next((i for i, made in enumerate(self.made) if made is thing), None)

    def observe(self, call: Callable[[], object]) -> tuple[Any, ...]:
        """What the application observes of one call, in terms a twin run can compare."""
        try:
            value = call()
        except Exception as exc:
            return self.raised(exc)
        return self.returned(value)

    def returned(self, value: object) -> tuple[Any, ...]:
        return ("returned", self.which(value), self.own_span_is_current())

    def raised(self, exc: Exception) -> tuple[Any, ...]:
        last = exc.last_attempt.exception() if isinstance(exc, tenacity.RetryError) else None
        return (
            "raised",
            type(exc),
            () if isinstance(exc, tenacity.RetryError) else exc.args,  # RetryError's is a Future
            self.which(exc),
            type(exc.__context__),
            self.which(exc.__context__),
            self.which(last),
            self.own_span_is_current(),
        )

    def own_span_is_current(self) -> bool:
        return trace.get_current_span() is self.request_span


# -- pybreaker's entry forms ---------------------------------------------------------------------

BREAKER_SCENARIO = ["ok", "business", "boom", "boom", "ok", "half-open", "ok"]
"""Success, excluded error, failure, the failure that trips, a rejection, a probe that closes."""


def breaker_scenario(through: Callable[[pybreaker.CircuitBreaker, App, str], Result]) -> Callable[..., Any]:
    def run(app: App) -> list[tuple[Any, ...]]:
        breaker = pybreaker.CircuitBreaker(name="db", fail_max=2, exclude=[Business])
        seen = []
        for step in BREAKER_SCENARIO:
            if step == "half-open":
                breaker.half_open()
                continue
            seen.append(app.observe(lambda step=step: through(breaker, app, step)))
        return seen

    return run


def by_call(breaker: pybreaker.CircuitBreaker, app: App, kind: str) -> Result:
    return breaker.call(app.behave, kind)


def by_decorator(breaker: pybreaker.CircuitBreaker, app: App, kind: str) -> Result:
    return breaker(app.behave)(kind)  # type: ignore[no-any-return]


def by_calling(breaker: pybreaker.CircuitBreaker, app: App, kind: str) -> Result:
    with breaker.calling():
        return app.behave(kind)


def by_generator(breaker: pybreaker.CircuitBreaker, app: App, kind: str) -> Result:
    @breaker
    def rows() -> Iterator[Result]:
        yield app.behave(kind)

    (row,) = rows()
    return row


# -- tenacity's entry forms ----------------------------------------------------------------------

RETRY = {
    "stop": tenacity.stop_after_attempt(3),
    "wait": tenacity.wait_none(),
    "retry": tenacity.retry_if_exception_type(Flaky),
}
RETRY_SCENARIO = [
    (RETRY, ["ok"]),
    (RETRY, ["flaky", "ok"]),
    (RETRY, ["flaky", "flaky", "flaky"]),  # RetryError
    (RETRY, ["fatal"]),  # not retried
    ({**RETRY, "reraise": True}, ["flaky", "flaky", "flaky"]),
]
"""Each operation: the retry policy, and what each attempt does."""


def retry_scenario(operation: Callable[[dict[str, Any], App, Iterator[str]], Result]) -> Callable[..., Any]:
    def run(app: App) -> list[tuple[Any, ...]]:
        return [
            app.observe(lambda policy=policy, steps=steps: operation(policy, app, iter(steps)))
            for policy, steps in RETRY_SCENARIO
        ]

    return run


def async_retry_scenario(operation: Callable[..., Any]) -> Callable[..., Any]:
    def run(app: App) -> list[tuple[Any, ...]]:
        async def main() -> list[tuple[Any, ...]]:
            seen = []
            for policy, steps in RETRY_SCENARIO:
                try:
                    value = await operation(policy, app, iter(steps))
                except Exception as exc:
                    seen.append(app.raised(exc))
                else:
                    seen.append(app.returned(value))
            return seen

        return asyncio.run(main())

    return run


def attempt(app: App, steps: Iterator[str]) -> Result:
    return app.behave(next(steps))


async def async_attempt(app: App, steps: Iterator[str]) -> Result:
    await asyncio.sleep(0)
    return app.behave(next(steps))


def retrying_call(policy: dict[str, Any], app: App, steps: Iterator[str]) -> Result:
    return tenacity.Retrying(**policy)(attempt, app, steps)


def retry_decorator(policy: dict[str, Any], app: App, steps: Iterator[str]) -> Result:
    return tenacity.retry(**policy)(attempt)(app, steps)  # type: ignore[no-any-return]


def for_attempt(policy: dict[str, Any], app: App, steps: Iterator[str]) -> Result:
    for each in tenacity.Retrying(**policy):
        with each:
            return attempt(app, steps)
    raise AssertionError("unreachable: tenacity returns or raises")


async def async_retry_decorator(policy: dict[str, Any], app: App, steps: Iterator[str]) -> Result:
    return await tenacity.retry(**policy)(async_attempt)(app, steps)  # type: ignore[no-any-return]


async def async_for_attempt(policy: dict[str, Any], app: App, steps: Iterator[str]) -> Result:
    async for each in tenacity.AsyncRetrying(**policy):
        with each:
            return await async_attempt(app, steps)
    raise AssertionError("unreachable: tenacity returns or raises")


@dataclass(frozen=True)
class Form:
    name: str
    instrumentor: type
    run: Callable[[App], list[tuple[Any, ...]]]


FORMS = [
    Form("pybreaker call", PyBreakerInstrumentor, breaker_scenario(by_call)),
    Form("pybreaker decorator", PyBreakerInstrumentor, breaker_scenario(by_decorator)),
    Form("pybreaker calling()", PyBreakerInstrumentor, breaker_scenario(by_calling)),
    Form("pybreaker generator", PyBreakerInstrumentor, breaker_scenario(by_generator)),
    Form("tenacity Retrying call", TenacityInstrumentor, retry_scenario(retrying_call)),
    Form("tenacity @retry", TenacityInstrumentor, retry_scenario(retry_decorator)),
    Form("tenacity for attempt", TenacityInstrumentor, retry_scenario(for_attempt)),
    Form("tenacity async @retry", TenacityInstrumentor, async_retry_scenario(async_retry_decorator)),
    Form("tenacity async for attempt", TenacityInstrumentor, async_retry_scenario(async_for_attempt)),
]
CASES = [
    pytest.param(form, point, id=f"{form.name}-{point}")
    for form in FORMS
    for point in FAULTS
    if form.instrumentor is PyBreakerInstrumentor or point not in BREAKER_ONLY
]


# -- the test -----------------------------------------------------------------------------------


class FaultLog(logging.Handler):
    """What our logger and the SDK's log at WARNING and above: (logger, message, exception type).

    It sees each record first and drops its traceback: pytest's log capture keeps every record
    until the test ends, and a traceback keeps every frame of the stack that logged alive,
    tenacity's states among them, whose release is when such operations are recorded.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[tuple[str, str, type[BaseException] | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.seen.append(
            (record.name, message, record.exc_info[0] if record.exc_info else _logged_type(message))
        )
        record.exc_info = None

    def faults(self) -> list[tuple[str, type[BaseException] | None]]:
        """What our path reported."""
        return [
            (m, t) for name, m, t in self.seen if name == "otel_resilience" and m.startswith(FAULT_LOGGED)
        ]


def _logged_type(message: str) -> type[BaseException] | None:
    """The exception our path logged: it logs tracebacks as text, ending with ``module.Class: ...``."""
    last_line = message.rsplit("\n", 1)[-1]
    return TelemetryFault if last_line.startswith(f"{TelemetryFault.__module__}.TelemetryFault") else None


@pytest.fixture
def fault_log() -> Iterator[FaultLog]:
    handler = FaultLog()
    loggers = [logging.getLogger(name) for name in ("otel_resilience", "opentelemetry")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
    yield handler
    for logger, level in zip(loggers, levels):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def rig(fault_log: FaultLog) -> Iterator[Rig]:
    rig = Rig()
    yield rig
    try:
        if rig.instrumentor is not None:
            rig.instrumentor.uninstrument()
        # Operations a fault kept from ending are recorded once tenacity frees their state: here,
        # not in the next test.
        gc.collect()
        run_deferred()
        if rig.meter_provider is not None:
            rig.meter_provider.shutdown()
        rig.tracer_provider.shutdown()
    finally:
        for step in rig.undo:
            step()


def run_as_the_app(form: Form) -> list[tuple[Any, ...]]:
    """One run of the scenario inside the application's own request span."""
    with TracerProvider().get_tracer("app").start_as_current_span("request") as request:
        return form.run(App(request))


@pytest.mark.parametrize(("form", "point"), CASES)
def test_a_fault_never_reaches_the_app_and_is_logged_once(
    form: Form, point: str, rig: Rig, fault_log: FaultLog
) -> None:
    twin = run_as_the_app(form)  # not instrumented
    FAULTS[point](rig)
    rig.instrument(form.instrumentor())
    for run in range(1, RUNS + 1):
        assert run_as_the_app(form) == twin, f"run {run}"
        rig.collect()
        if run == 1:
            # What the first run left to the garbage collector (tenacity states of operations a fault
            # kept from ending) is recorded, and its faults reported, when the second run starts.
            gc.collect()
        elif run == 2:
            after_two_runs = fault_log.faults()
    logged = fault_log.faults()
    sdk_callback_failures = [m for _, m, _ in fault_log.seen if "Callback failed" in m]
    assert sdk_callback_failures == [], "our observable callbacks never raise into the SDK"
    if point in HANDLED_BY_THE_SDK:
        assert logged == [], "the SDK handles its exporters' faults: none reaches our code"
        assert any(exc_type is TelemetryFault for _, _, exc_type in fault_log.seen), "the SDK logs it"
        return
    assert logged, "the fault is reported"
    assert all(exc_type is TelemetryFault for _, exc_type in logged), logged
    assert len({message for message, _ in logged}) == len(logged), f"each kind once: {logged}"
    assert logged == after_two_runs, f"nothing more in runs 3 to {RUNS}"
