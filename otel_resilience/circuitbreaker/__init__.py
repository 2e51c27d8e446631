"""OpenTelemetry instrumentation for `circuitbreaker <https://github.com/fabfuel/circuitbreaker>`_ (fabfuel).

Usage
-----
Every code block of this guide runs in the tests, in order, in one folder. An application whose
quotes come from a breaker-guarded coroutine (circuitbreaker sees ``async def`` bodies to their end):

.. code-block:: python
   :caption: quotes.py

   import asyncio

   from circuitbreaker import circuit


   @circuit(failure_threshold=2, recovery_timeout=30, name="quotes")
   async def quote() -> float:
       await asyncio.sleep(0)
       return 4.2


   print(asyncio.run(quote()))

With no code change, run it under ``opentelemetry-instrument``: the entry point ``circuitbreaker``
(group ``opentelemetry_instrumentor``) instruments every breaker, created or decorated before or after.
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=circuitbreaker`` turns it off, and
``OTEL_PYTHON_RESILIENCE_METRICS_ONLY=true`` keeps metrics only:

.. code-block:: sh

   opentelemetry-instrument --traces_exporter console --metrics_exporter console python quotes.py
   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=circuitbreaker opentelemetry-instrument python quotes.py
   OTEL_PYTHON_RESILIENCE_METRICS_ONLY=true opentelemetry-instrument python quotes.py

Or in code, with a span hook that receives a frozen :class:`BreakerCallInfo`, exception messages kept
out of spans, or metrics only:

.. code-block:: python

   from circuitbreaker import CircuitBreaker
   from opentelemetry.sdk.trace import TracerProvider
   from opentelemetry.trace import Span

   from otel_resilience.circuitbreaker import BreakerCallInfo, CircuitBreakerInstrumentor


   def add_outcome(span: Span, info: BreakerCallInfo) -> None:
       span.set_attribute("app.breaker.outcome", info.outcome)


   instrumentor = CircuitBreakerInstrumentor()
   instrumentor.instrument(tracer_provider=TracerProvider(), span_hook=add_outcome, exception_messages=False)
   CircuitBreaker(name="quotes")(len)("ok")
   instrumentor.uninstrument()
   instrumentor.instrument(metrics_only=True)

What you get
------------
The same telemetry as the pybreaker instrumentation, under scope ``otel_resilience.circuitbreaker``
(``docs/telemetry.md`` lists every name), so the dashboards and alert rules cover these breakers as
they are:

- One INTERNAL span per call, named with the breaker's name, for every form: decorated functions,
  ``async def`` functions (real outcomes: circuitbreaker guards coroutines itself), generators and
  async generators (measured to their real end), ``breaker.call(...)`` and ``with breaker:``. The
  span carries ``resilience.circuit_breaker.name``, ``resilience.circuit_breaker.state`` (the state
  the call started in) and ``resilience.outcome``: ``success``; ``failure`` (the breaker's
  ``expected_exception`` says it counts; the call that trips the breaker is one); ``ignored``
  (an exception the breaker does not count: circuitbreaker then *resets* the breaker, closing it
  and zeroing its count, and the transition to ``closed`` is reported as it happened; a
  cancellation or a generator closed early is one too, since they are not ``Exception``);
  ``rejected`` (the breaker was open, the function never ran: ``error.type``
  ``circuitbreaker.CircuitBreakerError``). A rejected call served by the breaker's
  ``fallback_function`` is still ``rejected``, with ``resilience.circuit_breaker.fallback`` = true
  on its span and no ``error.type`` (nothing was raised). Application spans made inside a call are
  its children, except in generator bodies (they run in the consumer's context between steps).
- Transitions as ``circuit_breaker.state_change`` events, ``resilience.circuit_breaker.transitions``
  counts and log records on logger ``otel_resilience`` (WARNING when entering ``open``).
  circuitbreaker has no half-open transition of its own: its ``state`` *computes* ``half_open``
  when read ``recovery_timeout`` seconds after opening. That step is reported the first time it is
  observable (a ``state``/``opened`` read, a call, a metric collection), dated when it became true.
  A failure through ``with breaker:`` while open (the context manager never rejects) restarts the
  open period: reported as ``open -> open``.
- Metrics ``resilience.circuit_breaker.calls``, ``...call.duration``, ``...transitions``,
  ``...status`` (one series per breaker and state) and ``...consecutive_failures`` (``failure_count``).

Breakers made before ``instrument()`` (those in ``CircuitBreakerMonitor`` and any other) and functions
decorated before it are covered: every patch is on the ``CircuitBreaker`` class.

Breaker names
-------------
circuitbreaker names a breaker after the first function it decorates (its ``__qualname__``) unless
``name=`` is given. A breaker used only as ``with breaker:`` has no name: it is named after the code
that created it, ``module.qualname:line`` (``module.variable`` for one made before ``instrument()``).

What differs from the library's own view
----------------------------------------
- A rejected call's duration is the time taken to reject it; a fallback's own run time is not in it,
  and spans the fallback makes are not children of the rejected call's span.
- circuitbreaker has no locks: under threads its failure count loses updates and transitions may be
  computed from stale counts. Call counts stay exact (one per call); transitions are what the
  library did.

Options
-------
The options every instrumentor of this package takes, with their environment variables, are in
``docs/options.md``; the span hook's ``info`` is a :class:`BreakerCallInfo`.
``suppress_instrumentation()`` leaves out the calls that start inside it.

Guarantees
----------
Return values, exceptions (identity, type, traceback, ``__context__``), the failure predicate
(called once per exception, as without instrumentation) and ``CircuitBreakerMonitor`` are those of
uninstrumented circuitbreaker. A failure inside the telemetry is logged once on logger
``otel_resilience`` and never raised into the application.
"""

from __future__ import annotations

from typing import ClassVar

from otel_resilience._kit.instrumentor import LibraryInstrumentor
from otel_resilience.circuitbreaker._info import BreakerCallInfo

__all__ = ["BreakerCallInfo", "CircuitBreakerInstrumentor"]


class CircuitBreakerInstrumentor(LibraryInstrumentor[BreakerCallInfo]):
    """Instrument every circuitbreaker ``CircuitBreaker``: spans, metrics and transition events."""

    library: ClassVar[str] = "circuitbreaker"
    requirements: ClassVar[tuple[str, ...]] = ("circuitbreaker >= 2.0",)
    patches_module: ClassVar[str] = "otel_resilience.circuitbreaker._patches"
