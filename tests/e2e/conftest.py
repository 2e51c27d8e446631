"""Fixtures of the end-to-end tests: the local telemetry stack, up for a module and down after it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.pipeline import Stack, run_stack


@pytest.fixture(scope="module")
def binaries() -> dict[str, str]:
    """Paths of the stack's binaries, built or installed when missing (never skipped)."""
    return dict(json.loads(run_stack("install", "--json").stdout))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The local stack, up for the tests of a module and down after them."""
    run_stack("up")
    yield Stack()
    run_stack("down", timeout=120)
