"""OpenTelemetry instrumentation for `transitions <https://github.com/pytransitions/transitions>`_.

Usage
-----
With no code change, run the application under ``opentelemetry-instrument``: the entry point
``transitions`` (group ``opentelemetry_instrumentor``) instruments every machine::

    opentelemetry-instrument --service_name shop python app.py

Or in code, before or after the machines and models are created::

    from otel_resilience.transitions import TransitionsInstrumentor

    TransitionsInstrumentor().instrument(tracer_provider=..., meter_provider=...)

What you get
------------
For every event fired at a model of a ``Machine``, ``LockedMachine``, ``HierarchicalMachine``,
``AsyncMachine`` or ``HierarchicalAsyncMachine`` (queued machines: when the event actually runs):

- one INTERNAL span named ``{statemachine.name} {trigger}`` with ``statemachine.name``,
  ``statemachine.trigger``, ``statemachine.previous_state``, ``statemachine.state`` (the state
  after) and ``statemachine.outcome``; the application's spans made in callbacks are its children;
- ``statemachine.triggers`` by outcome: ``transitioned``, ``refused`` (``MachineError``, or ignored
  under ``ignore_invalid_triggers``), ``blocked`` (a condition said no), ``failed`` (a callback
  raised: with ``on_exception`` set transitions swallows the error, and it is still counted;
  the state may already have changed, as in transitions), ``cancelled`` (async: superseded by a
  newer transition of the same model, or its task cancelled); ``error.type`` names the exception;
- ``statemachine.transitions`` (previous_state -> state, per trigger), ``statemachine.trigger.duration``
  and ``statemachine.instances``: the models of each machine name in each state, every state reported
  (0 when empty; nested states by their full name, ``B_1``), read at collection time.
  Machines are held weakly: a machine and its models that are garbage collected leave the count.

Names
-----
``Machine(name="orders")`` reports ``orders``; a machine without a name reports its model's class,
``module.QualName``. Enum states and parallel states are reported by name (parallel ones as their
leaves joined by ``,``).

Options
-------
The options of every instrumentor of this package (``metrics_only``, ``span_hook``, ``max_names``
caps machine names, ``exception_messages``...). ``span_hook(span, info)`` receives a
:class:`TriggerInfo`::

    from otel_resilience.transitions import TransitionsInstrumentor, TriggerInfo

    def add_order(span, info: TriggerInfo) -> None:
        span.set_attribute("app.order.id", info.model.id)

    TransitionsInstrumentor().instrument(span_hook=add_order)

Limitations
-----------
A queued machine runs a nested event after the outer one; when an earlier event raises, transitions
drops the events still queued: they never run and are not counted. ``may_<trigger>()`` fires no
event and is not counted. One event can run several transitions in parallel states: it is one
trigger and one transition, from the configuration before to the configuration after.

Guarantees
----------
Nothing is registered with transitions (no callbacks, no ``on_exception``): return values,
exceptions (identity, type, ``__context__``), locks and queues are those of uninstrumented
transitions. A failure inside the telemetry is logged once and never raised into the application.
"""

from __future__ import annotations

from typing import ClassVar

from otel_resilience._kit.instrumentor import LibraryInstrumentor
from otel_resilience._statemachines import TriggerInfo

__all__ = ["TransitionsInstrumentor", "TriggerInfo"]


class TransitionsInstrumentor(LibraryInstrumentor[TriggerInfo]):
    """Instrument every transitions machine: trigger spans, trigger, transition and instance metrics."""

    library: ClassVar[str] = "transitions"
    requirements: ClassVar[tuple[str, ...]] = ("transitions >= 0.9",)
    patches_module: ClassVar[str] = "otel_resilience.transitions._patches"
