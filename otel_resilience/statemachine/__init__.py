"""OpenTelemetry instrumentation for `python-statemachine <https://github.com/fgmacedo/python-statemachine>`_.

Usage
-----
Under ``opentelemetry-instrument`` the entry point ``statemachine`` instruments every machine; in
code::

    from otel_resilience.statemachine import StateMachineInstrumentor

    StateMachineInstrumentor().instrument(tracer_provider=..., meter_provider=...)

What you get
------------
For every event sent to a ``StateMachine`` or a ``StateChart`` (sync or async engine; machines made
before or after ``instrument()``; queued events when they run):

- one INTERNAL span ``{statemachine.name} {event}``; the application's spans made in callbacks are
  its children;
- ``statemachine.triggers`` by outcome: ``transitioned``; ``refused`` (no transition for the event
  leaves an active state: ``TransitionNotAllowed`` in a ``StateMachine``, silently ignored in a
  ``StateChart``); ``blocked`` (a transition exists but its guards said no; a ``StateMachine``
  raises ``TransitionNotAllowed`` then too); ``failed`` (a callback raised: a ``StateMachine``
  re-raises and rolls back, a ``StateChart`` turns it into an ``error.execution`` event);
  ``cancelled`` (async: the task was cancelled);
- ``statemachine.transitions``, ``statemachine.trigger.duration`` and ``statemachine.instances``
  (live machines by state, every state of the class reported).

Names
-----
A machine is named after its class, ``module.QualName`` (python-statemachine's own ``name`` is the
bare class name); states by their ``id``, a compound state's configuration by its active atomic
states (parallel regions joined by ``,``).

Limitations
-----------
Internal events (``raise_()``, ``error.execution``) and eventless transitions run inside the
external event that caused them: they are part of its trigger, not triggers of their own.

Guarantees
----------
No listener is added (an async listener switches a machine's engine). Return values and exceptions
are python-statemachine's own; a failure inside the telemetry is logged once and never raised into
the application.
"""

from __future__ import annotations

from typing import ClassVar

from otel_resilience._kit.instrumentor import LibraryInstrumentor
from otel_resilience._statemachines import TriggerInfo

__all__ = ["StateMachineInstrumentor", "TriggerInfo"]


class StateMachineInstrumentor(LibraryInstrumentor[TriggerInfo]):
    """Instrument every python-statemachine machine: trigger spans, trigger, transition, instance metrics."""

    library: ClassVar[str] = "statemachine"
    requirements: ClassVar[tuple[str, ...]] = ("python-statemachine >= 3.0",)
    patches_module: ClassVar[str] = "otel_resilience.statemachine._patches"
