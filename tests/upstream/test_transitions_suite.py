"""transitions' own test suite, from the sdist of transitions 0.9.3, passes with our instrumentation active.

Run in a subprocess with ``tests/upstream/otel_upstream_plugin.py``, which installs SDK providers and
instruments transitions before any test module is imported. Without graphviz/pygraphviz the diagram
tests skip, as they do uninstrumented (the counts below are those of an uninstrumented run).
``-p no:asyncio``: transitions' async tests run their own loops.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys

from tests.upstream.sdist import ROOT, unpacked_sdist

VERSION = "0.9.3"


def run_suite(*, instrumented: bool) -> str:
    sdist = unpacked_sdist("transitions", VERSION, "transitions")
    plugin = ["-p", "otel_upstream_plugin"] if instrumented else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "upstream"), os.environ.get("PYTHONPATH", "")]),
        "OTEL_UPSTREAM_LIBRARIES": "transitions",
    }
    command = [
        sys.executable, "-m", "pytest", "tests", *plugin, "-p", "no:cacheprovider", "-p", "no:asyncio",
        "-q", "-W", "error::pytest.PytestUnraisableExceptionWarning",
        # Its code-style check (pycodestyle over its sources) says nothing about behaviour.
        "--ignore", "tests/test_codestyle.py",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=sdist, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    return done.stdout + done.stderr


def summary(output: str) -> dict[str, int]:
    line = re.search(r"^=*\s*(\d+ (passed|failed|skipped).*)$", output, re.MULTILINE)
    assert line is not None, output
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", line.group(1))}


def test_transitions_suite_passes_instrumented_as_uninstrumented() -> None:
    assert importlib.metadata.version("transitions") == VERSION, (
        "the suite is that of the installed transitions"
    )
    plain = summary(run_suite(instrumented=False))
    output = run_suite(instrumented=True)
    instrumented = summary(output)
    assert instrumented == plain, output
    assert set(instrumented) <= {"passed", "skipped"}, output
    active = re.search(r"instrumentation active: (\d+) spans, (\d+) metric data points", output)
    assert active is not None, output
    assert int(active.group(1)) > 0, "the instrumentation made no spans: it was not active"
    print("uninstrumented", plain, "| instrumented", instrumented, "|", active.group(0))
