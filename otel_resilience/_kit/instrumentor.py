"""The instrumentor base class: what ``instrument()`` and ``uninstrument()`` do for every library.

A library plugs in with a subclass that names the library, its requirements and its ``_patches``
module. That module imports the library and provides one function::

    def instrumentation(settings, scope, on_open) -> tuple[Recorder, PatchPlan]

which builds the library's telemetry object (a :class:`Recorder` whose SDK gate calls ``on_open``
when it first opens) and says what to patch. Everything else is done here: the dependency check,
settings, patching now and late, the active recorder that observable instruments read, and
complete removal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Generic, Protocol, TypeVar

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

# The module opts out of type checking (`# type: ignore` at its top): BaseInstrumentor is Any here.
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_resilience._kit.deferred import run_deferred
from otel_resilience._kit.faults import contain, logger
from otel_resilience._kit.instruments import activate, deactivate
from otel_resilience._kit.patching import Patches, PatchPlan
from otel_resilience._kit.settings import render_args, resolve_settings

if TYPE_CHECKING:
    from collections.abc import Collection

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from otel_resilience._kit.recording import Recorder, SpanHook
    from otel_resilience._kit.settings import Settings

InfoT = TypeVar("InfoT")

SCOPE_PREFIX = "otel_resilience."
"""Instrumentation scopes are the public packages: ``otel_resilience.<library>``."""


class PatchModule(Protocol):
    """What a library's ``_patches`` module provides."""

    def instrumentation(
        self, settings: Settings[Any], scope: str, on_open: Callable[[], None]
    ) -> tuple[Recorder[Any], PatchPlan]: ...


class LibraryInstrumentor(BaseInstrumentor, Generic[InfoT]):  # type: ignore[misc]
    """Instrument one library; ``InfoT`` is what its ``span_hook`` receives."""

    library: ClassVar[str]
    """The library's import name: the entry point's name and the instrumentation scope's suffix."""
    requirements: ClassVar[tuple[str, ...]]
    """The library versions supported, as requirement strings."""
    patches_module: ClassVar[str]
    """The module that patches the library (importing it imports the library)."""

    def instrument(  # noqa: D417 - the options' Args lines are generated from the settings module
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        metrics_only: bool | None = None,
        span_hook: SpanHook[InfoT] | None = None,
        max_names: int | None = None,
        exception_messages: bool | None = None,
        skip_dep_check: bool = False,
        raise_exception_on_conflict: bool = False,
    ) -> None:
        """Instrument the library: every object of it, created before or after this call.

        An invalid value never stops the application: it is replaced by the default with one
        warning. Instrumenting twice does nothing the second time. Under ``opentelemetry-instrument``,
        ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=<library>`` leaves a library uninstrumented, and
        ``opentelemetry.instrumentation.utils.suppress_instrumentation()`` leaves out what runs inside
        it. The options' reference: ``docs/options.md``.

        Args:
            {args}
            skip_dep_check: skip the check that a supported version of the library is installed
                (``opentelemetry-instrument`` passes true; each library is still checked here).
            raise_exception_on_conflict: raise instead of logging when that check fails.

        """
        super().instrument(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            metrics_only=metrics_only,
            span_hook=span_hook,
            max_names=max_names,
            exception_messages=exception_messages,
            skip_dep_check=skip_dep_check,
            raise_exception_on_conflict=raise_exception_on_conflict,
        )

    # The options' lines come from the one reference, the settings module.
    instrument.__doc__ = (instrument.__doc__ or "").format(args=("\n" + " " * 12).join(render_args()))

    def instrumentation_dependencies(self) -> Collection[str]:
        """The library versions this instrumentation supports."""
        return self.requirements

    @property
    def scope(self) -> str:
        """The instrumentation scope of everything this instrumentor emits."""
        return SCOPE_PREFIX + self.library

    def _instrument(self, **kwargs: Any) -> None:
        # `opentelemetry-instrument` skips this check when any library of the distribution is
        # present: without it, a missing library would be imported here and fail.
        conflict = get_dependency_conflicts(self.requirements)
        if conflict is not None:
            logger.info("otel-resilience: %s not instrumented: %s", self.library, conflict)
            return
        module: PatchModule = importlib.import_module(self.patches_module)
        patches = Patches()
        recorder, plan = module.instrumentation(
            resolve_settings(kwargs),
            self.scope,
            contain(f"{self.library} late patches")(patches.install_late),
        )
        patches.apply(plan)
        activate(recorder)
        recorder.gate.look()  # an SDK set already, as under opentelemetry-instrument: patch late now
        self._installed: tuple[Patches, Recorder[Any]] | None = (patches, recorder)

    def _uninstrument(self, **kwargs: Any) -> None:
        installed = getattr(self, "_installed", None)
        if installed is None:
            return
        patches, recorder = installed
        patches.remove_all()
        run_deferred()
        deactivate(recorder)
        self._installed = None
