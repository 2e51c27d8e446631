"""OpenTelemetry instrumentation for `python-statemachine <https://github.com/fgmacedo/python-statemachine>`_.

Usage
-----
Every code block of this guide runs in the tests, in order, in one folder. A traffic light whose
``go`` is blocked by its guard:

.. code-block:: python
   :caption: light.py

   from statemachine import State, StateMachine
   from statemachine.exceptions import TransitionNotAllowed


   class TrafficLight(StateMachine):
       red = State(initial=True)
       green = State()

       go = red.to(green, cond="road_clear")
       stop = green.to(red)

       road_clear = False


   light = TrafficLight()
   try:
       light.go()  # the guard says no: blocked
   except TransitionNotAllowed:
       print("blocked")
   light.road_clear = True
   light.go()

With no code change, run it under ``opentelemetry-instrument``: the entry point ``statemachine``
instruments every machine; spans ``light.TrafficLight go`` (blocked, then transitioned) here.
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=statemachine`` turns it off:

.. code-block:: sh

   opentelemetry-instrument --traces_exporter console --metrics_exporter console python light.py
   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=statemachine opentelemetry-instrument python light.py

Or instrument in code, before or after the machines are made, with a ``span_hook`` receiving a
frozen :class:`TriggerInfo`:

.. code-block:: python

   from opentelemetry.sdk.trace import TracerProvider
   from opentelemetry.trace import Span

   from otel_resilience.statemachine import StateMachineInstrumentor, TriggerInfo


   def add_states(span: Span, info: TriggerInfo) -> None:
       span.set_attribute("app.state.before", info.previous_state)


   StateMachineInstrumentor().instrument(tracer_provider=TracerProvider(), span_hook=add_states)

   import light  # noqa: F401 - its events are recorded

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
