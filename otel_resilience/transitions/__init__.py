"""OpenTelemetry instrumentation for `transitions <https://github.com/pytransitions/transitions>`_.

Usage
-----
Every code block of this guide runs in the tests, in order, in one folder. An application whose
orders refuse an event that comes out of order:

.. code-block:: python
   :caption: orders.py

   from transitions import Machine, MachineError


   class Order:
       pass


   order = Order()
   Machine(order, states=["new", "paid"], transitions=[["pay", "new", "paid"]], initial="new", name="orders")
   order.pay()
   try:
       order.pay()  # already paid: refused
   except MachineError:
       print("refused")

With no code change, run it under ``opentelemetry-instrument``: the entry point ``transitions`` (group
``opentelemetry_instrumentor``) instruments every machine, made before or after it; two spans
``orders pay`` here, the second with outcome ``refused``.
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=transitions`` turns it off:

.. code-block:: sh

   opentelemetry-instrument --traces_exporter console --metrics_exporter console python orders.py
   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=transitions opentelemetry-instrument python orders.py

Or instrument in code, before or after the machines are made. A ``span_hook`` receives each trigger
span with a frozen :class:`TriggerInfo` before it ends:

.. code-block:: python

   from opentelemetry.sdk.trace import TracerProvider
   from opentelemetry.trace import Span

   from otel_resilience.transitions import TransitionsInstrumentor, TriggerInfo


   def add_model(span: Span, info: TriggerInfo) -> None:
       span.set_attribute("app.order.class", type(info.model).__name__)


   TransitionsInstrumentor().instrument(tracer_provider=TracerProvider(), span_hook=add_model)

   import orders  # noqa: F401 - its triggers are recorded

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
The options of every instrumentor of this package (``docs/options.md``); here ``max_names`` caps
distinct machine names.

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
