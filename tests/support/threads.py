"""Running one worker in several threads at once, and counting what they saw, as the concurrency tests do."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def run_threads(count: int, worker: Callable[[int], object]) -> None:
    """``worker(index)`` in ``count`` threads released together by a barrier; returns once all have ended.

    An exception a worker raised is raised again here (the first one), so that no failure goes unseen.
    """
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        start.wait()
        try:
            worker(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class Tally(Counter[str]):
    """What the threads saw, by kind: ``add(kind)`` counts one, safely from any thread."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(self, kind: str) -> None:
        with self._lock:
            self[kind] += 1


class PerThreadStatistics(dict):  # type: ignore[type-arg]
    """A decorated function's ``statistics``: one dict per thread, as tenacity documents them.

    tenacity 9.2 gives every call of a decorated function the function's one ``statistics`` dict
    and clears it when a call starts (jd/tenacity#701, open): threads sharing the function clear
    each other's, and one dies of ``KeyError: 'idle_for'`` now and then, instrumented or not
    (8 threads x 5,000 calls of one decorated function lose 7 of the 8 threads with
    ``sys.setswitchinterval(1e-6)``). Tests of our code give each thread its own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def _mine(self) -> dict[str, Any]:
        if not hasattr(self._local, "statistics"):
            self._local.statistics = {}
        return self._local.statistics  # type: ignore[no-any-return]

    def __getitem__(self, key: str) -> Any:
        return self._mine()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._mine()[key] = value

    def clear(self) -> None:
        self._mine().clear()


def shared_by_threads(decorated: F) -> F:
    """A tenacity-decorated function that threads can share: its ``statistics`` are per thread."""
    decorated.statistics = PerThreadStatistics()  # type: ignore[attr-defined]
    return decorated
