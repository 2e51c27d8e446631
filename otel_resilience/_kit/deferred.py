"""Work that must not run where it was noticed.

A generator or retry loop abandoned by the application is finalised by the garbage collector.
Ending spans, taking SDK locks or setting context variables from there can deadlock or crash
CPython, so the finaliser only queues a closure here; the next instrumented call, metric
collection or ``uninstrument()`` runs it.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from otel_resilience._kit.faults import report_fault

pending: deque[Callable[[], None]] = deque()
"""Queued work; hot paths test it for emptiness before calling :func:`run_deferred`."""


def defer(work: Callable[[], None]) -> None:
    """Queue ``work``; safe from a finaliser (``deque.append`` takes no lock)."""
    pending.append(work)


def run_deferred() -> None:
    """Run queued work now; cheap when nothing is queued."""
    while pending:
        try:
            work = pending.popleft()
        except IndexError:  # another thread took the last item
            return
        try:
            work()
        except Exception as exc:
            report_fault("deferred telemetry", exc)
