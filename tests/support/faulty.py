"""What the fault tests put in place of an instrument, a tracer or a hook: every method raises."""

from __future__ import annotations

from typing import Any


class Broken:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"telemetry fault in {name}")

        return fail
