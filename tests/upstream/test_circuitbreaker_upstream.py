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
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tests.support import ROOT

CACHE = ROOT / ".cache" / "upstream"
VERSION = "2.1.3"
UPSTREAM_TESTS = 63


def unpacked_sdist() -> Path:
    """circuitbreaker's sdist, unpacked without its module, ready to run its tests."""
    target = CACHE / f"circuitbreaker-{VERSION}"
    if (target / "tests").is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        download = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        done = subprocess.run(
            [*download, f"circuitbreaker=={VERSION}", "-d", work], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"could not download the circuitbreaker {VERSION} sdist:\n{done.stderr}"
        with tarfile.open(Path(work) / f"circuitbreaker-{VERSION}.tar.gz") as archive:
            if hasattr(tarfile, "data_filter"):  # Pythons with the extraction filters (PEP 706)
                archive.extractall(work, filter="data")
            else:
                archive.extractall(work)
        unpacked = Path(work) / f"circuitbreaker-{VERSION}"
        (unpacked / "circuitbreaker.py").rename(unpacked / "circuitbreaker-from-sdist.py")
        shutil.move(str(unpacked), target)  # complete, or not there at all
    return target


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
        command, cwd=unpacked_sdist(), env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = done.stdout + done.stderr
    summary = re.search(r"^(\d+) passed\b.*$", output, re.MULTILINE)
    assert summary is not None, output
    assert int(summary.group(1)) == UPSTREAM_TESTS, output
    assert not re.search(r"\b\d+ (failed|errors?|skipped)\b", summary.group(0)), output
    assert done.returncode == 0, output
    active = re.search(r"instrumentation active: (\d+) spans, (\d+) metric data points", output)
    return summary.group(0), "" if active is None else active.group(0)


def test_circuitbreaker_suite_passes_uninstrumented_and_instrumented() -> None:
    bare, _ = run_suite(instrumented=False)
    summary, active = run_suite(instrumented=True)
    assert active, "the plugin did not report: the instrumentation was not loaded"
    spans = int(re.findall(r"\d+", active)[0])
    assert spans > 0, "the instrumentation made no spans: it was not active"
    print("uninstrumented:", bare, "| instrumented:", summary, "|", active)
