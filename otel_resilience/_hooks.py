"""Installing an instrumentor's wrappers and taking them all off again.

Some hook points matter only to calls that are recorded. Until something can record (no SDK
configured), leaving them unwrapped saves every call a wrapt layer for nothing: they are
:class:`LateHooks`, installed before the first recorded call, if ever.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
Targets = list[tuple[type, str, Wrapper]]


class Hooks:
    """The wrappers one instrumentor installed, so that ``unwrap_all`` restores every original."""

    def __init__(self) -> None:
        self._wrapped: list[tuple[type, str]] = []
        self._late: list[LateHooks] = []
        self._lock = threading.Lock()  # late hooks are installed from whichever thread records first

    def wrap(self, targets: Targets) -> None:
        with self._lock:
            self._wrap_locked(targets)

    def later(self, targets: Targets) -> LateHooks:
        late = LateHooks(self, targets)
        with self._lock:
            self._late.append(late)
        return late

    def install(self, late: LateHooks) -> None:
        with self._lock:
            if late.targets is not None:  # None: installed, or uninstrumented meanwhile
                self._wrap_locked(late.targets)
                late.targets = None
            late.installed = True

    def unwrap_all(self) -> None:
        with self._lock:
            while self._late:
                self._late.pop().targets = None  # never installed after this
            while self._wrapped:
                unwrap(*self._wrapped.pop())

    def _wrap_locked(self, targets: Targets) -> None:
        for owner, attribute, wrapper in targets:
            wrap_function_wrapper(owner, attribute, wrapper)
            self._wrapped.append((owner, attribute))


class LateHooks:
    """Hook points only recorded calls need: ``install()`` before the first one."""

    __slots__ = ("_hooks", "installed", "targets")

    def __init__(self, hooks: Hooks, targets: Targets) -> None:
        self._hooks = hooks
        self.targets: Targets | None = targets
        self.installed = False

    def install(self) -> None:
        self._hooks.install(self)
