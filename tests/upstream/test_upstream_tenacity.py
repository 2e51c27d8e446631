"""tenacity's own test suite, from the sdist of tenacity 9.2.1, passes with our instrumentation active.

The sdist is downloaded by package name with pip (once; cached under ``.cache/upstream/``), its
``tenacity/`` package is moved aside so that the installed tenacity is the one tested, and its
``tests/`` run in a subprocess with ``tests/upstream/otel_upstream_plugin.py``, which installs SDK
providers and instruments tenacity before any test module is imported. A failed download fails
this test: it never skips.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support.upstream_suites import assert_all_passed, unpacked_sdist

VERSION = "9.2.1"
UPSTREAM_TESTS = 185


@pytest.mark.skipif(sys.version_info < (3, 10), reason=f"tenacity {VERSION} needs Python 3.10")
def test_tenacity_suite_passes_instrumented() -> None:
    assert importlib.metadata.version("tenacity") == VERSION, "the suite is that of the installed tenacity"
    sdist = unpacked_sdist("tenacity", VERSION, "tenacity")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "upstream"), os.environ.get("PYTHONPATH", "")]),
        "OTEL_UPSTREAM_LIBRARIES": "tenacity",
    }
    command = [
        sys.executable, "-m", "pytest", "tests", "-p", "otel_upstream_plugin", "-p", "no:cacheprovider",
        "-q", "-o", "asyncio_default_fixture_loop_scope=function",
        # A fault in a garbage-collector callback of ours would be an "unraisable" exception.
        "-W", "error::pytest.PytestUnraisableExceptionWarning",
        # tenacity's test_sleeps allows an operation 1.1 ms of wall time: on a loaded 2-core machine
        # a run can exceed it. A timing failure gets two more tries; a real failure fails all three.
        "-p", "rerunfailures", "--reruns", "2", "--only-rerun", "AssertionError",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=sdist, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = done.stdout + done.stderr
    summary = assert_all_passed(output, done.returncode, UPSTREAM_TESTS)
    active = re.search(r"instrumentation active: (\d+) spans, (\d+) metric data points", output)
    assert active is not None, output
    assert int(active.group(1)) > 0, "the instrumentation made no spans: it was not active"
    assert int(active.group(2)) > 0, output
    print(summary, "|", active.group(0))
