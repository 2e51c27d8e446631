"""Collector outage, with the real collector of the local stack: the application never notices.

- Killed in the middle of a demo run (``SIGKILL``, the pid from ``scripts/stack status --json``) and
  restarted by ``scripts/stack up`` (which starts only what is missing): the demo, under
  ``opentelemetry-instrument``, exits 0 without stalling, and Prometheus's final totals equal the
  demo's ground truth exactly. Metrics are cumulative: the first export after the restart carries
  every total, and the collector's Prometheus exporter shows what it last received.
- Down for a whole run (the demo exports to a closed port, which is what a dead collector leaves):
  the demo exits 0 in bounded time, and its peak memory stays within a bound of a collector-up run's.

How the application's call latency compares, collector down against collector up, is measured by
``bench/collector_outage.py``, not here.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from otel_resilience._demo.truth import compare, expected_totals, observed_totals
from tests.support.demo_runs import DemoRun, prometheus_points, run_demo, totals_table
from tests.support.pipeline import Stack, run_stack, stack_status, wait_for

OUTAGE_RUN_S = 30
OUTAGE_S = 6
# The demo's own start and end (interpreter, opentelemetry-instrument, the final flush): 0.6 s here
# with the collector up. A failed export retried in the application's thread would cost at least
# 7 s (the OTLP exporter backs off 1, 2 then 4 s); 5 s catches that and leaves room for a loaded machine.
STALL_BOUND_S = 5.0

DOWN_RUN_S = 30
DOWN_RUN_RATE = "200"
# With nothing to export to, the demo's final force_flush() sends the span queue in batches of 512
# (2048 / 512 = 4 exports), then the metrics (1), and at exit the meter provider's shutdown exports
# once more (1): 6 exports, each given up within OTEL_EXPORTER_OTLP_TIMEOUT (10 s by default).
EXIT_EXPORTS = 6
# What a dead collector may cost in memory: the batch span processor's queue (2048 spans) and the
# batch its exporter holds while retrying (512), a few KiB each (an attempt span's exception event
# carries a formatted traceback): 7.5 to 9 MiB measured here. Keeping every span instead, at 200 operations a
# second for 30 s (about 20,000 spans), would hold some 60 MiB more.
MEMORY_BOUND_MIB = 24.0


@pytest.fixture(scope="module")
def service() -> str:
    return f"outage-{uuid.uuid4().hex[:8]}"


def collector_pid() -> int | None:
    (otelcol,) = [c for c in stack_status()["components"] if c["name"] == "otelcol"]
    return otelcol["pid"] if otelcol["running"] else None


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def totals_agree(stack: Stack, demo: DemoRun, timeout: float = 60) -> list[tuple[Any, float, float]]:
    """The rows (key, truth, Prometheus) once every total agrees; fails with the table after ``timeout``."""
    expected = expected_totals(demo.truth)
    selector = f'service_name="{demo.service}",instance="{demo.instance}"'
    deadline = time.monotonic() + timeout
    while True:
        rows = compare(expected, observed_totals(prometheus_points(stack, selector)))
        if all(e == o for _, e, o in rows) or time.monotonic() > deadline:
            break
        time.sleep(1)
    table = totals_table(rows)
    assert all(e == o for _, e, o in rows), f"Prometheus totals differ from the ground truth:\n{table}"
    return rows


def test_collector_killed_and_restarted_mid_run(stack: Stack, service: str, tmp_path: Path) -> None:
    instance = str(uuid.uuid4())
    with ThreadPoolExecutor(max_workers=1) as pool:
        began = time.monotonic()
        running = pool.submit(run_demo, stack, tmp_path, service, instance, duration=OUTAGE_RUN_S)
        wait_for(
            "the demo's first metrics in Prometheus",
            lambda: stack.query(f'resilience_retry_calls_total{{instance="{instance}"}}'),
        )
        others = {c["name"]: c["pid"] for c in stack_status()["components"] if c["name"] != "otelcol"}
        pid = collector_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic() - began
        wait_for("the collector's OTLP port to close", lambda: not listening(4317))
        time.sleep(OUTAGE_S)
        assert not running.done(), "the demo is still running while the collector is down"
        run_stack("up")
        restarted_at = time.monotonic() - began
        assert not running.done(), "the collector is back before the demo ends"
        assert collector_pid() not in (None, pid)
        assert {c["name"]: c["pid"] for c in stack_status()["components"] if c["name"] != "otelcol"} == others
        demo = running.result()
    rows = totals_agree(stack, demo)
    print(
        f"\ncollector killed at {killed_at:.1f} s, restarted at {restarted_at:.1f} s; demo wall time"
        f" {demo.wall_seconds:.1f} s for a {OUTAGE_RUN_S} s run; {len(rows)} Prometheus totals equal"
        " the ground truth"
    )
    assert demo.wall_seconds <= OUTAGE_RUN_S + STALL_BOUND_S
    assert len(rows) >= 40, "every metric, with several outcomes"


class PeakMemory:
    """The peak resident memory (VmHWM) of the process whose command line names ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self.peak_kib = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _find(self) -> Path | None:
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if self.marker in (proc / "cmdline").read_bytes():
                    return proc
            except OSError:
                continue
        return None

    def _watch(self) -> None:
        proc = None
        while proc is None:
            proc = self._find()
            time.sleep(0.05)
        while True:
            try:
                status = (proc / "status").read_text()
            except OSError:  # it exited
                return
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            time.sleep(0.1)

    def mib(self, timeout: float = 10) -> float:
        self._thread.join(timeout)
        assert self.peak_kib, f"the process of {self.marker!r} was seen"
        return self.peak_kib / 1024


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_collector_down_for_the_whole_run(stack: Stack, service: str, tmp_path: Path) -> None:
    nowhere = dataclasses.replace(stack, otlp_grpc=f"http://127.0.0.1:{closed_port()}")
    runs = {"up": (stack, str(uuid.uuid4())), "down": (nowhere, str(uuid.uuid4()))}
    with ThreadPoolExecutor(max_workers=2) as pool:  # side by side: the same machine load for both
        memory = {name: PeakMemory(instance) for name, (_, instance) in runs.items()}
        demos = {
            name: pool.submit(
                run_demo, where, tmp_path, service, instance, "--rate", DOWN_RUN_RATE, duration=DOWN_RUN_S
            )
            for name, (where, instance) in runs.items()
        }
        up, down = demos["up"].result(), demos["down"].result()
    peak = {name: watcher.mib() for name, watcher in memory.items()}
    truth = down.truth
    spans = sum(
        sum(o["calls"].values()) + sum(o["attempts"].values()) for o in truth["operations"].values()
    ) + sum(sum(b["calls"].values()) for b in truth["breakers"].values())
    timeout = float(os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT", "10"))
    print(
        f"\ncollector down: wall time {down.wall_seconds:.1f} s, peak memory {peak['down']:.1f} MiB;"
        f" collector up: {up.wall_seconds:.1f} s, {peak['up']:.1f} MiB ({DOWN_RUN_S} s runs,"
        f" {spans} spans each)"
    )
    assert down.wall_seconds <= DOWN_RUN_S + STALL_BOUND_S + EXIT_EXPORTS * timeout
    assert peak["down"] - peak["up"] <= MEMORY_BOUND_MIB
