"""Options shared by every instrumentor: ``instrument()`` arguments and environment variables.

An invalid value never stops the application: it is replaced by the default, with one warning
that names the setting, the value given and the value used. :data:`OPTIONS` is the one reference:
``docs/options.md`` is printed from it (``python -m otel_resilience._kit.settings``), and so is the
``Args`` section of ``instrument()``'s docstring.
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


@dataclass(frozen=True)
class Option:
    """One option, as users read it."""

    argument: str
    environment: str | None
    default: str
    meaning: str


OPTIONS: Final = (
    Option("tracer_provider", None, "the global provider", "where spans go"),
    Option("meter_provider", None, "the global provider", "where metrics go"),
    Option(
        "metrics_only",
        METRICS_ONLY_ENV,
        "false",
        "no spans, span events or context changes; metrics (and transition logs) stay",
    ),
    Option(
        "span_hook",
        None,
        "none",
        "``hook(span, info)``, called before each span of ours ends with a frozen dataclass describing"
        " it (``BreakerCallInfo``, ``RetryCallInfo``); add attributes here. Typed as"
        " ``otel_resilience.SpanHook[InfoT]``; an exception it raises is logged once and ignored",
    ),
    Option(
        "max_names",
        MAX_NAMES_ENV,
        str(DEFAULT_MAX_NAMES),
        "cardinality cap on the distinct names of one instrumentor's breakers or retried operations;"
        " later new names are reported as ``_OTHER``, with one warning",
    ),
    Option(
        "exception_messages",
        EXCEPTION_MESSAGES_ENV,
        "true",
        "false records only an exception's type on spans, not its message or traceback (which can"
        " carry user data); metric attributes never carry messages or arguments",
    ),
)
"""Every option of every instrumentor, in ``instrument()``'s order."""


def render_args() -> list[str]:
    """The options as the ``Args:`` entries of ``instrument()``'s docstring, one line each."""
    lines = []
    for option in OPTIONS:
        where = f" (``{option.environment}`` when None)" if option.environment else ""
        lines.append(f"{option.argument}: {option.meaning}{where}; default {option.default}.")
    return lines


def render_options() -> str:
    """The options as ``docs/options.md``."""
    lines = [
        "# Options",
        "",
        "Generated from `otel_resilience/_kit/settings.py` by `python -m otel_resilience._kit.settings`;",
        "`nox -s docs` fails when this file and the code differ.",
        "",
        "Every instrumentor takes the same options, as `instrument()` keyword-only arguments (checked by",
        "`mypy --strict`) or environment variables (read when the argument is not given). An invalid value",
        "never stops the application: it is replaced by the default with one warning naming the setting, the",
        "value given and the value used.",
        "",
        "| `instrument()` argument | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for option in OPTIONS:
        environment = f"`{option.environment}`" if option.environment else ""
        meaning = option.meaning.replace("``", "`")
        lines.append(f"| `{option.argument}` | {environment} | {option.default} | {meaning} |")
    lines += [
        "",
        "Environment variables take `true`/`1`/`yes`/`on` and `false`/`0`/`no`/`off` for booleans, any case,",
        "surrounding spaces ignored. Examples of each option, as code that runs: the README, section",
        "*Install and use*.",
        "",
    ]
    return "\n".join(lines)


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


if __name__ == "__main__":
    print(render_options(), end="")
