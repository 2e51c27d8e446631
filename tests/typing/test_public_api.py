"""The typed public surface, and the instrumentation scopes users see in their backends.

- ``tests/typing/accepted.py`` is what users write: ``mypy --strict`` accepts it;
  ``tests/typing/rejected.py`` holds misuses, each marked with the error code mypy must report on
  that line, and no other error;
- the info types and ``SpanHook`` are revealed as what they are, not ``Any``, without the
  libraries being imported at run time;
- spans and metrics carry the public scope ``otel_resilience.<library>`` and the package version.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pybreaker
import pytest
import tenacity

from otel_resilience.version import __version__
from tests.support import ROOT
from tests.support.telemetry import Telemetry

TYPING = Path(__file__).parent
ERROR_MARK = re.compile(r"#\s*error:\s*([a-z-]+)")
MYPY_ERROR = re.compile(r"^[^:]+:(\d+): error: .*\[([a-z-]+)\]$")


def mypy(path: Path, tmp_path: Path) -> tuple[int, list[str]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    return done.returncode, done.stdout.splitlines()


def test_mypy_strict_accepts_what_users_write(tmp_path: Path) -> None:
    status, lines = mypy(TYPING / "accepted.py", tmp_path)
    assert (status, lines) == (0, [])


def test_mypy_strict_rejects_each_misuse_and_nothing_else(tmp_path: Path) -> None:
    source = (TYPING / "rejected.py").read_text().splitlines()
    expected = {
        (number, match.group(1))
        for number, line in enumerate(source, start=1)
        if (match := ERROR_MARK.search(line))
    }
    status, lines = mypy(TYPING / "rejected.py", tmp_path)
    reported = {(int(m.group(1)), m.group(2)) for line in lines if (m := MYPY_ERROR.match(line))}
    assert status == 1
    assert reported == expected, "\n".join(lines)


def test_public_types_are_revealed_not_any(tmp_path: Path) -> None:
    status, lines = mypy(TYPING / "revealed.py", tmp_path)
    revealed = [line.split("Revealed type is ", 1)[1] for line in lines if "Revealed type is" in line]
    assert status == 0, lines
    breaker_info, retry_info, span_hook = (text.replace("builtins.", "") for text in revealed)
    assert "(breaker: pybreaker.CircuitBreaker, name: str, state: str, outcome: str," in breaker_info
    assert breaker_info.endswith('-> otel_resilience.pybreaker._info.BreakerCallInfo"')
    assert "(retry_state: " in retry_info
    assert "tenacity.RetryCallState" in retry_info
    assert retry_info.endswith('-> otel_resilience.tenacity._info.RetryCallInfo"')
    assert span_hook.endswith('SpanHook[InfoT_contra]"')
    assert "Any" not in breaker_info + retry_info + span_hook


def test_info_types_import_without_their_libraries() -> None:
    code = (
        "import sys\n"
        "from otel_resilience.pybreaker import BreakerCallInfo, PyBreakerInstrumentor\n"
        "from otel_resilience.tenacity import RetryCallInfo, TenacityInstrumentor\n"
        "from otel_resilience import SpanHook\n"
        "print(sorted(m for m in ('pybreaker', 'tenacity') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_spans_and_metrics_carry_the_public_scope(
    breaker_telemetry: Telemetry, retry_telemetry: Telemetry
) -> None:
    pybreaker.CircuitBreaker(name="scoped").call(int)
    tenacity.Retrying(stop=tenacity.stop_after_attempt(1))(int)
    spans = breaker_telemetry.spans()
    scopes = {(s.instrumentation_scope.name, s.instrumentation_scope.version) for s in spans}
    assert scopes == {("otel_resilience.pybreaker", __version__), ("otel_resilience.tenacity", __version__)}
    data = breaker_telemetry.reader.get_metrics_data()
    assert data is not None
    metric_scopes = {
        (scope.scope.name, scope.scope.version, metric.name.split(".")[1])
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {(name, version) for name, version, _ in metric_scopes} == {
        ("otel_resilience.pybreaker", __version__),
        ("otel_resilience.tenacity", __version__),
    }
    assert {kind for name, _, kind in metric_scopes if name.endswith("pybreaker")} == {"circuit_breaker"}
    assert {kind for name, _, kind in metric_scopes if name.endswith("tenacity")} == {"retry"}


@pytest.mark.parametrize("module", ["otel_resilience.pybreaker", "otel_resilience.tenacity"])
def test_guides_have_no_module_getattr(module: str) -> None:
    """The info types are plain names of the package: nothing resolved at attribute access."""
    __import__(module)
    assert "__getattr__" not in vars(sys.modules[module])
