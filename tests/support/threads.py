"""Running one worker in several threads at once, and counting what they saw, as the concurrency tests do."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Callable


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
