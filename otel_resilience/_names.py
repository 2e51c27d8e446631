"""Low-cardinality names for breakers and retried operations."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from otel_resilience._faults import logger
from otel_resilience.contract import OVERFLOW_NAME

if TYPE_CHECKING:
    from types import FrameType


class NameCap:
    """Pass names through until ``limit`` distinct ones were seen; report later ones as ``_OTHER``."""

    def __init__(self, limit: int, kind: str) -> None:
        self._limit = limit
        self._kind = kind
        self.known: dict[str, str] = {}
        """Names seen so far and what they are reported as: read it first on hot paths."""
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        known = self.known.get(name)
        if known is not None:
            return known
        with self._lock:
            known = self.known.get(name)
            if known is None:
                admitted = sum(1 for v in self.known.values() if v != OVERFLOW_NAME)
                known = name if admitted < self._limit else OVERFLOW_NAME
                if known == OVERFLOW_NAME and OVERFLOW_NAME not in self.known.values():
                    logger.warning(
                        "otel-resilience: more than %d distinct %s names; %r and later new names"
                        " are reported as %r (raise OTEL_PYTHON_RESILIENCE_MAX_NAMES to see them)",
                        self._limit,
                        self._kind,
                        name,
                        OVERFLOW_NAME,
                    )
                self.known[name] = known
            return known


def _within(module: str, packages: tuple[str, ...]) -> bool:
    """Whether ``module`` is in one of the top-level ``packages`` (``tenacity_app`` is not ``tenacity``)."""
    return module.partition(".")[0] in packages


def code_site(skip_packages: tuple[str, ...]) -> str:
    """Name the code that called into the instrumented library: ``module.qualname:line``.

    Frames of the packages named in ``skip_packages`` (top-level names: the instrumented library,
    wrapt, this package) are skipped. Module-level
    code is named ``module:line``. The line is that of the creating statement, so the name is the
    same on every call and in every process running the same code.
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
