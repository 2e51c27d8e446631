"""Starting and stopping the stack's processes, and the pid files that let a later command find them.

A pid file (.cache/stack/<name>.pid) is JSON: the pid, the process's start time in clock ticks (so a
reused pid is not taken for our process), its command line and when it was started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from devtools.stack import ROOT, StackError, say
from devtools.stack.ports import listeners, who_listens

if TYPE_CHECKING:
    from devtools.stack.components import Component

STOP_GRACE_S = 15.0
HEALTH_TIMEOUT_S = 90.0
# The configuration files read these to move their listeners; the stack's ports are fixed.
PORT_OVERRIDE_PREFIXES = ("OTELCOL_", "JAEGER_LISTEN_HOST")


class ProcessStat(NamedTuple):
    """The two fields of /proc/<pid>/stat that tell whether a process is still the one we started."""

    state: str  # R, S, D, Z (zombie), X (dead), ...
    start_ticks: int  # since boot, in clock ticks


def parse_proc_stat(text: str) -> ProcessStat:
    """Parse /proc/<pid>/stat; the command name in parentheses may itself hold spaces and parentheses."""
    fields = text[text.rindex(")") + 2 :].split()
    return ProcessStat(fields[0], int(fields[19]))  # fields 3 and 22 of proc(5)


def proc_stat(pid: int) -> ProcessStat | None:
    """The process's stat, None when it does not exist."""
    try:
        return parse_proc_stat(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return None


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds."""

    pid: int
    start_ticks: int | None  # None when /proc could not tell
    argv: list[str]
    started: float  # time.time()

    def to_json(self) -> str:
        """The pid file's text."""
        return json.dumps(asdict(self)) + "\n"


def parse_pid_record(text: str) -> PidRecord | None:
    """A pid file's record, None when the text is not one (truncated, hand-edited, from elsewhere)."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    pid, start_ticks = record.get("pid"), record.get("start_ticks")
    if type(pid) is not int or pid <= 0 or not (start_ticks is None or type(start_ticks) is int):
        return None
    argv = record.get("argv")
    started = record.get("started")
    return PidRecord(
        pid=pid,
        start_ticks=start_ticks,
        argv=[str(arg) for arg in argv] if isinstance(argv, list) else [],
        started=float(started) if isinstance(started, (int, float)) else 0.0,
    )


def is_alive(record: PidRecord) -> bool:
    """Whether the recorded process still runs: not a zombie, not another process that reused its pid."""
    stat = proc_stat(record.pid)
    if stat is None:
        if Path("/proc").is_dir():
            return False
        try:  # not Linux: best effort
            os.kill(record.pid, 0)
        except OSError:
            return False
        return True
    # A zombie is dead (pid 1 of a container may not reap it); another start time is pid reuse.
    same_process = record.start_ticks is None or stat.start_ticks == record.start_ticks
    return stat.state not in ("Z", "X") and same_process


def read_record(component: Component) -> PidRecord | None:
    """The component's pid file, None when there is none or it is unreadable."""
    try:
        return parse_pid_record(component.pid_file.read_text())
    except OSError:
        return None


def running(component: Component) -> PidRecord | None:
    """The component's record when its process is alive."""
    record = read_record(component)
    return record if record is not None and is_alive(record) else None


def ports_in_use(components: list[Component]) -> list[tuple[str, str]]:
    """(`port N (component purpose)`, who holds it) for every port of these components in use."""
    table = listeners()
    return [
        (f"port {port} ({component.name} {purpose})", holder)
        for component in components
        for port, purpose in component.ports.items()
        if (holder := who_listens(port, table)) is not None
    ]


def check_ports_free(components: list[Component]) -> None:
    """Fail naming every port of these components that something already listens on, and who."""
    busy = [f"{what} is in use: {holder}" for what, holder in ports_in_use(components)]
    if busy:
        raise StackError(
            "cannot start the stack:\n    "
            + "\n    ".join(busy)
            + "\n    stop that process (or `scripts/stack down` if it is a stack left running), then retry"
        )


def _child_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(PORT_OVERRIDE_PREFIXES)}


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log, indented for an error message."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return "\n".join("    | " + line for line in text)


def start(component: Component, binary: Path, keep_data: bool) -> None:
    """Start one component (its ports must be free) and wait until it is healthy."""
    check_ports_free([component])
    component.before_start(keep_data)
    argv = component.argv(binary)
    began = time.monotonic()
    with component.log_file.open("w") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n")
        log.flush()
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=_child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `up`; not hit by the terminal's Ctrl-C
        )
    stat = proc_stat(process.pid)
    record = PidRecord(process.pid, stat.start_ticks if stat else None, argv, time.time())
    component.pid_file.write_text(record.to_json())
    log_name = component.log_file.relative_to(ROOT)
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while True:
        healthy, detail = component.health_check()
        if healthy:
            break
        if process.poll() is not None:
            component.pid_file.unlink(missing_ok=True)
            raise StackError(
                f"{component.name} exited with code {process.returncode} while starting; "
                f"last lines of {log_name}:\n{tail(component.log_file)}"
            )
        if time.monotonic() > deadline:
            raise StackError(
                f"{component.name} (pid {process.pid}) not healthy after {HEALTH_TIMEOUT_S:.0f} s: {detail}; "
                f"last lines of {log_name}:\n{tail(component.log_file)}"
            )
        time.sleep(0.2)
    public = [
        f"{listener.address}:{listener.port}"
        for listener in listeners()
        if listener.pid == process.pid and listener.address not in ("127.0.0.1", "::1")
    ]
    if public:
        raise StackError(f"{component.name} listens beyond 127.0.0.1: {', '.join(public)}; check its config")
    ports = ", ".join(f"{port} {purpose}" for port, purpose in component.ports.items())
    say(f"    {component.name}: pid {process.pid}, healthy in {time.monotonic() - began:.1f} s ({ports})")


def stop(component: Component) -> bool:
    """Stop the recorded process group (SIGTERM, SIGKILL after a grace); True when there was one."""
    record = read_record(component)
    if record is None:
        return False
    if not is_alive(record):
        component.pid_file.unlink(missing_ok=True)
        say(f"    {component.name}: was not running (stale pid file removed)")
        return False
    began = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, signal.SIGTERM)
    deadline = began + STOP_GRACE_S
    while is_alive(record) and time.monotonic() < deadline:
        time.sleep(0.1)
    how = "SIGTERM"
    if is_alive(record):
        how = f"SIGKILL (did not stop within {STOP_GRACE_S:.0f} s of SIGTERM)"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)
        while is_alive(record) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
    with contextlib.suppress(ChildProcessError):  # only reaps when `up` started it in this process
        os.waitpid(record.pid, os.WNOHANG)
    component.pid_file.unlink(missing_ok=True)
    say(f"    {component.name}: pid {record.pid} stopped by {how} in {time.monotonic() - began:.1f} s")
    return True
