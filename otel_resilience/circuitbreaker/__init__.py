"""OpenTelemetry instrumentation for `circuitbreaker <https://github.com/fabfuel/circuitbreaker>`_ (fabfuel).

Usage
-----
With no code change, run the application under ``opentelemetry-instrument``: the entry point
``circuitbreaker`` (group ``opentelemetry_instrumentor``) instruments every breaker::

    opentelemetry-instrument --service_name checkout python app.py

Or instrument in code, before or after the breakers are created and functions decorated::

    from otel_resilience.circuitbreaker import CircuitBreakerInstrumentor

    CircuitBreakerInstrumentor().instrument(tracer_provider=..., meter_provider=...)

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
``instrument()`` takes the options every instrumentor of this package takes (``tracer_provider``,
``meter_provider``, ``metrics_only``, ``span_hook``, ``max_names``, ``exception_messages``); the span
hook receives a :class:`BreakerCallInfo`::

    from otel_resilience.circuitbreaker import BreakerCallInfo, CircuitBreakerInstrumentor

    def add_fallback(span, info: BreakerCallInfo) -> None:
        span.set_attribute("app.breaker.threshold", info.breaker._failure_threshold)

    CircuitBreakerInstrumentor().instrument(span_hook=add_fallback)

Turned off by ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=circuitbreaker``; ``suppress_instrumentation()``
leaves out the calls that start inside it.

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
