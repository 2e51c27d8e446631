"""What a user can change in the generated dashboards, validated before anything is built."""

from __future__ import annotations

import re
from dataclasses import dataclass

GRAFANA_RATE_INTERVAL = "$__rate_interval"
"""Grafana's own window for ``rate()``: at least 4 minutes with the panels' 1-minute minimum step."""

_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")
"""Grafana's rule for datasource uids: up to 40 letters, digits, ``-`` or ``_``."""
_DURATION = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
_MATCHER = re.compile(
    r'\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<operator>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*'
)


class OptionError(ValueError):
    """An option a user gave cannot make a valid dashboard; the message says why."""


@dataclass(frozen=True)
class Matcher:
    """One PromQL label matcher, ``label operator "value"`` (the value as written, escapes kept)."""

    label: str
    operator: str
    value: str

    def __str__(self) -> str:
        return f'{self.label}{self.operator}"{self.value}"'


@dataclass(frozen=True)
class DashboardOptions:
    """The variant of the dashboards to generate; the defaults give the files shipped in ``dashboards/``."""

    datasource_uid: str | None = None
    """A fixed Prometheus datasource; None: a ``datasource`` variable offers every Prometheus."""
    job: str | None = None
    """A fixed Prometheus ``job`` (service.namespace/service.name); None: a ``service`` variable."""
    label_filter: tuple[Matcher, ...] = ()
    """Matchers added to every selector, e.g. to pick one cluster of a shared Prometheus."""
    rate_window: str = GRAFANA_RATE_INTERVAL
    """The window of every ``rate()``."""

    def __post_init__(self) -> None:
        if self.datasource_uid is not None and not _UID.fullmatch(self.datasource_uid):
            raise OptionError(
                f"datasource uid {self.datasource_uid!r}:"
                " Grafana uids are 1 to 40 letters, digits, '-' or '_'"
            )
        if self.job is not None and not self.job.strip():
            raise OptionError(
                "job: give the Prometheus job (service.namespace/service.name), not an empty string"
            )
        if self.rate_window != GRAFANA_RATE_INTERVAL and not _DURATION.fullmatch(self.rate_window):
            raise OptionError(f"rate window {self.rate_window!r}: a Prometheus duration such as 5m or 1h30m")


def parse_label_filter(text: str) -> tuple[Matcher, ...]:
    """Read ``label="value", other=~"regex"`` (PromQL matchers without braces)."""
    matchers = []
    position = 0
    while True:
        match = _MATCHER.match(text, position)
        if not match:
            raise OptionError(
                f"label filter {text!r}: expected PromQL matchers such as"
                f' cluster="eu-1" or region=~"eu-.*", separated by commas (at {text[position:]!r})'
            )
        matchers.append(Matcher(match["label"], match["operator"], match["value"]))
        position = match.end()
        if position == len(text):
            return tuple(matchers)
        if text[position] != ",":
            raise OptionError(
                f"label filter {text!r}: separate matchers with commas (at {text[position:]!r})"
            )
        position += 1
