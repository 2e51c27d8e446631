"""OpenTelemetry instrumentation for `tenacity <https://github.com/jd/tenacity>`_ retries.

Usage
-----
Every code block of this guide runs in the tests, in order, in one folder. An application whose
price lookup fails twice, then answers:

.. code-block:: python
   :caption: prices.py

   import tenacity

   answers = iter([TimeoutError("slow"), TimeoutError("slow"), 4.2])


   @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(0.01))
   def price() -> float:
       answer = next(answers)
       if isinstance(answer, Exception):
           raise answer
       return answer


   print(price())

With no code change, run it under ``opentelemetry-instrument``: the entry point ``tenacity`` (group
``opentelemetry_instrumentor``) instruments every retry: one operation span with three attempt
children here, printed by the console exporters (over OTLP without them).
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=tenacity`` turns it off, ``OTEL_PYTHON_RESILIENCE_METRICS_ONLY=true``
keeps metrics only:

.. code-block:: sh

   opentelemetry-instrument --traces_exporter console --metrics_exporter console python prices.py
   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=tenacity opentelemetry-instrument python prices.py
   OTEL_PYTHON_RESILIENCE_METRICS_ONLY=true opentelemetry-instrument python prices.py

Or instrument in code, before or after the retrying objects and decorated functions are created. A
``span_hook`` receives each operation and attempt span with a frozen :class:`RetryCallInfo` before it
ends; ``exception_messages=False`` records exception types only, not their messages;
``metrics_only=True`` records no spans:

.. code-block:: python

   import tenacity
   from opentelemetry.sdk.trace import TracerProvider
   from opentelemetry.trace import Span

   from otel_resilience.tenacity import RetryCallInfo, TenacityInstrumentor


   def mark_retries(span: Span, info: RetryCallInfo) -> None:
       span.set_attribute("app.retried", info.attempts > 1)


   instrumentor = TenacityInstrumentor()
   instrumentor.instrument(tracer_provider=TracerProvider(), span_hook=mark_retries, exception_messages=False)
   tenacity.Retrying(stop=tenacity.stop_after_attempt(2))(len, "ok")
   instrumentor.uninstrument()
   instrumentor.instrument(metrics_only=True)

Every way of using tenacity is covered: ``@retry`` on functions and coroutine functions,
``Retrying(...)(fn)``, ``fn.retry_with(...)``, ``for attempt in Retrying(...): with attempt:``
(also left with ``return`` or ``break``), ``async for attempt in AsyncRetrying(...)`` (also with
tasks sharing one ``AsyncRetrying``), ``TornadoRetrying``, and stamina's ``stamina.retry`` and
``stamina.retry_context``, which run tenacity's for-attempt loops.

What you get
------------
- One INTERNAL span per retried operation, named with the operation name, covering all attempts
  and backoff sleeps, with ``resilience.retry.name``, ``resilience.outcome`` and
  ``resilience.retry.attempts``. Its status is ERROR only when the operation finally fails (an
  error a later attempt recovered from is not the operation's error).
- One child span per attempt, ``<name> attempt``, with ``resilience.retry.attempt`` (1-based) and
  the attempt's outcome; the application's own spans made inside the attempt are its children. A
  failed attempt has status ERROR, ``error.type`` and the exception recorded. Each backoff is a
  ``retry.backoff`` event on the attempt that failed, with ``resilience.retry.backoff`` (seconds).
- Metrics ``resilience.retry.calls``, ``...call.duration`` and ``...call.attempts`` (attempts per
  operation, the retry-storm signal) per operation; ``resilience.retry.attempts`` and
  ``...attempt.duration`` per attempt; ``...backoff.duration`` per sleep tenacity decided on.
  ``docs/telemetry.md`` lists every name, unit, attribute and value.

How operations are counted:

- ``success_without_retry`` / ``success_with_retry``: the operation returned, on the first
  attempt or after retries. ``failed_without_retry`` / ``failed_with_retry``: it raised (a
  non-retryable error, or tenacity stopped) after one attempt or several.
- ``error.type`` of a failed attempt is its exception's class; an attempt whose result the retry
  policy rejected (``retry_if_result``) has none, and reports ``result``. A failed operation reports
  the exception it raised, except a ``RetryError``, which says only that tenacity gave up: then
  the last attempt's ``error.type`` (as ``reraise=True`` would show), so the same failure reads the
  same with or without ``reraise``. The operation span records the exception raised unless an
  attempt span has it already (the attempt's own exception, or the one a ``RetryError`` wraps).
- A ``retry_error_callback`` that returns a value after the stop counts as a failed operation
  with the last attempt's ``error.type``: every attempt failed and tenacity gave up; the
  callback's value is a fallback that hides the failure from the caller, and showing that
  failure is what these metrics are for. (tenacity < 8.3 keeps no record of its verdict: there,
  if the last attempt returned a rejected result, the operation counts as a success.)
- A for-attempt loop left with ``return`` or ``break`` never asks tenacity again: its last
  attempt succeeded unless its body raised, and the operation ends when that attempt ended. An
  operation abandoned during a backoff sleep (cancelled, interrupted) failed with its last
  attempt's error. A generator closed inside ``with attempt:`` (a consumer that stopped early)
  ends like a ``break``. Such operations are recorded, with their real end time, once tenacity's
  ``RetryCallState`` is freed (for a ``for`` loop, when the loop and its ``attempt`` variable are
  gone; an ``AsyncRetrying`` keeps it until it is collected or iterated again): when the next
  retried operation starts, or at ``uninstrument()``, never from the garbage collector itself.
- In a generator (sync or async) the attempt span is not made current inside ``with attempt:``:
  a ``yield`` there would carry it into the consumer's code.

Operation names
---------------
tenacity's ``name=`` (tenacity 9.2+) when given; else ``module.qualname`` of the retried function
(decorators, ``Retrying(...)(fn)``); else, for for-attempt loops, the function stamina retries
(``stamina.retry``), or the code that runs the loop, ``module.qualname:line`` (``module:line`` at
module level): the same in every process running the same code.

Options
-------
The options every instrumentor of this package takes, with their environment variables, are in
``docs/options.md`` (and ``instrument()``'s docstring). Here ``max_names`` caps distinct operation names,
``metrics_only`` also means no context changes, and the span hook's ``info`` is a :class:`RetryCallInfo`.
``suppress_instrumentation()`` leaves out the operations that start inside it.

Guarantees
----------
Return values, exceptions (identity, type, ``__cause__``, ``__context__``, tracebacks: the same
frames, with this package's wrapper frames among tenacity's), callback calls (``before``,
``after``, ``before_sleep``, ``retry``, ``stop``, ``wait``, ``retry_error_callback``),
``statistics`` and sleeps are those of uninstrumented tenacity; nothing is added to tenacity's
objects (they stay picklable). tenacity's own test suite passes with the instrumentation active.
A failure inside the telemetry is logged once on logger ``otel_resilience`` and never raised into
the application.
"""

from __future__ import annotations

from typing import ClassVar

from otel_resilience._kit.instrumentor import LibraryInstrumentor
from otel_resilience.tenacity._info import RetryCallInfo

__all__ = ["RetryCallInfo", "TenacityInstrumentor"]


class TenacityInstrumentor(LibraryInstrumentor[RetryCallInfo]):
    """Instrument every tenacity retry: operation and attempt spans, backoff events, metrics."""

    library: ClassVar[str] = "tenacity"
    requirements: ClassVar[tuple[str, ...]] = ("tenacity >= 8.2",)
    patches_module: ClassVar[str] = "otel_resilience.tenacity._patches"
