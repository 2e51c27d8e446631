"""Options shared by every instrumentor: ``instrument()`` arguments and environment variables.

An invalid value never stops the application: it is replaced by the default, with one warning
that names the setting, the value given and the value used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from otel_resilience._kit.faults import logger

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from otel_resilience._kit.recording import SpanHook

METRICS_ONLY_ENV: Final = "OTEL_PYTHON_RESILIENCE_METRICS_ONLY"
"""``true`` turns spans off; metrics stay on."""
MAX_NAMES_ENV: Final = "OTEL_PYTHON_RESILIENCE_MAX_NAMES"
"""Distinct breaker (and, separately, retry) names reported before new ones become ``_OTHER``."""
DEFAULT_MAX_NAMES: Final = 200
EXCEPTION_MESSAGES_ENV: Final = "OTEL_PYTHON_RESILIENCE_EXCEPTION_MESSAGES"
"""``false`` keeps exception messages (and the tracebacks that end with them) out of spans."""

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})

InfoT = TypeVar("InfoT")


@dataclass(frozen=True)
class Settings(Generic[InfoT]):
    """Resolved options of one instrumentor."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    metrics_only: bool
    max_names: int
    span_hook: SpanHook[InfoT] | None
    exception_messages: bool


def _warn(setting: str, given: object, used: object) -> None:
    logger.warning("otel-resilience: invalid %s=%r; using %r", setting, given, used)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value not in _FALSE:
        _warn(name, raw, default)
        return default
    return False


def _bool_option(kwargs: dict[str, Any], option: str, env: str, default: bool) -> bool:
    value = kwargs.get(option)
    if value is None:
        return _env_bool(env, default)
    if not isinstance(value, bool):
        _warn(option, value, default)
        return default
    return value


def _env_positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        _warn(name, raw, default)
        return default
    return value


def _provider(setting: str, given: Any, required: str) -> Any:
    if given is None or hasattr(given, required):
        return given
    _warn(setting, given, "the global provider")
    return None


def resolve_settings(kwargs: dict[str, Any]) -> Settings[Any]:
    """Settings from ``instrument()`` keyword arguments, falling back to environment variables."""
    max_names = kwargs.get("max_names")
    if max_names is None:
        max_names = _env_positive_int(MAX_NAMES_ENV, DEFAULT_MAX_NAMES)
    elif isinstance(max_names, bool) or not isinstance(max_names, int) or max_names < 1:
        _warn("max_names", max_names, DEFAULT_MAX_NAMES)
        max_names = DEFAULT_MAX_NAMES

    span_hook = kwargs.get("span_hook")
    if span_hook is not None and not callable(span_hook):
        _warn("span_hook", span_hook, None)
        span_hook = None

    return Settings(
        tracer_provider=_provider("tracer_provider", kwargs.get("tracer_provider"), "get_tracer"),
        meter_provider=_provider("meter_provider", kwargs.get("meter_provider"), "get_meter"),
        metrics_only=_bool_option(kwargs, "metrics_only", METRICS_ONLY_ENV, False),
        max_names=max_names,
        span_hook=span_hook,
        exception_messages=_bool_option(kwargs, "exception_messages", EXCEPTION_MESSAGES_ENV, True),
    )
