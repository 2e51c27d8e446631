"""The local telemetry stack without docker, and the installs the test suite needs.

Split by concern: `components` (what each process is, its ports and health checks), `install` (Debian
packages with root escalation, Go and the tools built with it), `ports` (/proc/net/tcp parsing, who
listens where), `processes` (pid files, start and stop), `cli` (the commands of scripts/stack and
collector/build). Python 3 standard library only: scripts/stack, collector/build and the tests run it
with whatever python3 is there, before any virtualenv exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent.parent
COLLECTOR_DIR = ROOT / "collector"
CACHE = ROOT / ".cache"
STATE = CACHE / "stack"
TOOLS = CACHE / "tools"
HOST = "127.0.0.1"


class StackError(Exception):
    """A failure with a message meant for the user."""


def say(message: str) -> None:
    """Progress and errors go to stderr (stdout is for --json and for paths)."""
    print(message, file=sys.stderr, flush=True)


def step(message: str) -> None:
    """A top-level progress line."""
    say(f"==> {message}")


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on path for the duration of the with-block: one build, one `up` at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
