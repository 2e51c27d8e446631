"""The project's tasks, one nox session each: ``nox -l`` lists them, ``nox`` alone runs them all.

Every session runs in the environment nox itself runs in: ``scripts/bootstrap`` makes ``.venv`` with
the test extras and the local stack's binaries, so ``.venv/bin/nox -s unit`` starts at once. Only
``pythons`` makes environments of its own, one per CPython version, under ``.cache/venvs/``.

    .venv/bin/nox                      # everything the README's test command promises (CI runs this)
    .venv/bin/nox -s unit              # seconds: the in-process tests
    .venv/bin/nox -s unit -- -k kit    # arguments after -- go to pytest
    .venv/bin/nox -s docs -- write     # regenerate the generated documents instead of checking them
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
PYTHON = sys.executable
LINTED = [
    *("otel_resilience", "devtools", "tests", "examples", "bench", "noxfile.py"),
    *("scripts/stack", "collector/build"),
]
"""ruff's paths: the stack tool's launchers have no .py suffix, so they are named."""
LAYERS = ("unit", "properties", "integration", "upstream", "e2e")
"""The test layers (folders of ``tests/`` and pytest markers), fastest first."""
PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
README_BLOCKS = "tests/integration/test_code_blocks.py::test_every_code_block_runs[README.md]"

nox.options.sessions = ["lint", "typing", "docs", *LAYERS]
nox.options.default_venv_backend = "none"
nox.options.error_on_external_run = False


def _pytest(session: nox.Session, *arguments: str) -> None:
    session.run(PYTHON, "-m", "pytest", "-p", "no:cacheprovider", *arguments, *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint: ruff check and ruff format --check over every Python file of the repository."""
    session.run(PYTHON, "-m", "ruff", "check", *LINTED, external=True)
    session.run(PYTHON, "-m", "ruff", "format", "--check", *LINTED, external=True)


@nox.session
def typing(session: nox.Session) -> None:
    """Typing: mypy --strict on the package and the stack tool, and the public-API typing tests."""
    session.run(PYTHON, "-m", "mypy", external=True)
    if sys.version_info >= (3, 11):
        # The dashboard generator at the Python its builder needs, without the 3.10 run's exemption.
        session.run(
            PYTHON,
            "-m",
            "mypy",
            "--config-file=",
            "--strict",
            "--python-version",
            "3.11",
            "otel_resilience/_dashboards",
            external=True,
        )
    else:
        session.warn("otel_resilience/_dashboards not checked: grafana-foundation-sdk needs Python 3.11+")
    _pytest(session, "-m", "typing", "tests/typing")


def _documents() -> dict[str, list[str]]:
    """Each generated document, and the command that prints it."""
    return {
        "docs/telemetry.md": [PYTHON, "-m", "otel_resilience.contract", "telemetry"],
        "docs/diagnostics.md": [PYTHON, "-m", "otel_resilience.contract", "diagnostics"],
        "docs/options.md": [PYTHON, "-m", "otel_resilience._kit.settings"],
    }


@nox.session
def docs(session: nox.Session) -> None:
    """Regenerate the documents and dashboards made from code and fail on any difference.

    ``nox -s docs -- write`` writes them instead.
    """
    write = "write" in session.posargs
    stale = []
    for document, command in _documents().items():
        printed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        path = ROOT / document
        if write:
            path.write_text(printed)
        elif path.read_text() != printed:
            stale.append(document)
    with tempfile.TemporaryDirectory() as generated:
        out = ROOT / "dashboards" if write else Path(generated)
        session.run(PYTHON, "-m", "otel_resilience", "dashboards", "--out", str(out), external=True)
        if not write:
            stale += [
                f"dashboards/{made.name}"
                for made in sorted(Path(generated).glob("*.json"))
                if (ROOT / "dashboards" / made.name).read_text() != made.read_text()
            ]
    if stale:
        session.error(f"stale: {', '.join(stale)} (regenerate with: nox -s docs -- write)")


def _layer(name: str, description: str) -> None:
    def run(session: nox.Session) -> None:
        _pytest(session, "-m", name, f"tests/{name}")

    run.__doc__ = description
    nox.session(name=name)(run)


