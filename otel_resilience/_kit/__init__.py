"""The instrumentation kit: everything that does not depend on the instrumented library.

A library's instrumentation is one package, ``otel_resilience/<library>/``: a user guide and
instrumentor class (``__init__.py``), the frozen dataclass its span hook receives (``_info.py``),
its patch points (``_patches.py``) and what it records (``_telemetry.py``). It builds on:

- :mod:`.instrumentor`: ``LibraryInstrumentor``, ``instrument()``/``uninstrument()`` for every library;
- :mod:`.settings`: the options, from keyword arguments or environment variables;
- :mod:`.patching`: wrapt patches, installed now or once something records, and removed completely;
- :mod:`.gate`: the SDK gate, closed (pass-through) until a real SDK provider exists;
- :mod:`.recording`: ``Recorder`` (tracer, meter, span hook, gate) and the current span;
- :mod:`.names`: names as reported (cardinality cap, series from 0), cached attribute sets;
- :mod:`.instances`: the library's live objects, held weakly, with where each was created;
- :mod:`.instruments`: instruments from the contract, observable ones reading the active recorder;
- :mod:`.exceptions`: ``error.type`` and exceptions on spans;
- :mod:`.diagnostics`: misuse findings, logged once and counted;
- :mod:`.deferred`: work queued where it must not run (garbage-collector callbacks);
- :mod:`.faults`: our own failures contained and logged once.
"""
