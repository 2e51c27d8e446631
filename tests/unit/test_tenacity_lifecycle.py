"""The tenacity operation lifecycle table: every move the code makes is in it, and every entry is made.

Each scenario below drives tenacity one way; the moves of every operation are recorded. Together
they must make exactly the moves ``_MOVES`` allows: a move outside the table is a bug of ours (and
is reported as a fault, which the autouse fixture turns into a failure), an entry no scenario
makes is a table that says more than the code does.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any, Callable

import pytest
import tenacity

from otel_resilience._kit.deferred import run_deferred
from otel_resilience.tenacity import _telemetry
from otel_resilience.tenacity._telemetry import _MOVES, Operation, Phase
from tests.support.telemetry import Telemetry

P = Phase


class Flaky(Exception):
    pass


def failing(times: int) -> Callable[[], str]:
    calls = [0]

    def run() -> str:
        calls[0] += 1
        if calls[0] <= times:
            raise Flaky(calls[0])
        return "ok"

    return run


def no_wait() -> dict[str, Any]:
    return {"wait": tenacity.wait_none(), "sleep": lambda seconds: None}


def call_succeeds_at_once() -> None:
    tenacity.Retrying(**no_wait())(failing(0))


def call_retries_then_succeeds() -> None:
    tenacity.Retrying(**no_wait())(failing(2))


def call_gives_up() -> None:
    with pytest.raises(tenacity.RetryError):
        tenacity.Retrying(stop=tenacity.stop_after_attempt(2), **no_wait())(failing(5))


def call_not_retryable() -> None:
    with pytest.raises(Flaky):
        tenacity.Retrying(retry=tenacity.retry_if_exception_type(KeyError), **no_wait())(failing(1))


def before_raises_at_first_iter() -> None:
    def before(state: Any) -> None:
        raise Flaky("before")

    with pytest.raises(Flaky):
        tenacity.Retrying(before=before, **no_wait())(failing(0))


def sleep_interrupted() -> None:
    def sleep(seconds: float) -> None:
        raise Flaky("sleep")

    with pytest.raises(Flaky):
        tenacity.Retrying(wait=tenacity.wait_none(), sleep=sleep)(failing(1))
    gc.collect()


def loop_rejected_result_then_return() -> None:
    results = iter([None, "ok"])
    for attempt in tenacity.Retrying(retry=tenacity.retry_if_result(lambda r: r is None), **no_wait()):
        with attempt:
            value = next(results)
        if not attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
            attempt.retry_state.set_result(value)
    gc.collect()


def loop_left_with_return() -> str:
    for attempt in tenacity.Retrying(**no_wait()):
        with attempt:
            return "ok"
    return "unreachable"


def loop_left_before_entering_the_attempt() -> None:
    for _attempt in tenacity.Retrying(**no_wait()):
        break
    gc.collect()


def generator_closed_inside_the_attempt() -> None:
    def produce() -> Iterator[int]:
        for attempt in tenacity.Retrying(**no_wait()):
            with attempt:
                yield 1
                yield 2

    items = produce()
    next(items)
    items.close()
    del items
    gc.collect()


def async_retries_then_succeeds() -> None:
    async def run() -> str:
        flaky = failing(1)
        async for attempt in tenacity.AsyncRetrying(wait=tenacity.wait_none()):
            with attempt:
                return flaky()
        return "unreachable"

    asyncio.run(run())


SCENARIOS = [
    call_succeeds_at_once,
    call_retries_then_succeeds,
    call_gives_up,
    call_not_retryable,
    before_raises_at_first_iter,
    sleep_interrupted,
    loop_rejected_result_then_return,
    loop_left_with_return,
    loop_left_before_entering_the_attempt,
    generator_closed_inside_the_attempt,
    async_retries_then_succeeds,
]


@pytest.fixture
def moves(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Phase, Phase]]:
    made: list[tuple[Phase, Phase]] = []
    move = Operation.move

    def recording(operation: Operation, phase: Phase) -> None:
        made.append((operation.phase, phase))
        move(operation, phase)

    monkeypatch.setattr(Operation, "move", recording)
    return made


def test_every_move_is_in_the_table_and_every_entry_is_made(
    retry_telemetry: Telemetry, moves: list[tuple[Phase, Phase]]
) -> None:
    for scenario in SCENARIOS:
        scenario()
        gc.collect()
        run_deferred()
    allowed = {(source, target) for source, targets in _MOVES.items() for target in targets}
    assert set(moves) - allowed == set(), "moves the table does not allow"
    assert allowed - set(moves) == set(), "table entries no scenario makes"
    assert sum(target is P.ENDED for _, target in moves) == len(SCENARIOS), "each operation ended once"


@pytest.mark.faults
def test_a_move_outside_the_table_is_reported_not_raised(retry_telemetry: Telemetry) -> None:
    operation = Operation("unit")
    operation.move(P.ENDED)
    operation.move(P.ATTEMPTING)  # ENDED allows nothing
    assert operation.phase is P.ATTEMPTING
    from otel_resilience._kit import faults

    assert ("tenacity operation lifecycle", _telemetry.LifecycleError) in faults._reported
