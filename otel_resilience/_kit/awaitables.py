"""Awaitables followed to their end: what a library hands back still works wherever the original did.

A proxy (``wrapt.ObjectProxy``) stands in for the awaitable: ``isinstance``, attributes (``cr_frame``,
``__qualname__``...) and ``repr`` are the original's, so ``asyncio`` (tasks, ``gather``,
``wait_for``), ``anyio`` and ``trio`` take it as they take the original. Its first ``await`` (or, for
a coroutine, its first ``send``) runs through ``follow(original)``, a generator that delegates to
the original's ``__await__`` with ``yield from`` and records around it. Dropped without being
awaited, the proxy frees the original, and Python warns that *the original* was never awaited;
``abandoned()`` is called then, from the garbage collector, so it must only queue work.
"""

from __future__ import annotations

import weakref
from collections.abc import Generator
from types import CoroutineType
from typing import Any, Callable

from wrapt import ObjectProxy

Follow = Callable[[Any], Generator[Any, Any, Any]]

_awaitable_types: dict[type, bool] = {CoroutineType: True, type(None): False}


def is_awaitable(value: object) -> bool:
    """``inspect.isawaitable`` for what a guarded function returned, cached by type (hot path)."""
    value_type = type(value)
    known = _awaitable_types.get(value_type)
    if known is None:
        known = _awaitable_types[value_type] = hasattr(value_type, "__await__")
    return known


class FollowedAwaitable(ObjectProxy[Any]):
    """An awaitable whose first ``await`` runs through ``follow``; later ones go to the original."""

    def __init__(self, awaitable: Any, follow: Follow, abandoned: Callable[[], None]) -> None:
        super().__init__(awaitable)
        self._self_follow: Follow | None = follow
        self._self_driver: Generator[Any, Any, Any] | None = None
        # Until its first step runs; the driver refers to the proxy, so one finaliser covers both.
        self._self_abandoned = weakref.finalize(self, abandoned)

    def _self_drive(self) -> Generator[Any, Any, Any]:
        driver = self._self_driver
        if driver is None:
            follow, self._self_follow = self._self_follow, None
            if follow is None:  # closed unstarted: the original says what happens now
                return self.__wrapped__.__await__()  # type: ignore[no-any-return]
            driver = self._self_driver = self._self_driven(follow)
        return driver

    def _self_driven(self, follow: Follow) -> Generator[Any, Any, Any]:
        self._self_abandoned.detach()  # it runs: ``follow`` sees it to its end
        return (yield from follow(self.__wrapped__))

    def __await__(self) -> Generator[Any, Any, Any]:
        if self._self_driver is not None:  # a second await: the original's answer (a coroutine refuses)
            return self.__wrapped__.__await__()  # type: ignore[no-any-return]
        return self._self_drive()


class FollowedCoroutine(FollowedAwaitable):
    """A coroutine: also driven directly by ``send``/``throw``/``close``, as event loops do."""

    def send(self, value: Any) -> Any:
        return self._self_drive().send(value)

    def throw(self, *args: Any) -> Any:
        return self._self_drive().throw(*args)

    def close(self) -> None:
        if self._self_driver is None:  # never started: closing runs none of its code
            self._self_follow = None
            self.__wrapped__.close()
        else:
            self._self_driver.close()


def follow_awaitable(awaitable: Any, follow: Follow, abandoned: Callable[[], None]) -> FollowedAwaitable:
    """The proxy for ``awaitable``: a coroutine stays a coroutine, anything else is only awaitable."""
    proxy = FollowedCoroutine if type(awaitable) is CoroutineType else FollowedAwaitable
    return proxy(awaitable, follow, abandoned)
