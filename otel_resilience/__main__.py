"""Command line: ``otel-resilience demo`` and ``otel-resilience dashboards``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from otel_resilience.version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-resilience", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run a seeded service whose breakers trip and whose retries storm",
        description=(
            "A service calls its dependencies (catalog: healthy; payments: flapping; inventory: an outage"
            " and a recovery; recommendations: an async def behind a pybreaker breaker, which pybreaker"
            " cannot see) through breakers and retries, instrumented through this package's entry points."
            " With nothing configured, telemetry stays in this process and the run ends by comparing it"
            " with the ground truth; with --otlp or the standard OTEL_* variables it is exported over OTLP."
        ),
    )
    demo.add_argument("--duration", type=_positive_number, default=30.0, help="seconds to run (default 30)")
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument(
        "--rate", type=_positive_number, default=40.0, help="operations per second (default 40)"
    )
    demo.add_argument(
        "--otlp", metavar="ENDPOINT", help="export over OTLP to ENDPOINT, e.g. http://127.0.0.1:4317"
    )
    demo.add_argument("--truth", metavar="FILE", type=Path, help="write the run's exact ground truth as JSON")
    demo.add_argument(
        "--redis",
        metavar="URL",
        help="share the inventory breaker's state through Redis (CircuitRedisStorage), e.g. redis://127.0.0.1:6379/0",
    )
    _add_dashboards_command(commands)
    return parser


def _add_dashboards_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dashboards = commands.add_parser(
        "dashboards",
        help="write the Grafana dashboards (circuit breakers, retries) for your Prometheus",
        # Laid out by hand: the example must stay on lines of its own.
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Write circuit-breakers.json, retries.json and state-machines.json, Grafana dashboards\n"
            "built from this package's telemetry contract, into DIR. With no option they are the\n"
            "dashboards shipped in the repository's dashboards/ directory: a datasource variable, a\n"
            "service variable listing the Prometheus jobs, and Grafana's $__rate_interval.\n\n"
            "Needs the dashboards extra (Python 3.11 or later):\n"
            "  pip install 'otel-resilience[dashboards]'"
        ),
        epilog=(
            "example:\n"
            "  otel-resilience dashboards --out grafana/ --datasource-uid prometheus \\\n"
            "      --label-filter 'cluster=\"eu-1\"' --rate-window 5m"
        ),
    )
    dashboards.add_argument(
        "--out", metavar="DIR", type=Path, required=True, help="directory to write into (created if missing)"
    )
    dashboards.add_argument(
        "--datasource-uid",
        metavar="UID",
        help="query this Prometheus datasource instead of offering a datasource variable",
    )
    dashboards.add_argument(
        "--job",
        help="show this Prometheus job (service.namespace/service.name) only, instead of a service variable",
    )
    dashboards.add_argument(
        "--label-filter",
        metavar="MATCHERS",
        help='PromQL matchers added to every query, e.g. \'cluster="eu-1", region=~"eu-.*"\'',
    )
    dashboards.add_argument(
        "--rate-window",
        metavar="DURATION",
        help="a fixed window for every rate(), e.g. 5m (default: Grafana's $__rate_interval, at least 4m)",
    )
    # Errors in these options are reported with this command's usage, not the top-level one.
    dashboards.set_defaults(command_parser=dashboards)


def _write_dashboards(arguments: argparse.Namespace) -> int:
    from otel_resilience import _dashboards

    parser: argparse.ArgumentParser = arguments.command_parser

    if arguments.out.exists() and not arguments.out.is_dir():
        parser.error(f"--out {arguments.out}: exists and is not a directory")
    try:
        options = _dashboards.DashboardOptions(
            datasource_uid=arguments.datasource_uid,
            job=arguments.job,
            label_filter=(
                _dashboards.parse_label_filter(arguments.label_filter)
                if arguments.label_filter is not None
                else ()
            ),
            rate_window=arguments.rate_window or _dashboards.GRAFANA_RATE_INTERVAL,
        )
    except _dashboards.OptionError as invalid:
        parser.error(str(invalid))
    try:
        written = _dashboards.write_dashboards(arguments.out, options)
    except _dashboards.BuilderMissingError as missing:
        parser.exit(1, f"{parser.prog}: {missing}\n")
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otel-resilience`` console script."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.command == "dashboards":
        return _write_dashboards(arguments)
    try:
        from otel_resilience._demo.run import run_demo
    except ImportError as missing:
        parser.error(
            f"the demo needs pybreaker and tenacity ({missing}): pip install 'otel-resilience[demo]'"
        )

    truth = run_demo(
        duration=arguments.duration,
        seed=arguments.seed,
        rate=arguments.rate,
        otlp=arguments.otlp,
        redis_url=arguments.redis,
    )
    if arguments.truth is not None:
        arguments.truth.write_text(json.dumps(truth, indent=2) + "\n")
        print(f"ground truth written to {arguments.truth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
