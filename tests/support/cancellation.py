"""Cancelling an awaitable mid-way, as the cancellation tests of every async-capable library do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Callable

import pytest


async def cancel_after(seconds: float, start: Callable[[], Awaitable[object]]) -> None:
    """Run ``start()`` as a task, cancel it after ``seconds``, and see it end in ``CancelledError``."""
    task = asyncio.ensure_future(start())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
