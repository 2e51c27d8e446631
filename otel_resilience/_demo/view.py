"""The demo's terminal view: redrawn in place on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from otel_resilience._demo.simulation import Simulation

_CLEAR = "\x1b[H\x1b[2J"
_STATE_COLOURS = {"closed": "\x1b[32m", "open": "\x1b[31m", "half_open": "\x1b[33m"}
_RESET = "\x1b[0m"


class View:
    def __init__(
        self, simulation: Simulation, duration: float, telemetry: str, out: TextIO = sys.stdout
    ) -> None:
        self._simulation = simulation
        self._duration = duration
        self._telemetry = telemetry
        self._out = out
        self._live = out.isatty()
        self._next_draw = 0.0
        self._interval = 0.5 if self._live else 5.0

    def tick(self, progress: float) -> None:
        now = time.monotonic()
        if now < self._next_draw and progress < 1.0:
            return
        self._next_draw = now + self._interval
        if self._live:
            self._out.write(_CLEAR + self.render(progress) + "\n")
        else:
            self._out.write(self.progress_line(progress) + "\n")
        self._out.flush()

    def progress_line(self, progress: float) -> str:
        states = ", ".join(f"{d.name} {d.state()}" for d in self._simulation.dependencies)
        operations = sum(sum(d.operation_books.calls.values()) for d in self._simulation.dependencies)
        return f"[{progress * self._duration:5.1f}/{self._duration:.0f} s] {operations} operations; {states}"

    def render(self, progress: float) -> str:
        width = 30
        done = int(progress * width)
        lines = [
            f"otel-resilience demo  seed {self._simulation.seed}  telemetry: {self._telemetry}",
            f"[{'#' * done}{'.' * (width - done)}] {progress * self._duration:5.1f} / {self._duration:.0f} s",
            "",
            f"{'breaker':<16}{'state':<11}{'calls':>7}{'success':>9}{'failure':>9}{'rejected':>10}"
            f"{'ignored':>9}{'unguarded':>11}{'transitions':>13}",
        ]
        for dependency in self._simulation.dependencies:
            books = dependency.breaker_books
            state = dependency.state()
            colour = _STATE_COLOURS.get(state, "") if self._live else ""
            lines.append(
                f"{dependency.name:<16}{colour}{state:<11}{_RESET if colour else ''}"
                f"{sum(books.calls.values()):>7}{books.calls['success']:>9}{books.calls['failure']:>9}"
                f"{books.calls['rejected']:>10}{books.calls['ignored']:>9}{books.calls['unguarded']:>11}"
                f"{sum(books.transitions.values()):>13}"
            )
        lines += [
            "",
            f"{'operation':<27}{'ops':>6}{'1st try':>9}{'retried':>9}{'failed':>8}{'exhausted':>11}"
            f"{'attempts':>10}{'sleeps':>8}",
        ]
        for name, operation in self._simulation.truth.operations.items():
            calls = operation.calls
            lines.append(
                f"{name:<27}{sum(calls.values()):>6}{calls['success_without_retry']:>9}"
                f"{calls['success_with_retry']:>9}{calls['failed_without_retry']:>8}"
                f"{calls['failed_with_retry']:>11}{sum(operation.attempts.values()):>10}{operation.sleeps:>8}"
            )
        machines = self._simulation.truth.machines
        if machines:
            lines += [
                "",
                f"{'state machine':<16}{'triggers':>9}{'transitioned':>14}{'refused':>9}{'failed':>8}",
            ]
            for name, books in machines.items():
                outcomes: Counter[str] = Counter()
                for fired, count in books.triggers.items():
                    outcomes[fired.split("|")[2]] += count
                lines.append(
                    f"{name:<16}{sum(outcomes.values()):>9}{outcomes['transitioned']:>14}"
                    f"{outcomes['refused']:>9}{outcomes['failed']:>8}"
                )
        findings = self._simulation.truth.diagnostics
        if findings:
            lines += ["", "diagnostics (misuse found; docs/diagnostics.md)"]
            for finding, names in findings.items():
                lines += [f"  {finding}: {name} x{count}" for name, count in names.items()]
        return "\n".join(lines)
