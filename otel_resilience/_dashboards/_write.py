"""Encode the dashboards as the JSON Grafana imports, and write them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from otel_resilience._dashboards import _circuit_breakers, _retries, _state_machines

if TYPE_CHECKING:
    from pathlib import Path

    from otel_resilience._dashboards._options import DashboardOptions


def render(options: DashboardOptions) -> dict[str, str]:
    """Each dashboard's file name and JSON text."""
    return {
        module.FILE_NAME: json.dumps(module.build(options), cls=JSONEncoder, indent=2, ensure_ascii=False)
        + "\n"
        for module in (_circuit_breakers, _retries, _state_machines)
    }


def write(directory: Path, options: DashboardOptions) -> list[Path]:
    """Write every dashboard into ``directory`` (created if missing); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in render(options).items():
        path = directory / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
