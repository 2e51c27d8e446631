"""python-statemachine's own test suite, from the sdist of 3.2.2, passes with our instrumentation active.

Its ``addopts`` need plugins of its development setup (benchmarks, a debugger): they are replaced, and
the tests that need what is not installed here (Django, Sphinx, benchmarks) skip or are left out, the
same in the uninstrumented run, whose counts the instrumented run must equal.
"""

from __future__ import annotations

import importlib.metadata

from tests.support.upstream_suites import assert_same_counts_and_active, run_suite, summary, unpacked_sdist

VERSION = "3.2.2"
ARGUMENTS = [
    "tests",
    "-o",
    "addopts=",
    "-o",
    "asyncio_mode=auto",
    "-W",
    "error::pytest.PytestUnraisableExceptionWarning",
]
ARGUMENTS += ["--ignore", "tests/examples", "--ignore", "tests/django_project", "-p", "no:randomly"]
# Diagrams need pydot and graphviz, translations a compiled catalogue: neither is about behaviour.
ARGUMENTS += ["--ignore", "tests/test_contrib_diagram.py", "--ignore", "tests/test_translation_names.py"]
ARGUMENTS += ["--ignore", "tests/test_contrib_diagram_graphviz.py"]
# This example seeds Python's global `random` and plays a game from it; the OpenTelemetry SDK's
# default id generator draws span and trace ids from that same global `random`, so any span made
# while it plays (ours, or any instrumentation's) changes its guesses. Not a behaviour of ours: the
# SDK's (an app that needs a reproducible `random` should use its own `random.Random(seed)`).
ARGUMENTS += [
    "--deselect",
    "tests/test_examples.py::test_example[tests/examples/guess_the_number_machine.py]",
]


def test_statemachine_suite_passes_instrumented_as_uninstrumented() -> None:
    assert importlib.metadata.version("python-statemachine") == VERSION
    sdist = unpacked_sdist("python-statemachine", VERSION, "statemachine")
    plain = summary(run_suite("statemachine", ARGUMENTS, sdist, instrumented=False))
    assert plain["passed"] > 0
    print(
        assert_same_counts_and_active(plain, run_suite("statemachine", ARGUMENTS, sdist, instrumented=True))
    )
