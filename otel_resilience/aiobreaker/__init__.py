"""OpenTelemetry instrumentation for `aiobreaker <https://github.com/arlyon/aiobreaker>`_ circuit breakers.

Usage
-----
Every code block of this guide runs in the tests, in order, in one folder. An asyncio application
with a breaker:

.. code-block:: python
   :caption: stock.py

   import asyncio

   from aiobreaker import CircuitBreaker

   stock = CircuitBreaker(fail_max=2, name="stock")


   @stock
   async def available() -> int:
       await asyncio.sleep(0)
       return 3


   print(asyncio.run(available()))

With no code change, run it under ``opentelemetry-instrument``: the entry point ``aiobreaker`` (group
``opentelemetry_instrumentor``) instruments every breaker.
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=aiobreaker`` turns it off, and
``OTEL_PYTHON_RESILIENCE_METRICS_ONLY=true`` keeps metrics only:

.. code-block:: sh

   opentelemetry-instrument --traces_exporter console --metrics_exporter console python stock.py
   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=aiobreaker opentelemetry-instrument python stock.py
   OTEL_PYTHON_RESILIENCE_METRICS_ONLY=true opentelemetry-instrument python stock.py

Or in code, with a span hook, exception messages kept out of spans, or metrics only:

.. code-block:: python

   from aiobreaker import CircuitBreaker
   from opentelemetry.sdk.trace import TracerProvider
   from opentelemetry.trace import Span

   from otel_resilience.aiobreaker import AioBreakerCallInfo, AioBreakerInstrumentor


   def add_state(span: Span, info: AioBreakerCallInfo) -> None:
       span.set_attribute("app.breaker.state", info.state)


   instrumentor = AioBreakerInstrumentor()
   instrumentor.instrument(tracer_provider=TracerProvider(), span_hook=add_state, exception_messages=False)
   CircuitBreaker(name="stock").call(len, "ok")
   instrumentor.uninstrument()
   instrumentor.instrument(metrics_only=True)

What you get
------------
The same telemetry as the pybreaker instrumentation, under scope ``otel_resilience.aiobreaker``
(``docs/telemetry.md`` lists every name), so the dashboards and alert rules cover these breakers:

- One INTERNAL span per call, named with the breaker's name: ``await breaker.call_async(fn)``,
  ``breaker.call(fn)``, ``@breaker`` on ``async def`` and plain functions, guarded generators
  (measured to their end). ``resilience.outcome`` is ``success``, ``failure`` (the call that trips
  the breaker too: aiobreaker raises ``CircuitBreakerError`` from the original, and ``error.type``
  names the original), ``rejected`` (open: the function never ran; ``error.type``
  ``aiobreaker.state.CircuitBreakerError``) or ``ignored`` (an excluded exception, which aiobreaker
  counts as a success and re-raises; or a cancellation, which it counts as neither). The call that
  follows an open period moves the breaker to half-open and re-enters ``call_async``: that is one
  call, whose state is ``half_open``. The application's spans made inside a call are its children.
- Every transition (trips, half-open, close, manual ``open()``/``half_open()``/``close()``) as a
  ``circuit_breaker.state_change`` event, a count in ``resilience.circuit_breaker.transitions`` and
  a log record on logger ``otel_resilience``.
- Metrics ``resilience.circuit_breaker.calls``, ``...call.duration``, ``...transitions``,
  ``...status`` (the breaker's cached state: reading it never causes a transition) and
  ``...consecutive_failures`` (memory storage only: a Redis read at collection time would block).

What aiobreaker itself does that shows in the telemetry
--------------------------------------------------------
The telemetry reports what the library did, not what it should have done:

- ``opened_at`` is stored with ``datetime.utcnow()`` but ``opens_at``, ``time_until_open`` and
  ``CircuitBreakerError.time_remaining`` compare it with local ``datetime.now()``: in a time zone
  east of UTC a breaker looks like it stays open hours longer, west of it as already recovered. The
  rejection itself compares with ``utcnow()``, so rejections and transitions are right; only those
  times (and messages built from them) are off.
- There are no locks: in half-open every concurrent call is let through as a probe, and each is a
  ``half_open`` call.
- An async generator function behind a breaker is counted when the generator is created, before
  it runs: its call is a ``success`` of ~0 s whatever the iteration does.

Options
-------
The options every instrumentor of this package takes, with their environment variables, are in
``docs/options.md``; the span hook receives an :class:`AioBreakerCallInfo`.

Guarantees
----------
Return values, exceptions (identity, type, traceback, ``__cause__``/``__context__``), the exclusion
predicates (asked once per exception) and ``breaker.listeners`` are those of uninstrumented
aiobreaker. A failure inside the telemetry is logged once and never raised into the application.

Installing aiobreaker 1.2 also installs a top-level package ``test`` (its own tests), which shadows
the standard library's ``test`` package in that environment.
"""

from __future__ import annotations

from typing import ClassVar

from otel_resilience._kit.instrumentor import LibraryInstrumentor
from otel_resilience.aiobreaker._info import AioBreakerCallInfo

__all__ = ["AioBreakerCallInfo", "AioBreakerInstrumentor"]


class AioBreakerInstrumentor(LibraryInstrumentor[AioBreakerCallInfo]):
    """Instrument every aiobreaker ``CircuitBreaker``: spans, metrics and transition events."""

    library: ClassVar[str] = "aiobreaker"
    requirements: ClassVar[tuple[str, ...]] = ("aiobreaker >= 1.2",)
    patches_module: ClassVar[str] = "otel_resilience.aiobreaker._patches"
