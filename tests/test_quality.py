"""Lint, format and strict typing are part of the test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The stack tool's launchers have no .py suffix, so they are named; mypy's files are in pyproject.toml.
LINTED = ["otel_resilience", "devtools", "tests", "examples", "bench", "scripts/stack", "collector/build"]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", *LINTED],
        ["ruff", "format", "--check", *LINTED],
        ["mypy"],
        # The dashboard generator at the Python its builder needs, without the 3.10 run's exemption.
        pytest.param(
            ["mypy", "--config-file=", "--strict", "--python-version", "3.11", "otel_resilience/_dashboards"],
            marks=pytest.mark.skipif(
                sys.version_info < (3, 11), reason="grafana-foundation-sdk is installed from Python 3.11 on"
            ),
        ),
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict", "mypy-strict-dashboards"],
)
def test_clean(command: list[str]) -> None:
    done = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
