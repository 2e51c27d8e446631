"""automat's own test suite, shipped in its wheel as ``automat._test``, passes instrumented.

Without graphviz and Twisted some tests skip, as they do uninstrumented (the instrumented counts must
equal those of an uninstrumented run). It runs from an empty folder, away from this repository's
pytest configuration and conftest.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from tests.support.upstream_suites import assert_same_counts_and_active, run_suite, summary

VERSION = "25.4.16"
ARGUMENTS = ["--pyargs", "automat._test", "-W", "error::pytest.PytestUnraisableExceptionWarning"]


def test_automat_suite_passes_instrumented_as_uninstrumented(tmp_path: Path) -> None:
    assert importlib.metadata.version("automat") == VERSION, "the suite is that of the installed automat"
    plain = summary(run_suite("automat", ARGUMENTS, tmp_path, instrumented=False))
    assert plain["passed"] > 0
    print(assert_same_counts_and_active(plain, run_suite("automat", ARGUMENTS, tmp_path, instrumented=True)))
