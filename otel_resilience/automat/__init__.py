"""OpenTelemetry instrumentation for `automat <https://github.com/glyph/automat>`_ state machines.

Usage
-----
Every code block of this guide runs in the tests, in order, in one folder. A turnstile that
refuses a push while locked:

.. code-block:: python
   :caption: turnstile.py

   from automat import MethodicalMachine, NoTransition


   class Turnstile:
       _machine = MethodicalMachine()

       @_machine.state(initial=True)
       def locked(self) -> None:
           "locked"

       @_machine.state()
       def unlocked(self) -> None:
           "unlocked"

       @_machine.input()
       def coin(self) -> None:
           "a coin"

       @_machine.input()
       def push(self) -> None:
           "a push"

       locked.upon(coin, enter=unlocked, outputs=[])
       unlocked.upon(push, enter=locked, outputs=[])


   turnstile = Turnstile()
   try:
       turnstile.push()  # locked: refused
   except NoTransition:
       print("refused")
   turnstile.coin()

With no code change, run it under ``opentelemetry-instrument``: the entry point ``automat`` instruments
every machine; spans ``turnstile.Turnstile push`` (refused) and ``turnstile.Turnstile coin`` here.
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=automat`` turns it off:

.. code-block:: sh

   opentelemetry-instrument --traces_exporter console --metrics_exporter console python turnstile.py
   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=automat opentelemetry-instrument python turnstile.py

Or instrument in code, before or after the machines are declared, with a ``span_hook`` receiving a
frozen :class:`TriggerInfo`:

.. code-block:: python

   from opentelemetry.sdk.trace import TracerProvider
   from opentelemetry.trace import Span

   from otel_resilience.automat import AutomatInstrumentor, TriggerInfo


   def add_input(span: Span, info: TriggerInfo) -> None:
       span.set_attribute("app.input", info.trigger)


   AutomatInstrumentor().instrument(tracer_provider=TracerProvider(), span_hook=add_input)

   import turnstile  # noqa: F401 - its inputs are recorded

What you get
------------
For every input given to a ``MethodicalMachine`` or a ``TypeMachine`` (instances made before or
after ``instrument()``; a ``TypeMachine`` input postponed by re-entry when it actually runs):

- one INTERNAL span ``{statemachine.name} {input}``; the application's spans made in outputs are its
  children;
- ``statemachine.triggers`` by outcome: ``transitioned``, ``refused`` (``NoTransition``: no
  transition for that input in that state; the state is unchanged) or ``failed`` (an output raised:
  automat has already moved to the new state). automat has no guards: nothing is ``blocked``;
- ``statemachine.transitions``, ``statemachine.trigger.duration`` (the transition and its outputs),
  and ``statemachine.instances``: live instances by state, every state of the machine reported.

Names
-----
A ``MethodicalMachine`` is named after the class that declares it, a ``TypeMachine`` after its input
protocol (``module.QualName``); states and inputs by their method's name.

Limitations
-----------
- A ``MethodicalMachine`` instance gets its state lazily, at its first input: until then it is not
  counted in ``statemachine.instances``; neither is an instance of a machine none of whose inputs ran
  since ``instrument()`` when the machine was declared after it.
- automat's input functions receive each output behind a proxy that behaves as the output (its
  attributes, ``==`` and calls are the output's); a tracer set with ``_setTrace`` sees the proxy.
- Code that calls ``Transitioner.transition`` itself: the trigger is recorded when ``transition``
  returns, and the outputs that code runs are not observed.

Guarantees
----------
Nothing is registered with automat (no tracer: ``_setTrace`` is one slot per instance and a raising
tracer breaks the machine). Return values and exceptions are automat's own; a failure inside the
telemetry is logged once and never raised into the application.
"""

from __future__ import annotations

from typing import ClassVar

from otel_resilience._kit.instrumentor import LibraryInstrumentor
from otel_resilience._statemachines import TriggerInfo

__all__ = ["AutomatInstrumentor", "TriggerInfo"]


class AutomatInstrumentor(LibraryInstrumentor[TriggerInfo]):
    """Instrument every automat machine: trigger spans, trigger, transition and instance metrics."""

    library: ClassVar[str] = "automat"
    requirements: ClassVar[tuple[str, ...]] = ("automat >= 24.8",)
    patches_module: ClassVar[str] = "otel_resilience.automat._patches"
