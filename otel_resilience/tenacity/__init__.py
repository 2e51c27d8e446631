"""OpenTelemetry instrumentation for `tenacity <https://github.com/jd/tenacity>`_ retries.

Usage
-----
With no code change, run the application under ``opentelemetry-instrument``: the entry point
``tenacity`` (group ``opentelemetry_instrumentor``) instruments every retry::

    opentelemetry-instrument --service_name checkout python app.py

Or instrument in code, before or after the retrying objects and decorated functions are created::

    from otel_resilience.tenacity import TenacityInstrumentor

    TenacityInstrumentor().instrument(tracer_provider=..., meter_provider=...)

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
``instrument()`` takes the options every instrumentor of this package takes (its docstring and the
README's options table list them, with their environment variables): ``tracer_provider``,
``meter_provider``, ``metrics_only``, ``span_hook``, ``max_names`` and ``exception_messages``.
Here ``max_names`` caps distinct operation names, ``metrics_only`` also means no context
changes, and ``span_hook(span, info)`` receives a :class:`RetryCallInfo` before each operation
and attempt span ends::

    from otel_resilience.tenacity import RetryCallInfo, TenacityInstrumentor

    def add_attempt_kind(span, info: RetryCallInfo) -> None:
        span.set_attribute("app.retry.first_attempt", info.attempt == 1)

    TenacityInstrumentor().instrument(span_hook=add_attempt_kind)

Turned off by ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=tenacity`` (under ``opentelemetry-instrument``);
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
