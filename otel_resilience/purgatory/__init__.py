"""OpenTelemetry instrumentation for `purgatory <https://github.com/mardiros/purgatory>`_ circuit breakers.

Usage
-----
Every code block of this guide runs in the tests, in order, in one folder. An application whose
inventory service times out: two failures open the breaker, and the third call is rejected
without reaching the service:

.. code-block:: python
   :caption: inventory.py

   from purgatory import SyncCircuitBreakerFactory
   from purgatory.domain.model import OpenedState

   breakers = SyncCircuitBreakerFactory(default_threshold=2, default_ttl=30)


   @breakers("inventory")
   def reserve(item: str) -> str:
       raise TimeoutError(item)


   for item in ["apple", "pear", "plum"]:
       try:
           reserve(item)
       except TimeoutError:
           print(item, "failed")
       except OpenedState:
           print(item, "rejected: the breaker is open")

With no code change, run it under ``opentelemetry-instrument``: the entry point ``purgatory``
(group ``opentelemetry_instrumentor``) instruments every breaker: three ``inventory`` spans here
(``failure``, ``failure`` with the ``circuit_breaker.state_change`` event of the trip,
``rejected``). ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=purgatory`` turns it off:

.. code-block:: sh

   opentelemetry-instrument --traces_exporter console --metrics_exporter console python inventory.py
   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=purgatory opentelemetry-instrument python inventory.py

Or instrument in code, before or after the factories are created and functions decorated. A
``span_hook`` receives each call's span with a frozen :class:`PurgatoryCallInfo` before it ends:

.. code-block:: python

   from opentelemetry.sdk.trace import TracerProvider
   from opentelemetry.trace import Span

   from otel_resilience.purgatory import PurgatoryCallInfo, PurgatoryInstrumentor


   def mark_probes(span: Span, info: PurgatoryCallInfo) -> None:
       span.set_attribute("app.probe", info.state == "half_open")


   PurgatoryInstrumentor().instrument(tracer_provider=TracerProvider(), span_hook=mark_probes)

   import inventory  # the calls it makes are recorded

Every form is covered: ``SyncCircuitBreakerFactory`` and ``AsyncCircuitBreakerFactory``, as
decorators (``@factory("payments")``) and context managers (``with factory.get_breaker(...)``,
``async with await factory.get_breaker(...)``), with in-memory storage, and with Redis storage
for the async factory (purgatory's sync Redis storage does not work: see below).

What you get
------------
The ``resilience.circuit_breaker.*`` contract, as for pybreaker, so the same dashboards and alerts
apply:

- One INTERNAL span per call through a breaker, named with the circuit's name, with
  ``resilience.circuit_breaker.name``, ``resilience.circuit_breaker.state`` (the state the call ran
  in: the first call after the TTL shows as ``half_open``) and ``resilience.outcome``:
  ``success``; ``failure`` (purgatory counted the exception); ``rejected`` (the circuit was open:
  ``__enter__`` raised the ``OpenedState``, the block never ran; ``error.type``
  ``purgatory.domain.model.OpenedState``, recorded by type only, see below); ``ignored`` (an
  exception excluded by ``exclude=``: re-raised, not counted, status left unset). The
  application's spans made inside the block are children of it.
- Every transition this process makes (``Context.set_state``: trips, half-open after the TTL,
  close) as a ``circuit_breaker.state_change`` event on the current span (or a short span of its
  own), a count in ``resilience.circuit_breaker.transitions`` and a log record on logger
  ``otel_resilience`` (WARNING when entering ``open``).
- Metrics ``resilience.circuit_breaker.calls``, ``...call.duration``, ``...transitions``,
  ``...status`` and ``...consecutive_failures``. The last two are the state and failure count
  each breaker had when this process last used it: with Redis storage, purgatory loads the
  state for each call, so a change made by another process shows at this process's next call.

Breaker names: purgatory requires them (``factory("payments")``); they are used as they are.

Limitations of purgatory, shown as purgatory behaves
----------------------------------------------------
- Sync Redis storage does not work in purgatory 3.0.1 (``SyncRedisRepository`` calls
  ``redis.asyncio``): every call raises ``TypeError``, instrumented or not.
- A rejection raises the open state object itself, the same object every time: its traceback
  grows with every rejection until the breaker half-opens (each ``raise`` adds the frames it passes
  through). This package adds one frame per rejection, which holds nothing of the call. Spans
  record the rejection's type only, never that traceback.
- ``asyncio.CancelledError`` inside a block counts as a failure in purgatory: it is reported as
  ``failure`` (the span's status stays unset: a cancellation is the caller's choice).
- No locks: with memory storage, concurrent calls share one state object, and purgatory can admit
  several calls in half-open, or count a failure after another thread closed the breaker. Each
  call is reported as purgatory treated it, and a call it let through never as ``open``.
- Transitions made by other processes sharing Redis are not seen as transitions here.
- Calls of one circuit that end in another order than they started (a generator suspended inside
  ``with`` a breaker, resumed after another call of the same circuit began) share one ``Context``
  with nothing to tell their ends apart: each end is taken for the innermost call's.

Options
-------
``instrument()`` takes the options of every instrumentor of this package (``docs/options.md``);
here ``max_names`` caps distinct breaker names. ``suppress_instrumentation()`` leaves out the calls
that start inside it and the transitions made inside it; ``...status`` and
``...consecutive_failures`` still follow what those calls do to breakers that recorded calls use (a
breaker used only under suppression is not reported, and takes none of the ``max_names``).

Guarantees
----------
Return values, exceptions (identity, type, ``__cause__``, ``__context__``), purgatory's state,
storage and events (nothing is added to a factory's listeners or message bus) are those of
uninstrumented purgatory. A failure inside the telemetry is logged once on logger
``otel_resilience`` and never raised into the application.
"""

from __future__ import annotations

from typing import ClassVar

from otel_resilience._kit.instrumentor import LibraryInstrumentor
from otel_resilience.purgatory._info import PurgatoryCallInfo

__all__ = ["PurgatoryCallInfo", "PurgatoryInstrumentor"]


class PurgatoryInstrumentor(LibraryInstrumentor[PurgatoryCallInfo]):
    """Instrument purgatory's breakers: call spans, transitions, the breaker metrics."""

    library: ClassVar[str] = "purgatory"
    requirements: ClassVar[tuple[str, ...]] = ("purgatory >= 3.0",)
    patches_module: ClassVar[str] = "otel_resilience.purgatory._patches"
