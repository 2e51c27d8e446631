"""Instrumented libraries' own test suites: fetched, run with and without the instrumentation, summed up.

An sdist is downloaded by package name with pip and unpacked once, under ``.cache/upstream/``; its own
copy of the package is moved aside, so that its tests import the installed library, the one our
instrumentation patches. A failed download fails the calling test: it never skips. A suite runs in a
subprocess, instrumented by ``otel_upstream_plugin.py`` (SDK providers installed and the library
instrumented before any test module is imported).
"""

from __future__ import annotations

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


def unpacked_sdist(distribution: str, version: str, package: str) -> Path:
    """``distribution==version``'s sdist, unpacked with ``package/`` renamed ``package-from-sdist/``."""
    target = CACHE / f"{distribution}-{version}"
    if (target / "tests").is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        download = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        done = subprocess.run(
            [*download, f"{distribution}=={version}", "-d", work], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"could not download the {distribution} {version} sdist:\n{done.stderr}"
        (archive_path,) = Path(work).glob("*.tar.gz")
        with tarfile.open(archive_path) as archive:
            if hasattr(tarfile, "data_filter"):  # Pythons with the extraction filters (PEP 706)
                archive.extractall(work, filter="data")
            else:
                archive.extractall(work)
        (unpacked,) = (p for p in Path(work).iterdir() if p.is_dir())
        (unpacked / package).rename(unpacked / f"{package}-from-sdist")
        shutil.move(str(unpacked), target)  # complete, or not there at all
    return target


def run_suite(library: str, arguments: list[str], cwd: Path, *, instrumented: bool) -> str:
    """Run pytest with ``arguments`` in ``cwd``, with ``library`` instrumented or not; its output."""
    plugin = ["-p", "otel_upstream_plugin"] if instrumented else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "upstream"), os.environ.get("PYTHONPATH", "")]),
        "OTEL_UPSTREAM_LIBRARIES": library,
    }
    command = [sys.executable, "-m", "pytest", *arguments, *plugin, "-p", "no:cacheprovider", "-q"]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    return done.stdout + done.stderr


def assert_all_passed(output: str, returncode: int, expected: int) -> str:
    """The suite's run exited 0 and its summary line counts ``expected`` passed and nothing failed, errored
    or skipped: that line."""
    summary = re.search(r"^(\d+) passed\b.*$", output, re.MULTILINE)
    assert summary is not None, output
    assert int(summary.group(1)) == expected, output
    assert not re.search(r"\b\d+ (failed|errors?|skipped)\b", summary.group(0)), output
    assert returncode == 0, output
    return summary.group(0)


def summary(output: str) -> dict[str, int]:
    """pytest's closing counts: passed, failed, skipped, errors."""
    line = re.search(r"^=*\s*(\d+ (passed|failed|skipped).*)$", output, re.MULTILINE)
    assert line is not None, output
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", line.group(1))}


def assert_same_counts_and_active(plain: dict[str, int], output: str) -> str:
    """The instrumented run passed what the plain run passed, and the instrumentation recorded."""
    instrumented = summary(output)
    assert instrumented == plain, output
    assert set(instrumented) <= {"passed", "skipped"}, output
    active = re.search(r"instrumentation active: (\d+) spans, (\d+) metric data points", output)
    assert active is not None, output
    assert int(active.group(1)) > 0, "the instrumentation made no spans: it was not active"
    return f"uninstrumented {plain} | instrumented {instrumented} | {active.group(0)}"
