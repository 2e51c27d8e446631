"""Misuse findings: one WARNING per finding and name, and a count of every call or operation affected.

The findings and what they mean to users are in the contract (``FINDING_GUIDES``,
``docs/diagnostics.md``). Breaker instrumentations register their rejection errors here, so that a
retry instrumentation can tell a retried rejection without importing any breaker library.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from otel_resilience._kit.faults import contain, logger
from otel_resilience._kit.instruments import create_instrument
from otel_resilience._kit.names import AttributeSets
from otel_resilience.contract import DIAGNOSTIC, DIAGNOSTICS, FINDING_GUIDES, Finding

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

rejection_errors: tuple[type[BaseException], ...] = ()
"""The exceptions breakers raise when they reject a call without running it."""
_rejection_lock = threading.Lock()

_warned: set[tuple[Finding, str]] = set()
"""(finding, name) already logged: once per process, however often the app is instrumented."""
_warned_lock = threading.Lock()


def register_rejection_error(error: type[BaseException]) -> None:
    """A breaker library's rejection error (kept for the process: classes are few and never freed)."""
    global rejection_errors  # noqa: PLW0603 - a tuple replaced whole, so readers need no lock
    with _rejection_lock:
        if error not in rejection_errors:
            rejection_errors = (*rejection_errors, error)


class Diagnostics:
    """The findings of one instrumentation, about names of one attribute (breaker or operation)."""

    def __init__(self, meter: Meter, name_attribute: str) -> None:
        self._counter = create_instrument(meter, DIAGNOSTICS)
        self._attributes = AttributeSets(DIAGNOSTIC, name_attribute)

    @contain("diagnostics")
    def found(self, finding: Finding, name: str, where: str) -> None:
        """Count one call or operation affected; the first time for ``name``, log what to do.

        ``where`` says what the user would look for in their code (a function, an operation).
        """
        self._counter.add(1, self._attributes.get(finding.value, name))
        key = (finding, name)
        if key in _warned:
            return
        with _warned_lock:
            if key in _warned:
                return
            _warned.add(key)
        guide = FINDING_GUIDES[finding]
        logger.warning(
            "otel-resilience: %s (%s, %s): %s. Cost: %s. Instead: %s. (logged once; counted in"
            " resilience.diagnostics; see docs/diagnostics.md#%s)",
            finding.value,
            name,
            where,
            guide.wrong,
            guide.cost,
            guide.fix,
            finding.value,
        )