_layer("unit", "In-process tests of behaviour, options, faults, lifecycle and the kit: seconds.")
_layer("properties", "Hypothesis differential tests against uninstrumented twins.")
_layer("integration", "Subprocesses, opentelemetry-instrument, Redis, promtool, compose-go, threads.")
_layer("upstream", "The instrumented libraries' own test suites, with the instrumentation active.")
_layer("e2e", "The demo through the real collector, Prometheus and Jaeger of the local stack.")


@nox.session
def pythons(session: nox.Session) -> None:
    """The unit, property and integration tests on every CPython 3.9-3.13 on the machine."""
    summary = []
    for version in PYTHON_VERSIONS:
        interpreter = _find_python(version)
        if interpreter is None:
            summary.append(f"python{version}: not on this machine")
            continue
        env = ROOT / ".cache" / "venvs" / f"py{version}"
        if not (env / "bin" / "python").exists():
            session.run(interpreter, "-m", "venv", str(env), external=True)
        python = str(env / "bin" / "python")
        session.run(python, "-m", "pip", "install", "-q", "-e", ".[test]", external=True)
        layers = "unit or properties or integration"
        # The README's dashboards command needs grafana-foundation-sdk, which needs Python 3.11.
        older = ["--deselect", README_BLOCKS] if version in ("3.9", "3.10") else []
        done = subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", layers, *older, *session.posargs],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
        )
        (env / "pytest.log").write_text(done.stdout + done.stderr)
        last = (done.stdout.strip().splitlines() or ["no output"])[-1]
        summary.append(f"python{version}: {last}")
    session.log("\n" + "\n".join(summary))
    if any(" failed" in line or "error" in line for line in summary):
        session.error("a Python version failed: see .cache/venvs/py*/pytest.log")


def _find_python(version: str) -> str | None:
    """The interpreter of ``version``: pyenv's (its shims answer only for the selected one), or PATH's."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(
        pyenv.glob(f"{version}.*/bin/python{version}"), key=lambda p: [int(x) for x in p.parts[-3].split(".")]
    )
    return str(found[-1]) if found else shutil.which(f"python{version}")


@nox.session
def benchmark(session: nox.Session) -> None:
    """The benchmarks: overhead (about 100 s; writes bench/results.json), fault guard, thread safety.

    ``bench/thread_safety.py`` is pybreaker's thread-safety test as a benchmark (about 15 s).
    """
    session.run(PYTHON, "bench/overhead.py", *session.posargs, external=True)
    session.run(PYTHON, "bench/fault_guard.py", external=True)
    session.run(PYTHON, "bench/thread_safety.py", external=True)


@nox.session(name="upstream-pybreaker")
def upstream_pybreaker(session: nox.Session) -> None:
    """The pybreaker suite (not in its sdist): ``nox -s upstream-pybreaker -- PATH_TO_CHECKOUT``.

    PATH is a checkout of the danielfm/pybreaker repository at tag v1.4.1. Its tests run, with the
    instrumentation active, against a real redis-server on 127.0.0.1:6379 that the session starts.
    """
    checkout = Path(session.posargs[0]) if len(session.posargs) == 1 else None
    if checkout is None or not (checkout / "tests" / "pybreaker_test.py").is_file():
        session.error("usage: nox -s upstream-pybreaker -- PATH_TO_PYBREAKER_CHECKOUT (at tag v1.4.1)")
    if shutil.which("redis-server") is None:
        session.error("redis-server is missing: run scripts/bootstrap")
    session.run(PYTHON, "-m", "pip", "install", "-q", "mock", "fakeredis", "tornado", "redis", external=True)
    with tempfile.TemporaryDirectory() as work:
        # The tests without the checkout's sources, so that the installed pybreaker is what runs.
        shutil.copytree(checkout / "tests", Path(work) / "tests")
        redis = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"],
            cwd=work,
            stdout=subprocess.DEVNULL,
        )
        try:
            session.chdir(work)
            session.run(
                PYTHON, "-m", "pytest", "tests", "-p", "otel_upstream_plugin", "-p", "no:cacheprovider", "-q",
                "-o", "asyncio_default_fixture_loop_scope=function",
                env={"PYTHONPATH": str(ROOT / "tests" / "upstream"), "OTEL_UPSTREAM_LIBRARIES": "pybreaker"},
                external=True,
            )  # fmt: skip
        finally:
            redis.terminate()
            redis.wait(timeout=30)


def _checkout(session: nox.Session, name: str, tag: str, marker: str) -> Path:
    """The one argument: a checkout of the library's repository at ``tag`` (``marker`` must exist)."""
    checkout = Path(session.posargs[0]) if len(session.posargs) == 1 else None
    if checkout is None or not (checkout / marker).exists():
        session.error(f"usage: nox -s upstream-{name} -- PATH_TO_{name.upper()}_CHECKOUT (at tag {tag})")
    return checkout


