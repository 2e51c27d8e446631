"""The steps the breaker differential tests draw: a call in one of the library's forms, or another step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, Union

from hypothesis import strategies as st


@dataclass(frozen=True)
class Call:
    """A call through the breaker."""

    form: str
    """How the call is made: one of the library's call forms (each test lists its own)."""
    ending: str
    """How the guarded function ends: ``return``, or a key of the test's exceptions (or as the test says)."""


@dataclass(frozen=True)
class Other:
    """A step that is not a call."""

    action: str
    """A method of the breaker, or the clock moving: ``wait_past_timeout``, ``wait_briefly``."""


Step = Union[Call, Other]
T = TypeVar("T")


def sequences(steps: st.SearchStrategy[T]) -> st.SearchStrategy[list[T]]:
    """Sequences of up to 40 ``steps``, their lengths drawn evenly."""
    return st.integers(0, 40).flatmap(lambda n: st.lists(steps, min_size=n, max_size=n))
