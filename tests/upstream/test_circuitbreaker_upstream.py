"""circuitbreaker's own test suite, from the sdist of circuitbreaker 2.1.3, passes with our instrumentation
active.

The sdist is downloaded by package name with pip (once; cached under ``.cache/upstream/``), its
``circuitbreaker.py`` is moved aside so that the installed circuitbreaker is the one tested, and its
``tests/`` run in a subprocess with ``tests/upstream/otel_upstream_plugin.py``. The sdist lacks the
repository's ``pytest.ini`` (``asyncio_mode = auto``), given here with ``-o``: without it 44 of the 63
tests fail, instrumented or not. A failed download fails this test: it never skips.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys

from tests.support import ROOT
from tests.support.upstream_suites import assert_all_passed, unpacked_sdist

VERSION = "2.1.3"
UPSTREAM_TESTS = 63


def run_suite(*, instrumented: bool) -> tuple[str, str]:
    """pytest's summary line of the suite, and the plugin's line (empty when not instrumented)."""
    assert importlib.metadata.version("circuitbreaker") == VERSION, "the suite is the installed one's"
    plugin = ["-p", "otel_upstream_plugin"] if instrumented else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "upstream"), os.environ.get("PYTHONPATH", "")]),
        "OTEL_UPSTREAM_LIBRARIES": "circuitbreaker",
    }
    command = [
        sys.executable, "-m", "pytest", "tests", *plugin, "-p", "no:cacheprovider", "-q",
        "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
        "-W", "error::pytest.PytestUnraisableExceptionWarning",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        cwd=unpacked_sdist("circuitbreaker", VERSION, "circuitbreaker.py"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    summary = assert_all_passed(output, done.returncode, UPSTREAM_TESTS)
    active = re.search(r"instrumentation active: (\d+) spans, (\d+) metric data points", output)
    return summary, "" if active is None else active.group(0)


def test_circuitbreaker_suite_passes_uninstrumented_and_instrumented() -> None:
    bare, _ = run_suite(instrumented=False)
    summary, active = run_suite(instrumented=True)
    assert active, "the plugin did not report: the instrumentation was not loaded"
    spans = int(re.findall(r"\d+", active)[0])
    assert spans > 0, "the instrumentation made no spans: it was not active"
    print("uninstrumented:", bare, "| instrumented:", summary, "|", active)