def _upstream_runs(session: nox.Session, python: str, library: str, *pytest_arguments: str) -> None:
    """The suite in the current folder twice: uninstrumented, then with the instrumentation active."""
    command = [python, "-m", "pytest", *pytest_arguments, "-p", "no:cacheprovider", "-q"]
    session.log("uninstrumented:")
    session.run(*command, external=True)
    session.log("instrumented:")
    session.run(
        *command, "-p", "otel_upstream_plugin",
        env={"PYTHONPATH": str(ROOT / "tests" / "upstream"), "OTEL_UPSTREAM_LIBRARIES": library},
        external=True,
    )  # fmt: skip


@nox.session(name="upstream-backoff")
def upstream_backoff(session: nox.Session) -> None:
    """The backoff suite (not in its sdist or wheel): ``nox -s upstream-backoff -- PATH_TO_CHECKOUT``.

    PATH is a checkout of the litl/backoff repository at tag v2.2.1. Its tests need pytest 7 and
    pytest-asyncio 0.18 (they use the ``event_loop`` fixture, gone from later releases), so they run
    in an environment of their own, ``.cache/venvs/upstream-backoff``. The plugin instruments before
    the test modules import backoff: their decorations are made while instrumented.
    """
    checkout = _checkout(session, "backoff", "v2.2.1", "tests/test_backoff.py")
    env = ROOT / ".cache" / "venvs" / "upstream-backoff"
    python = str(env / "bin" / "python")
    if not Path(python).exists():
        session.run(PYTHON, "-m", "venv", str(env), external=True)
        session.run(
            python, "-m", "pip", "install", "-q", "pytest>=7,<8", "pytest-asyncio==0.18.3", "requests",
            "responses<0.21", "backoff==2.2.1", "-e", str(ROOT),
            external=True,
        )  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        # The tests without the checkout's sources, so that the installed backoff is what runs.
        shutil.copytree(checkout / "tests", Path(work) / "tests")
        session.chdir(work)
        _upstream_runs(session, python, "backoff", "tests")


@nox.session(name="upstream-purgatory")
def upstream_purgatory(session: nox.Session) -> None:
    """The purgatory unit tests (not in its sdist or wheel): ``nox -s upstream-purgatory -- PATH``.

    PATH is a checkout of the mardiros/purgatory repository at tag v3.0.1; ``tests/unittests`` runs.
    """
    checkout = _checkout(session, "purgatory", "v3.0.1", "tests/unittests")
    with tempfile.TemporaryDirectory() as work:
        shutil.copytree(checkout / "tests", Path(work) / "tests")
        session.chdir(work)
        _upstream_runs(
            session, PYTHON, "purgatory", "tests/unittests",
            "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
        )  # fmt: skip


@nox.session(name="upstream-aiobreaker")
def upstream_aiobreaker(session: nox.Session) -> None:
    """The aiobreaker suite, from its wheel (a top-level ``test`` package): ``nox -s upstream-aiobreaker``.

    Its tests import ``_pytest.python_api``, gone in pytest 8: they run in an environment of their own,
    ``.cache/venvs/upstream-aiobreaker``, from outside site-packages.
    """
    env = ROOT / ".cache" / "venvs" / "upstream-aiobreaker"
    python = str(env / "bin" / "python")
    if not Path(python).exists():
        session.run(PYTHON, "-m", "venv", str(env), external=True)
        session.run(
            python, "-m", "pip", "install", "-q", "pytest>=7,<8", "pytest-asyncio<0.22", "fakeredis",
            "aiobreaker==1.2.0", "-e", str(ROOT),
            external=True,
        )  # fmt: skip
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        shutil.copytree(Path(site) / "test", Path(work) / "test")
        session.chdir(work)
        _upstream_runs(session, python, "aiobreaker", "test")
