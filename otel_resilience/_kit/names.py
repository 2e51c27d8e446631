"""Names in telemetry: a cardinality cap per kind, series that start at 0, cached attribute sets."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Callable

from otel_resilience._kit.faults import contain, logger
from otel_resilience.contract import OVERFLOW_NAME

if TYPE_CHECKING:
    from types import FrameType


class NameRegistry:
    """The names of one kind (breakers, retried operations), as they are reported.

    The first ``limit`` distinct names pass through; later new ones are reported as ``_OTHER``,
    with one warning. ``first_seen(reported)`` runs once per reported name, before its first
    count: it reports the name's main counters at 0, because Prometheus computes ``rate()`` and
    ``increase()`` from the samples it has, and a series that appears with a value above 0 loses
    that first count.
    """

    def __init__(self, kind: str, limit: int, first_seen: Callable[[str], None]) -> None:
        self._kind = kind
        self._limit = limit
        self._first_seen = contain(f"{kind} series initialisation")(first_seen)
        self.reported: dict[str, str] = {}
        """Every name seen so far and what it is reported as: hot paths read it first."""
        self._admitted = 0
        self._lock = threading.Lock()

    def report(self, name: str) -> str:
        """What ``name`` is reported as; a new name's series are started at 0 first."""
        reported = self.reported.get(name)
        if reported is not None:
            return reported
        with self._lock:
            reported = self.reported.get(name)
            if reported is not None:
                return reported
            if self._admitted < self._limit:
                self._admitted += 1
                reported = name
            else:
                reported = OVERFLOW_NAME
                if OVERFLOW_NAME not in self.reported.values():
                    logger.warning(
                        "otel-resilience: more than %d distinct %s names; %r and later new names"
                        " are reported as %r (raise OTEL_PYTHON_RESILIENCE_MAX_NAMES to see them)",
                        self._limit,
                        self._kind,
                        name,
                        OVERFLOW_NAME,
                    )
            first = reported not in self.reported.values()
            self.reported[name] = reported
        if first:
            self._first_seen(reported)
        return reported


class AttributeSets:
    """Metric attribute dictionaries, built once per combination of values and then reused.

    ``get(*values)`` pairs the values with the keys given at construction; a None value leaves its
    key out (``error.type`` of a success). Recording passes the same dictionary every time, which
    spares the SDK and us a new dictionary per call.
    """

    __slots__ = ("_keys", "_sets")

    def __init__(self, *keys: str) -> None:
        self._keys = keys
        self._sets: dict[tuple[str | None, ...], dict[str, str]] = {}

    def get(self, *values: str | None) -> dict[str, str]:
        attributes = self._sets.get(values)
        if attributes is None:
            attributes = {key: value for key, value in zip(self._keys, values) if value is not None}
            self._sets[values] = attributes
        return attributes


def _within(module: str, packages: tuple[str, ...]) -> bool:
    """Whether ``module`` is in one of the top-level ``packages`` (``tenacity_app`` is not ``tenacity``)."""
    return module.partition(".")[0] in packages


def code_site(skip_packages: tuple[str, ...]) -> str:
    """Name the code that called into the instrumented library: ``module.qualname:line``.

    Frames of the packages named in ``skip_packages`` (top-level names: the instrumented library,
    wrapt, this package) are skipped. Module-level code is named ``module:line``. The line is that
    of the creating statement, so the name is the same on every call and in every process running
    the same code.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and _within(frame.f_globals.get("__name__", ""), skip_packages):
        frame = frame.f_back
    if frame is None:
        return "unknown"
    module = frame.f_globals.get("__name__", "unknown")
    code = frame.f_code
    qualname = getattr(code, "co_qualname", code.co_name)
    if qualname == "<module>":
        return f"{module}:{frame.f_lineno}"
    return f"{module}.{qualname}:{frame.f_lineno}"


def function_name(fn: object) -> str:
    """``module.qualname`` of a function (or of a callable object's class)."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}"
