"""Patching a library: installing wrapt wrappers on its classes, and taking every one off again.

Some patch points matter only to calls that are recorded. Until something can record (no SDK
configured), leaving them unpatched saves every call a wrapt layer for nothing: they are *late*
patches, installed when the SDK gate first opens, if ever.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

if TYPE_CHECKING:
    from types import ModuleType

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
"""A wrapt wrapper: ``(wrapped, instance, args, kwargs)``."""
PatchTarget = tuple["type | ModuleType", str, Wrapper]
"""(class or module, attribute, wrapper)."""
Observer = Callable[[Any, tuple[Any, ...], dict[str, Any], Any], None]
"""``observe(instance, args, kwargs, result)``: what a patch does after the original returned."""


def after_call(observe: Observer) -> Wrapper:
    """A wrapper that runs the original, then ``observe`` with its result, and returns that result.

    The most common patch: the library did something (created a breaker, changed state, judged an
    exception), and the telemetry notes it. ``observe`` contains its own faults.
    """

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        observe(instance, args, kwargs, result)
        return result

    return wrapper


@dataclass(frozen=True)
class PatchPlan:
    """What a library's instrumentation patches: now, and once something can record."""

    eager: list[PatchTarget]
    late: list[PatchTarget] = field(default_factory=list)


class Patches:
    """The patches one instrumentor installed, so that :meth:`remove_all` restores every original."""

    def __init__(self) -> None:
        self._installed: list[tuple[type | ModuleType, str]] = []
        self._late: list[PatchTarget] | None = None
        self._lock = threading.Lock()  # late patches are installed from whichever thread records first

    def apply(self, plan: PatchPlan) -> None:
        """Install the plan's eager patches now; keep its late ones for :meth:`install_late`."""
        with self._lock:
            self._install(plan.eager)
            self._late = list(plan.late)

    def install_late(self) -> None:
        """Install the late patches; idempotent, and a no-op after :meth:`remove_all`."""
        with self._lock:
            if self._late:
                self._install(self._late)
            self._late = None

    def remove_all(self) -> None:
        with self._lock:
            self._late = None  # never installed after this
            while self._installed:
                unwrap(*self._installed.pop())

    def _install(self, targets: list[PatchTarget]) -> None:
        for owner, attribute, wrapper in targets:
            wrap_function_wrapper(owner, attribute, wrapper)
            self._installed.append((owner, attribute))
