"""OpenTelemetry instrumentation for `pybreaker <https://github.com/danielfm/pybreaker>`_ circuit breakers.

Usage
-----
Every code block of this guide runs in the tests, in order, in one folder. An application with a
breaker:

.. code-block:: python
   :caption: checkout.py

   import pybreaker

   inventory = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=30, name="inventory")
   print(inventory.call(lambda: "in stock"))

With no code change, run it under ``opentelemetry-instrument``: the entry point ``pybreaker`` (group
``opentelemetry_instrumentor``) instruments every breaker. The console exporters show the spans and
metrics here; without them they go over OTLP. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=pybreaker``
turns this instrumentation off, and ``OTEL_PYTHON_RESILIENCE_METRICS_ONLY=true`` keeps metrics only:

.. code-block:: sh

   opentelemetry-instrument --traces_exporter console --metrics_exporter console python checkout.py
   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=pybreaker opentelemetry-instrument python checkout.py
   OTEL_PYTHON_RESILIENCE_METRICS_ONLY=true opentelemetry-instrument python checkout.py

Or instrument in code, before or after the breakers are created. A ``span_hook`` receives each call's
span and a frozen :class:`BreakerCallInfo` before the span ends; ``exception_messages=False`` records
exception types only, not their messages (which can carry user data); ``metrics_only=True`` records no
spans at all:

.. code-block:: python

   import pybreaker
   from opentelemetry.sdk.trace import TracerProvider
   from opentelemetry.trace import Span

   from otel_resilience.pybreaker import BreakerCallInfo, PyBreakerInstrumentor


   def add_state(span: Span, info: BreakerCallInfo) -> None:
       span.set_attribute("app.breaker.fail_max", info.breaker.fail_max)


   instrumentor = PyBreakerInstrumentor()
   instrumentor.instrument(tracer_provider=TracerProvider(), span_hook=add_state, exception_messages=False)
   pybreaker.CircuitBreaker(name="inventory").call(len, "stock")
   instrumentor.uninstrument()
   instrumentor.instrument(metrics_only=True)

What you get
------------
- One INTERNAL span per call through a breaker, named with the breaker's name, for every form:
  ``breaker.call(fn)``, ``@breaker``, ``with breaker.calling():``, guarded generator functions
  (measured to the generator's real end) and Tornado's ``call_async``. The span carries
  ``resilience.circuit_breaker.name``, ``resilience.circuit_breaker.state`` (the state the call
  started in: a half-open probe shows as ``half_open``) and ``resilience.outcome``:
  ``success``, ``failure`` (counted by the breaker), ``rejected`` (the breaker was open, the
  function never ran: status ERROR, ``error.type`` ``pybreaker.CircuitBreakerError``) or
  ``ignored`` (an excluded exception: re-raised, not a failure; status left unset). The call
  that trips the breaker is a ``failure`` whose ``error.type`` is the function's exception.
  The application's own spans made inside the call are children of it (the ``calling()`` body and
  generator bodies run outside the call, so their spans are not).
  A guarded generator closed early is classified as pybreaker classifies the ``GeneratorExit``
  (a failure unless excluded); one dropped before its first step ran nothing and pybreaker counts
  nothing: its span ends without an outcome and no call is counted.
- Every state transition - trips, half-open, close, manual ``open()``/``half_open()``/``close()``,
  and changes made by another process sharing ``CircuitRedisStorage`` (noticed when this process
  next reads the state) - as a ``circuit_breaker.state_change`` event on the span active at the
  time, or on a short span of its own when none is recording; as a count in
  ``resilience.circuit_breaker.transitions``; and as a log record on logger ``otel_resilience``
  (WARNING when entering ``open``, INFO otherwise).
- Metrics ``resilience.circuit_breaker.calls``, ``...call.duration`` (seconds, explicit buckets
  1 ms to 60 s), ``...transitions``, ``...state`` (one series per breaker and state: 1 for the
  current state, 0 for the others, read from the breaker's cached state at collection time, so no
  Redis round trip and no transition is caused by reading) and ``...consecutive_failures`` (the
  breaker's ``fail_counter``; for a breaker whose state is shared through Redis, the count as this
  process last set it, because reading Redis at collection time would make metric collection
  wait on Redis whenever it is slow or down).
  ``docs/telemetry.md`` lists every name, unit, attribute and value.

Breaker names
-------------
A breaker's ``name`` is used when set. An unnamed breaker is named after the code that created it,
``module.qualname:line`` (``module:line`` at module level; before Python 3.11, which has no
``co_qualname``, the function's bare name stands for its qualified name): the same in every process
running the same code. Unnamed breakers created before ``instrument()`` are named after the module global that
holds them (``module.variable``), else ``unknown``. Set ``name=`` for names that survive edits.

Options
-------
The options every instrumentor of this package takes, with their environment variables, are in
``docs/options.md`` (and ``instrument()``'s docstring). Here ``max_names`` caps distinct breaker names,
and the span hook's ``info`` is a :class:`BreakerCallInfo`. ``suppress_instrumentation()`` leaves out the
calls that start inside it.

Guarantees
----------
Return values, exceptions (identity, type, traceback, ``__context__``), locking and
``breaker.listeners`` are those of uninstrumented pybreaker. A failure inside the telemetry is
logged once on logger ``otel_resilience`` and never raised into the application.
"""

from __future__ import annotations

from typing import ClassVar

from otel_resilience._kit.instrumentor import LibraryInstrumentor
from otel_resilience.pybreaker._info import BreakerCallInfo

__all__ = ["BreakerCallInfo", "PyBreakerInstrumentor"]


class PyBreakerInstrumentor(LibraryInstrumentor[BreakerCallInfo]):
    """Instrument every pybreaker ``CircuitBreaker``: spans, metrics and transition events."""

    library: ClassVar[str] = "pybreaker"
    requirements: ClassVar[tuple[str, ...]] = ("pybreaker >= 1.0",)
    patches_module: ClassVar[str] = "otel_resilience.pybreaker._patches"
