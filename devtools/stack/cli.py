"""The local telemetry stack, without docker: one command to install, start, check and stop it.

    scripts/stack up        install/build what is missing, start everything, wait until healthy
    scripts/stack status    each component: pid, listening addresses, health (--json for machines)
    scripts/stack down      stop everything this script started (SIGTERM, then SIGKILL after a grace)
    scripts/stack install   only install/build what is missing (--json prints the binaries' paths)
    scripts/stack install-debian PACKAGE
                            install a Debian package unless its command is there (scripts/bootstrap)

Components, all on 127.0.0.1 with the configuration files the compose stack mounts too:

    jaeger        Jaeger v2 (the Go module github.com/jaegertracing/jaeger@v1.76.0, cmd/jaeger)
                  collector/jaeger-config.yaml: OTLP 14317/14318, UI + API 16686, health 13134
    alertmanager  Debian package prometheus-alertmanager, collector/alertmanager.yml: 9093
    prometheus    Debian package prometheus (and promtool), collector/prometheus.yml: 9090
    otelcol       the collector built by collector/build, collector/otelcol-config.yaml:
                  OTLP 4317/4318, Prometheus exporter 8889, own metrics 8888, health 13133

State under .cache/stack/: <name>.pid (JSON: pid, start time, command), <name>.log, Prometheus's and
Alertmanager's data folders (Prometheus's is emptied by every `up` that starts Prometheus unless
--keep-data). The ports are fixed (collector/prometheus.yml names them), so the OTELCOL_* and
JAEGER_LISTEN_HOST variables the configuration files read are removed from the components'
environment. Python 3 standard library only: the tests run it with subprocess.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from devtools.stack import HOST, ROOT, STATE, StackError, exclusive_lock, say, step
from devtools.stack.components import COMPONENTS, amtool_binary, promtool_binary
from devtools.stack.install import collector_binary, composecheck_binary, debian_command
from devtools.stack.ports import listeners
from devtools.stack.processes import check_ports_free, ports_in_use, running, start, stop

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from devtools.stack.components import Component


def cmd_install(args: argparse.Namespace) -> int:
    """`install`: build or install every binary, start nothing."""
    began = time.monotonic()
    step("checking binaries (build or install what is missing)")
    paths = {component.name: str(component.binary()) for component in COMPONENTS}
    paths["promtool"] = str(promtool_binary())
    paths["amtool"] = str(amtool_binary())
    paths["composecheck"] = str(composecheck_binary())
    for name, path in paths.items():
        say(f"    {name}: {path}")
    say(f"    binaries ready in {time.monotonic() - began:.1f} s")
    if args.json:
        print(json.dumps(paths, indent=2))
    return 0


def cmd_install_debian(args: argparse.Namespace) -> int:
    """`install-debian`: one Debian package, for what the test suite runs besides the stack."""
    debian_command(args.provides or args.package, args.package, args.service or args.package)
    return 0


def _start_missing(keep_data: bool, binaries: dict[str, Path]) -> None:
    """Start every component not already running; on failure, stop what this call started."""
    started: list[Component] = []
    try:
        for component in COMPONENTS:
            record = running(component)
            if record:
                healthy, detail = component.health_check()
                if not healthy:
                    raise StackError(
                        f"{component.name} is running (pid {record.pid}) "
                        f"but not healthy: {detail}; run `scripts/stack down` and retry"
                    )
                say(f"    {component.name}: already running and healthy")
                continue
            component.pid_file.unlink(missing_ok=True)  # stale, if any
            start(component, binaries[component.name], keep_data)
            started.append(component)
    except (StackError, KeyboardInterrupt):
        if started:
            say("    stopping what this command started")
            for component in reversed(started):
                stop(component)
        raise


def cmd_up(args: argparse.Namespace) -> int:
    """`up`: idempotent; on failure, stops what it started."""
    began = time.monotonic()
    STATE.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(STATE / "lock"):
        step("checking binaries (build or install what is missing)")
        binaries = {component.name: component.binary() for component in COMPONENTS}
        say(f"    binaries ready in {time.monotonic() - began:.1f} s")
        step(f"starting the stack on {HOST} (state and logs in {STATE.relative_to(ROOT)}/)")
        check_ports_free([component for component in COMPONENTS if not running(component)])
        _start_missing(args.keep_data, binaries)
    step(f"stack up in {time.monotonic() - began:.1f} s")
    say(
        f"    OTLP: grpc {HOST}:4317, http http://{HOST}:4318   Prometheus: http://{HOST}:9090   "
        f"Jaeger: http://{HOST}:16686   Alertmanager: http://{HOST}:9093"
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """`down`: stop the recorded processes; exit 1 when a stack port is still in use afterwards."""
    began = time.monotonic()
    STATE.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(STATE / "lock"):
        step("stopping the stack")
        stopped = [component.name for component in reversed(COMPONENTS) if stop(component)]
        if not stopped:
            say("    nothing was running")
        leftovers = [f"{what}: {holder}" for what, holder in ports_in_use(COMPONENTS)]
    if leftovers:
        say("    still listening on stack ports (not started by this script, left alone):")
        for line in leftovers:
            say(f"      {line}")
    step(f"stack down in {time.monotonic() - began:.1f} s")
    return 1 if leftovers else 0


def status_report() -> list[dict[str, Any]]:
    """Each component: running, pid, health, its ports and what it actually listens on."""
    table = listeners()
    report = []
    for component in COMPONENTS:
        record = running(component)
        pid = record.pid if record else None
        healthy, detail = component.health_check() if record else (False, "not running")
        report.append(
            {
                "name": component.name,
                "what": component.what,
                "running": record is not None,
                "pid": pid,
                "healthy": healthy,
                "health": detail,
                "ports": {str(port): purpose for port, purpose in component.ports.items()},
                "listening": sorted(
                    f"{listener.address}:{listener.port}"
                    for listener in table
                    if pid is not None and listener.pid == pid
                ),
                "log": str(component.log_file),
            }
        )
    return report


def cmd_status(args: argparse.Namespace) -> int:
    """`status`: exit 0 when every component is running and healthy."""
    report = status_report()
    all_healthy = all(entry["healthy"] for entry in report)
    if args.json:
        print(json.dumps({"healthy": all_healthy, "components": report}, indent=2))
        return 0 if all_healthy else 1
    width = max(len(component.name) for component in COMPONENTS)
    for entry in report:
        if entry["running"]:
            state = "healthy" if entry["healthy"] else f"UNHEALTHY ({entry['health']})"
            listening = ", ".join(entry["listening"]) or "-"
            print(f"{entry['name']:<{width}}  pid {entry['pid']:<7} {state:<9}  listening {listening}")
        else:
            ports = ", ".join(f"{HOST}:{port}" for port in entry["ports"])
            print(f"{entry['name']:<{width}}  stopped                 ports {ports}")
    verdict = "healthy" if all_healthy else "NOT healthy"
    print(f"stack: {verdict} (logs: {STATE.relative_to(ROOT)}/<name>.log)")
    return 0 if all_healthy else 1


def _run(prog: str, args: argparse.Namespace) -> int:
    """Run a parsed command; a StackError or Ctrl-C becomes one line on stderr and an exit status."""
    try:
        return int(args.run(args))
    except StackError as error:
        say(f"{prog}: error: {error}")
        return 1
    except KeyboardInterrupt:
        say(f"{prog}: interrupted")
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """`scripts/stack`."""
    parser = argparse.ArgumentParser(
        prog="scripts/stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="install/build what is missing, start, wait until healthy")
    up.add_argument("--keep-data", action="store_true", help="keep Prometheus's data from the last run")
    up.set_defaults(run=cmd_up)
    commands.add_parser("down", help="stop what `up` started").set_defaults(run=cmd_down)
    status = commands.add_parser("status", help="pid, listening addresses and health of each component")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)
    install = commands.add_parser("install", help="only install/build the binaries")
    install.add_argument("--json", action="store_true", help="print the binaries' paths as JSON on stdout")
    install.set_defaults(run=cmd_install)
    debian = commands.add_parser(
        "install-debian", help="install a Debian package unless its command exists; stop its service"
    )
    debian.add_argument("package")
    debian.add_argument(
        "--command", dest="provides", help="the command it provides (default: the package's name)"
    )
    debian.add_argument("--service", help="the system service it starts (default: the package's name)")
    debian.set_defaults(run=cmd_install_debian)
    args = parser.parse_args(argv)
    return _run(f"scripts/stack {args.command}", args)


COLLECTOR_BUILD_USAGE = """\
Build the OpenTelemetry Collector described by collector/builder-config.yaml into .cache/otelcol/.

  collector/build            build when needed, print the binary's path on the last line
  collector/build --force    rebuild even when the cached binary is up to date

Idempotent and cached: the builder (ocb) is installed with `go install` into a GOBIN under .cache/
(never system-wide), and the collector is rebuilt only when the binary is missing or the stamp file
next to it does not match sha256(builder-config.yaml) + builder version + go version. A second run
takes well under a second. Concurrent runs are serialized with flock.
"""


def cmd_build_collector(args: argparse.Namespace) -> int:
    """`collector/build`: callers (and people) take the path from the last line of stdout."""
    print(collector_binary(force=args.force))
    return 0


def collector_build_main(argv: Sequence[str] | None = None) -> int:
    """`collector/build [--force]`: the collector's path on stdout's last line."""
    parser = argparse.ArgumentParser(
        prog="collector/build",
        usage="collector/build [--force]",
        description=COLLECTOR_BUILD_USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.set_defaults(run=cmd_build_collector)
    return _run("collector/build", parser.parse_args(argv))
