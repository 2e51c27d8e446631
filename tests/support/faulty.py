"""What the fault tests put in place of an instrument, a tracer, a span processor or a hook: each raises."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor


class Broken:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"telemetry fault in {name}")

        return fail


class RaisingProcessor(SpanProcessor):
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("processor on_start")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor on_end")


class RaisingInstrument:
    def add(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("counter")

    def record(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("histogram")


def faulty_hook(span: Any, info: Any) -> None:
    raise RuntimeError("hook")


def break_recorder_part(instrumentor_type: type, part: str) -> None:
    """Put ``Broken`` in place of one part of the active recorder of ``instrumentor_type`` (instrumented):
    its ``span_hook``, its ``tracer`` or ``names``, or else the metric instrument ``part`` (a breaker
    recorder's own, a retry recorder's in its ``metrics``)."""
    from otel_resilience._kit.instruments import active_recorder

    recorder: Any = active_recorder(instrumentor_type().scope)
    if part == "span_hook":
        recorder.span_hook = Broken().hook
    elif part in ("tracer", "names"):
        setattr(recorder, part, Broken())
    else:
        setattr(getattr(recorder, "metrics", recorder), part, Broken())
