"""OpenTelemetry instrumentation for `automat <https://github.com/glyph/automat>`_ state machines.

Usage
-----
Under ``opentelemetry-instrument`` the entry point ``automat`` instruments every machine; in code::

    from otel_resilience.automat import AutomatInstrumentor

    AutomatInstrumentor().instrument(tracer_provider=..., meter_provider=...)

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
