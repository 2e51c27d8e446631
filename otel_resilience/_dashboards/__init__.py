"""Grafana dashboards generated from the telemetry contract (``otel-resilience dashboards``).

Built with grafana-foundation-sdk, an optional extra (``otel-resilience[dashboards]``): the instrumentation
never imports it. Options and their validation work without it; rendering and writing import it when
called and raise :class:`BuilderMissingError`, saying how to install it, when it is absent.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from otel_resilience._dashboards._options import (
    GRAFANA_RATE_INTERVAL,
    DashboardOptions,
    Matcher,
    OptionError,
    parse_label_filter,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = [
    "GRAFANA_RATE_INTERVAL",
    "BuilderMissingError",
    "DashboardOptions",
    "Matcher",
    "OptionError",
    "parse_label_filter",
    "render_dashboards",
    "write_dashboards",
]

_BUILDER = "grafana_foundation_sdk"


class BuilderMissingError(RuntimeError):
    """grafana-foundation-sdk, which builds the dashboards, is not installed."""


@contextmanager
def _builder_required() -> Iterator[None]:
    """Turn the builder's absence into :class:`BuilderMissingError`; let any other import error through."""
    try:
        yield
    except ModuleNotFoundError as missing:
        if missing.name is None or missing.name.partition(".")[0] != _BUILDER:
            raise
        raise BuilderMissingError(
            "generating dashboards needs grafana-foundation-sdk (Python 3.11 or later):"
            " pip install 'otel-resilience[dashboards]'"
        ) from missing


def render_dashboards(options: DashboardOptions | None = None) -> dict[str, str]:
    """Each dashboard's file name and JSON text; the defaults give the files in ``dashboards/``."""
    with _builder_required():
        from otel_resilience._dashboards._write import render
    return render(options or DashboardOptions())


def write_dashboards(directory: Path, options: DashboardOptions | None = None) -> list[Path]:
    """Write the dashboards into ``directory`` (created if missing); the paths written."""
    with _builder_required():
        from otel_resilience._dashboards._write import write
    return write(directory, options or DashboardOptions())
