"""transitions' own test suite, from the sdist of transitions 0.9.3, passes with our instrumentation active.

Without graphviz/pygraphviz the diagram tests skip, as they do uninstrumented (the instrumented counts
must equal those of an uninstrumented run). ``-p no:asyncio``: transitions' async tests run their own
loops. Its code-style check (pycodestyle over its sources) says nothing about behaviour and is left out.
"""

from __future__ import annotations

import importlib.metadata

from tests.support.upstream_suites import assert_same_counts_and_active, run_suite, summary, unpacked_sdist

VERSION = "0.9.3"
ARGUMENTS = ["tests", "-p", "no:asyncio", "-W", "error::pytest.PytestUnraisableExceptionWarning"]
ARGUMENTS += ["--ignore", "tests/test_codestyle.py"]


def test_transitions_suite_passes_instrumented_as_uninstrumented() -> None:
    assert importlib.metadata.version("transitions") == VERSION, (
        "the suite is that of the installed transitions"
    )
    sdist = unpacked_sdist("transitions", VERSION, "transitions")
    plain = summary(run_suite("transitions", ARGUMENTS, sdist, instrumented=False))
    print(assert_same_counts_and_active(plain, run_suite("transitions", ARGUMENTS, sdist, instrumented=True)))
