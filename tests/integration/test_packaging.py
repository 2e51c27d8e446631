"""A fresh environment with only one of the two libraries: `pip install otel-resilience` is enough, and
the missing library disables nothing but its own instrumentation."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

from tests.support import ROOT

APPS = {
    "pybreaker": (
        "import pybreaker\n"
        "b = pybreaker.CircuitBreaker(name='only-breaker')\n"
        "print(b.call(lambda: 'breaker ok'))\n"
    ),
    "tenacity": (
        "import tenacity\n"
        "calls = []\n"
        "@tenacity.retry(wait=tenacity.wait_none())\n"
        "def only_retry():\n"
        "    calls.append(1)\n"
        "    if len(calls) < 2:\n"
        "        raise OSError('once')\n"
        "    return 'retry ok'\n"
        "print(only_retry())\n"
    ),
}
APP_OUTPUT = {"pybreaker": "breaker ok", "tenacity": "retry ok"}
SPAN_NAMES = {"pybreaker": '"name": "only-breaker"', "tenacity": '"name": "__main__.only_retry"'}


@pytest.mark.parametrize("library", ["pybreaker", "tenacity"])
def test_one_library_without_the_other(tmp_path: Path, library: str) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(ROOT), library], check=True, timeout=600)
    missing = "tenacity" if library == "pybreaker" else "pybreaker"
    probe = subprocess.run([python, "-c", f"import {missing}"], capture_output=True, check=False)
    assert probe.returncode != 0, f"{missing} must be absent from this environment"

    app = tmp_path / "app.py"
    app.write_text(APPS[library])
    done = subprocess.run(
        [env_dir / "bin" / "opentelemetry-instrument", "--traces_exporter", "console", "--metrics_exporter",
         "console", "--logs_exporter", "none", python, app],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert done.stdout.splitlines()[0] == APP_OUTPUT[library]
    assert SPAN_NAMES[library] in done.stdout
    assert "Traceback" not in done.stderr, done.stderr
