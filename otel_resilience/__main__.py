"""Command line: ``otel-resilience demo``."""

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
            "A service calls three dependencies (catalog: healthy; payments: flapping; inventory: an outage"
            " and a recovery) through pybreaker breakers and tenacity retries, instrumented through this"
            " package's entry points. With nothing configured, telemetry stays in this process and the run"
            " ends by comparing it with the ground truth; with --otlp or the standard OTEL_* variables it"
            " is exported over OTLP."
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otel-resilience`` console script."""
    parser = _parser()
    arguments = parser.parse_args(argv)
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
