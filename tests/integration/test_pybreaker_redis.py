"""Breakers sharing their state through Redis: a real redis-server and a second process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pybreaker
import pytest
import redis

from otel_resilience import contract as c
from tests.support.redis_server import redis_server
from tests.support.telemetry import Telemetry

OTHER_PROCESS = textwrap.dedent(
    """
    import sys, pybreaker, redis
    storage = pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, redis.Redis(port=int(sys.argv[1])), namespace="payments"
    )
    breaker = pybreaker.CircuitBreaker(fail_max=1, state_storage=storage, name="payments")
    if sys.argv[2] == "trip":
        try:
            breaker.call(lambda: 1 / 0)
        except pybreaker.CircuitBreakerError:
            pass
    else:
        breaker.close()
    print(breaker.current_state)
    """
)


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    with redis_server(tmp_path) as port:
        yield port


def other_process(port: int, action: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, str(port), action], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_transition_made_by_another_process(breaker_telemetry: Telemetry, redis_port: int) -> None:
    storage = pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, redis.Redis(port=redis_port), namespace="payments"
    )
    breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=60, state_storage=storage, name="payments")
    assert breaker.call(lambda: "paid") == "paid"

    assert other_process(redis_port, "trip") == "open"
    breaker_telemetry.reader.collect()
    states = breaker_telemetry.values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE)
    assert states[("payments", "closed")] == 1, "collection reads the cached state, firing no transition"
    assert breaker_telemetry.values(c.BREAKER_TRANSITIONS.name, c.BREAKER_STATE) == {}

    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(lambda: "paid")
    rejected = breaker_telemetry.spans()[-1]
    assert rejected.attributes[c.OUTCOME] == "rejected"
    assert [(e.name, e.attributes[c.BREAKER_STATE]) for e in rejected.events if e.name != "exception"] == [
        (c.STATE_CHANGE_EVENT, "open")
    ]

    assert other_process(redis_port, "close") == "closed"
    assert breaker.current_state == "closed"  # storage only: no transition noticed yet
    assert breaker.state.name == "closed"  # a state read outside any call notices it: a span of its own
    notice = breaker_telemetry.spans()[-1]
    assert notice.name == "payments state change"
    assert notice.events[0].attributes[c.BREAKER_PREVIOUS_STATE] == "open"

    assert breaker_telemetry.values(
        c.BREAKER_TRANSITIONS.name, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE
    ) == {
        ("closed", "open"): 1,
        ("open", "closed"): 1,
    }
    assert breaker_telemetry.values(c.BREAKER_CALLS.name, c.BREAKER_STATE, c.OUTCOME) == {
        ("closed", "success"): 1,
        ("open", "rejected"): 1,
    }
    states = breaker_telemetry.values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE)
    assert {k: v for k, v in states.items() if k[0] == "payments"} == {("payments", "closed"): 1}


def test_collection_never_waits_on_a_redis_that_is_down(breaker_telemetry: Telemetry, tmp_path: Path) -> None:
    with redis_server(tmp_path) as port:
        storage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, redis.Redis(port=port), namespace="down"
        )
        breaker = pybreaker.CircuitBreaker(fail_max=5, state_storage=storage, name="down")
        for _ in range(2):
            with pytest.raises(ZeroDivisionError):
                breaker.call(lambda: 1 / 0)
    # Redis is gone: collecting metrics must not try to reach it (its client retries for minutes).
    collector = threading.Thread(target=breaker_telemetry.reader.collect, daemon=True)
    collector.start()
    collector.join(timeout=30)
    assert not collector.is_alive(), "metric collection is blocked on Redis"
    assert breaker_telemetry.values(c.BREAKER_CONSECUTIVE_FAILURES.name, c.BREAKER_NAME)[("down",)] == 2
    assert (
        breaker_telemetry.values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE)[("down", "closed")]
        == 1
    )


def test_consecutive_failures_of_a_shared_breaker_count_every_thread(
    breaker_telemetry: Telemetry, redis_port: int
) -> None:
    """``calling()`` counts failures outside the breaker's lock: 8 threads failing at once must all be
    counted, as Redis counts them (threads switched as often as the interpreter allows)."""
    client = redis.Redis(port=redis_port)
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace="threads")
    breaker = pybreaker.CircuitBreaker(fail_max=10**6, state_storage=storage, name="shared")

    def fail_repeatedly() -> None:
        for _ in range(500):
            with pytest.raises(ZeroDivisionError), breaker.calling():
                _ = 1 / 0

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=fail_repeatedly) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)
    assert storage.counter == 8 * 500
    failures = breaker_telemetry.values(c.BREAKER_CONSECUTIVE_FAILURES.name, c.BREAKER_NAME)
    assert failures[("shared",)] == 8 * 500  # breakers other tests left alive are observed too
