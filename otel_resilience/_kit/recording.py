"""What every library's telemetry object shares: tracer, meter, span hook, SDK gate, current spans."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Generic, Protocol, TypeVar

from opentelemetry import context, trace
from opentelemetry.metrics import get_meter
from opentelemetry.trace import SpanKind

from otel_resilience._kit.faults import report_fault
from otel_resilience._kit.gate import SdkGate
from otel_resilience.version import __version__

if TYPE_CHECKING:
    from contextvars import ContextVar

    from opentelemetry.context import Context
    from opentelemetry.trace import Span

    from otel_resilience._kit.settings import Settings

InfoT = TypeVar("InfoT")
CallT = TypeVar("CallT")
InfoT_contra = TypeVar("InfoT_contra", contravariant=True)


class SpanHook(Protocol[InfoT_contra]):
    """A ``span_hook``: called with each span of ours, and what it is about, before the span ends.

    ``info`` is a frozen dataclass of the library's (``BreakerCallInfo``, ``RetryCallInfo``). Use
    the hook to add attributes; an exception it raises is logged once and otherwise ignored.
    """

    def __call__(self, span: Span, info: InfoT_contra, /) -> None: ...


class Recorder(Generic[InfoT]):
    """The tracer (None in metrics-only mode), the meter, the span options, and the SDK gate.

    A library's telemetry object subclasses it; one is made per ``instrument()``.
    """

    def __init__(self, settings: Settings[InfoT], scope: str, *, on_open: Callable[[], None]) -> None:
        self.scope = scope
        self.tracer = (
            None if settings.metrics_only else trace.get_tracer(scope, __version__, settings.tracer_provider)
        )
        self.meter = get_meter(scope, __version__, settings.meter_provider)
        self.span_hook: SpanHook[InfoT] | None = settings.span_hook
        self.exception_messages = settings.exception_messages
        self.gate = SdkGate(
            settings.tracer_provider, settings.meter_provider, spans=self.tracer is not None, on_open=on_open
        )

    def start_span(
        self,
        name: str,
        attributes: dict[str, Any],
        *,
        parent: Context | None = None,
        start_time: int | None = None,
    ) -> Span | None:
        """A new INTERNAL span; None in metrics-only mode, under a sampled-out parent, or on a fault.

        A parent that is not sampled means a trace that is not recorded: the SDK's parent-based
        samplers (its default) would drop the span too, after a sampling decision that costs more
        than the call's metrics. Without a span of ours, what runs in the call stays in the parent's
        (sampled-out) trace. A span that cannot start costs the call its span, never its metrics:
        the fault is reported.
        """
        if self.tracer is None:
            return None
        parent_context = trace.get_current_span(parent).get_span_context()
        if parent_context.is_valid and not parent_context.trace_flags.sampled:
            return None
        try:
            return self.tracer.start_span(name, parent, SpanKind.INTERNAL, attributes, start_time=start_time)
        except Exception as fault:
            report_fault(f"{self.scope} span start", fault)
            return None

    def call_hook(self, span: Span, info: Callable[[], InfoT]) -> None:
        """Give the user's ``span_hook`` the span and what ``info()`` builds (only when there is a hook)."""
        if self.span_hook is None:
            return
        try:
            self.span_hook(span, info())
        except Exception as fault:
            report_fault("span_hook", fault)


def exemplar_context(span: Span | None) -> Context | None:
    """The context a duration is recorded in, so that its exemplar names ``span``.

    The SDK's trace-based exemplar filter takes the trace and span of this context: with the span of
    the call or attempt measured, a latency panel leads to that very span. Without one (metrics
    only), the current context: the application's own span.
    """
    return None if span is None else trace.set_span_in_context(span)


NO_EXEMPLAR: Context = trace.set_span_in_context(trace.INVALID_SPAN, context.Context())
"""The context of a measurement that is to carry no exemplar: it holds the invalid span, which no
trace-based exemplar filter samples. (Not an empty context: the SDK takes an empty one, which is
falsy, as no context at all, and measures in the current one.)

A breaker's rejection is measured in microseconds of bookkeeping, not latency worth a trace: its
duration keeps its exemplar slot (and the cost of filling it) for calls that ran.
"""


def make_current(span: Span) -> object:
    """Make ``span`` the current span, so that the application's spans become its children."""
    return context.attach(trace.set_span_in_context(span))


def restore(token: object) -> None:
    """Undo :func:`make_current`, in the context that did it."""
    context.detach(token)  # type: ignore[arg-type]


def run_active(
    active: ContextVar[CallT | None],
    call: CallT,
    span: Span | None,
    finish: Callable[[CallT, BaseException], None],
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run the library's call with ``call`` active and ``span`` current; ``finish(call, exc)`` if it raises.

    ``active`` holding the call lets the library's re-entry into itself be seen as the same call.
    """
    token = active.set(call)
    span_token = None if span is None else make_current(span)
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        finish(call, exc)
        # The exception's traceback keeps this frame until the garbage collector frees the cycle
        # (exception, traceback, frames): let the frame keep nothing of ours. Failures come in
        # storms, and what such cycles hold is what makes the collector run more often.
        del call, span
        raise
    finally:
        if span_token is not None:
            restore(span_token)
        active.reset(token)
        del token, span_token
