"""A breaker library's verdicts on exceptions (failure or not), kept until the call that raised them ends."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from otel_resilience._kit.faults import report_fault

if TYPE_CHECKING:
    from otel_resilience._kit.patching import Observer


class Verdicts(threading.local):
    """A breaker library's own classification of recent exceptions, per thread.

    The library decides whether an exception counts as a failure (pybreaker's and aiobreaker's
    ``is_system_error``). Asking it again could call user predicates twice, so its answer is kept
    here, keyed by exception identity, until the wrapper that sees the exception leave takes it.
    """

    def __init__(self) -> None:
        self.by_id: dict[int, tuple[BaseException, bool]] = {}

    def put(self, exc: BaseException, counted: bool) -> None:
        by_id = self.by_id
        if len(by_id) >= 32:  # a verdict outside any recorded call: forget the oldest
            del by_id[next(iter(by_id))]
        by_id[id(exc)] = (exc, counted)

    def take(self, exc: BaseException | None) -> tuple[BaseException, bool] | None:
        if exc is None:
            return None
        by_id = self.by_id
        entry = by_id.pop(id(exc), None)
        if entry is not None and entry[0] is exc:
            return entry
        if isinstance(exc, GeneratorExit):
            # Closing our generator closes the library's first, which classifies a GeneratorExit
            # of its own: the newest one is that verdict.
            for key in reversed(list(by_id)):
                if isinstance(by_id[key][0], GeneratorExit):
                    return by_id.pop(key)
        return None


def judging(verdicts: Verdicts, library: str) -> Observer:
    """The observer of ``is_system_error(exception)``: its answer kept in ``verdicts``."""

    def is_system_error(breaker: Any, args: tuple[Any, ...], kwargs: dict[str, Any], counted: Any) -> None:
        try:  # inline, not `contain`: once per failed call, where the guard's cost would show
            verdicts.put(args[0] if args else kwargs["exception"], bool(counted))
        except Exception as fault:
            report_fault(f"{library} failure classification", fault)

    return is_system_error
