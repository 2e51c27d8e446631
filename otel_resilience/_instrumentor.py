"""What the two instrumentors share: their library is imported only when instrumenting."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

# The module opts out of type checking (`# type: ignore` at its top): BaseInstrumentor is Any here.
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_resilience._faults import logger

if TYPE_CHECKING:
    from collections.abc import Collection


class LibraryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrument one library through the ``instrument(kwargs)``/``uninstrument()`` of a wrappers module."""

    library: ClassVar[str]
    requirements: ClassVar[tuple[str, ...]]
    wrappers: ClassVar[str]
    """The module that installs the wrappers; importing it imports the library."""

    def instrumentation_dependencies(self) -> Collection[str]:
        """The library versions this instrumentation supports."""
        return self.requirements

    def _instrument(self, **kwargs: Any) -> None:
        # `opentelemetry-instrument` skips this check when any library of the distribution is
        # present: without it, a missing library would be imported here and fail.
        conflict = get_dependency_conflicts(self.requirements)
        if conflict is not None:
            logger.info("otel-resilience: %s not instrumented: %s", self.library, conflict)
            return
        importlib.import_module(self.wrappers).instrument(kwargs)
        self._wrapped = True

    def _uninstrument(self, **kwargs: Any) -> None:
        if getattr(self, "_wrapped", False):
            importlib.import_module(self.wrappers).uninstrument()
            self._wrapped = False
