"""OpenTelemetry instrumentation for `backoff <https://github.com/litl/backoff>`_ retries.

Usage
-----
Every code block of this guide runs in the tests, in order, in one folder. An application whose
stock lookup fails twice, then answers:

.. code-block:: python
   :caption: stock.py

   import backoff

   answers = iter([TimeoutError("slow"), TimeoutError("slow"), 12])


   @backoff.on_exception(backoff.constant, TimeoutError, interval=0.01, max_tries=3)
   def stock() -> int:
       answer = next(answers)
       if isinstance(answer, Exception):
           raise answer
       return answer


   print(stock())

With no code change, run it under ``opentelemetry-instrument``: the entry point ``backoff`` (group
``opentelemetry_instrumentor``) instruments backoff before the application's modules are imported,
so every decorated function gets the full telemetry: one operation span with three attempt
children here. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=backoff`` turns it off:

.. code-block:: sh

   opentelemetry-instrument --traces_exporter console --metrics_exporter console python stock.py
   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=backoff opentelemetry-instrument python stock.py

Or instrument in code, **before** the modules that decorate functions are imported. A
``span_hook`` receives each operation and attempt span with a frozen :class:`BackoffCallInfo`
before it ends:

.. code-block:: python

   from opentelemetry.sdk.trace import TracerProvider
   from opentelemetry.trace import Span

   from otel_resilience.backoff import BackoffCallInfo, BackoffInstrumentor


   def mark_retries(span: Span, info: BackoffCallInfo) -> None:
       span.set_attribute("app.retried", info.attempts > 1)


   BackoffInstrumentor().instrument(tracer_provider=TracerProvider(), span_hook=mark_retries)

   import stock  # decorated now, while instrumented: fully seen

Every decorator form is covered: ``@backoff.on_exception`` and ``@backoff.on_predicate``, on
functions, methods and ``async def`` coroutine functions, stacked or not.

Decorated before or after ``instrument()``
------------------------------------------
backoff builds each decorated function's retry loop once, when the decorator runs. Functions
decorated while instrumented get everything below. Functions decorated **before**
``instrument()`` cannot be seen attempt by attempt: their loops call nothing of backoff's that
says when an attempt starts or when the operation ends. For them only each backoff sleep is
recorded (``resilience.retry.backoff.duration``, with the function's name), and one warning per
function says so. Their calls, attempts, give-ups and spans are **not** recorded: counting what
backoff's handlers see would miss every exception outside ``exception=`` and so tell a wrong
failure rate.

What you get
------------
The ``resilience.retry.*`` contract, as for tenacity, so the same dashboards and alerts apply:

- One INTERNAL span per call of a decorated function, named with the operation name, covering
  all attempts and backoff sleeps, with ``resilience.retry.name``, ``resilience.outcome`` and
  ``resilience.retry.attempts``; status ERROR only when the call finally fails.
- One child span per attempt, ``<name> attempt``, with ``resilience.retry.attempt`` (1-based) and
  the attempt's outcome, current while the attempt runs (the application's spans are its
  children). A failed attempt has status ERROR, ``error.type`` and the exception recorded; each
  backoff is a ``retry.backoff`` event on the attempt that failed, with ``resilience.retry.backoff``
  (seconds, as backoff computed them after jitter and the ``max_time`` cap).
- Metrics ``resilience.retry.calls``, ``...call.duration``, ``...call.attempts``,
  ``...attempts``, ``...attempt.duration`` and ``...backoff.duration``.
- The ``retry_unbounded`` diagnostic for a policy with neither ``max_tries`` nor ``max_time``, and
  ``retry_on_rejection`` when a breaker's rejection is retried.

How calls are counted:

- ``success_without_retry`` / ``success_with_retry``: the function returned an accepted value
  (``on_exception``: it returned; ``on_predicate``: the predicate was false) on the first
  attempt or after retries.
- ``failed_without_retry`` / ``failed_with_retry``: it raised (an exception outside
  ``exception=``, a give-up with ``raise_on_giveup=True``, an exhausted wait generator, a handler
  that raised, a cancellation), or backoff gave up and returned: ``None`` after
  ``raise_on_giveup=False``, or the last rejected value of ``on_predicate`` (``error.type``
  ``result``). A give-up reports the last attempt's ``error.type``.

Operation names
---------------
backoff has no names: the decorated function's ``module.qualname``.

What changes for your handlers
------------------------------
In functions decorated while instrumented, ``details["target"]`` (given to ``on_success``,
``on_backoff`` and ``on_giveup``) and the decorated function's ``__wrapped__`` are a proxy of your
function, not your function itself: its name, qualname, module, docstring and attributes are
your function's, calling it calls your function, ``==`` and ``is`` against your function are
false. The decorated function is a proxy of backoff's loop, with the same name, signature and
attributes (``inspect.iscoroutinefunction`` still tells ``async def`` ones); both proxies are
copied (``copy``, ``deepcopy``) and pickled as functions are. Nothing else that handlers receive
changes.

Traps of backoff itself, shown as backoff behaves
-------------------------------------------------
- A generator function gets no retries (backoff retries the call that creates the generator):
  one attempt, ending when the generator is created.
- Stacked decorators multiply attempts: each layer is its own operation, the inner one a child
  of the outer one's attempt.
- Reusing one decorator object duplicates backoff's default log handlers (litl/backoff#179).

Options
-------
``instrument()`` takes the options of every instrumentor of this package (``docs/options.md``);
here ``max_names`` caps distinct operation names.

Guarantees
----------
Return values, exceptions (identity, type, ``__cause__``, ``__context__``; tracebacks gain this
package's wrapper frames), handler calls, sleeps and waits are those of uninstrumented backoff.
A failure inside the telemetry is logged once on logger ``otel_resilience`` and never raised into
the application. ``uninstrument()`` restores backoff's functions; functions decorated while
instrumented keep their proxies, which then record nothing.
"""

from __future__ import annotations

from typing import ClassVar

from otel_resilience._kit.instrumentor import LibraryInstrumentor
from otel_resilience.backoff._info import BackoffCallInfo

__all__ = ["BackoffCallInfo", "BackoffInstrumentor"]


class BackoffInstrumentor(LibraryInstrumentor[BackoffCallInfo]):
    """Instrument backoff's decorators: operation and attempt spans, backoff events, metrics."""

    library: ClassVar[str] = "backoff"
    requirements: ClassVar[tuple[str, ...]] = ("backoff >= 2.0",)
    patches_module: ClassVar[str] = "otel_resilience.backoff._patches"
