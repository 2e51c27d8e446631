"""Names of for-attempt loops as the instrumentation gives them: the code that runs the loop."""

from __future__ import annotations

import inspect
from typing import Any


def line_of(function: Any, text: str) -> int:
    lines, first = inspect.getsourcelines(function)
    return next(first + i for i, line in enumerate(lines) if text in line)


def site(function: Any, text: str = "for attempt in") -> str:
    """The name of a for-attempt loop: the code that runs it, ``module.qualname:line``."""
    return f"{function.__module__}.{function.__qualname__}:{line_of(function, text)}"
