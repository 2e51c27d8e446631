"""PromQL for the dashboards, every metric and label name taken from the telemetry contract.

Expressions are laid out over several lines, as a person would write them in Grafana's code editor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from otel_resilience import contract
from otel_resilience._dashboards._options import GRAFANA_RATE_INTERVAL, Matcher

if TYPE_CHECKING:
    from collections.abc import Iterable

    from otel_resilience._dashboards._options import DashboardOptions

JOB_LABEL: Final = "job"
"""Set by the collector's prometheus exporter from service.namespace/service.name."""
BUCKET_BOUND_LABEL: Final = "le"
"""The upper bound of a histogram bucket series."""
WHOLE_RANGE: Final = "$__range"
"""Grafana's variable for the dashboard's time range."""
SERVICE_VARIABLE: Final = "service"


def label(attribute: str) -> str:
    """The Prometheus label of a contract attribute."""
    return contract.prometheus_label(attribute)


def series(spec: contract.MetricSpec, suffix: str = "") -> str:
    """The Prometheus series of a contract metric; ``suffix`` picks a histogram's ``_bucket``/``_sum``."""
    return contract.prometheus_name(spec) + suffix


def legend(attribute: str, after: str = "") -> str:
    """A legend showing an attribute's value (Grafana's ``{{label}}``), then ``after``."""
    return "{{" + label(attribute) + "}}" + after


def equals(attribute: str, value: str) -> Matcher:
    return Matcher(label(attribute), "=", value)


def differs(attribute: str, value: str) -> Matcher:
    return Matcher(label(attribute), "!=", value)


def one_of(attribute: str, values: Iterable[str]) -> Matcher:
    return Matcher(label(attribute), "=~", "|".join(values))


def _prometheus_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def aggregate(operator: str, labels: Iterable[str], inner: str) -> str:
    """``operator by (labels) (inner)``, the inner expression on lines of its own."""
    return f"{operator} by ({', '.join(labels)}) (\n{_indent(inner, 2)}\n)"


def wrap(function: str, inner: str) -> str:
    """``function(inner)``, the inner expression on lines of its own."""
    return f"{function}(\n{_indent(inner, 2)}\n)"


def top(k: int, inner: str) -> str:
    """The ``k`` largest series of ``inner``."""
    return f"topk({k},\n{_indent(inner, 2)}\n)"


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator``, empty (not a division by zero) where the denominator is 0."""
    return f"{numerator}\n/\n(\n{_indent(denominator + ' > 0', 2)}\n)"


def per_minute(expression: str) -> str:
    return f"{expression} * 60"


def quantile(q: float, by: Iterable[str], bucket_rate: str) -> str:
    """``histogram_quantile`` over bucket rates summed by ``by`` (and the bucket bound)."""
    return f"histogram_quantile({q:g}, {aggregate('sum', (*by, BUCKET_BOUND_LABEL), bucket_rate)})"


@dataclass(frozen=True)
class Scope:
    """The series one dashboard looks at: its service, its selected names, the user's label filter.

    Every selector of the dashboard's panels and variables is built here, so the job, the name variable
    and the filter are never forgotten in one query.
    """

    name_attribute: str
    """The attribute a dashboard's name variable selects (breaker or retried operation)."""
    name_variable: str
    options: DashboardOptions

    @property
    def job(self) -> Matcher:
        job = self.options.job
        value = f"${SERVICE_VARIABLE}" if job is None else _prometheus_string(job)
        return Matcher(JOB_LABEL, "=", value)

    @property
    def names(self) -> Matcher:
        return Matcher(label(self.name_attribute), "=~", f"${self.name_variable}")

    @property
    def name_label(self) -> str:
        return label(self.name_attribute)

    def select(self, metric: str, *matchers: Matcher) -> str:
        """A selector of ``metric`` for the dashboard's service and selected names, plus ``matchers``."""
        return _selector(metric, (self.job, *self.options.label_filter, self.names, *matchers))

    def rate(self, metric: str, *matchers: Matcher) -> str:
        return f"rate({self.select(metric, *matchers)}[{self.options.rate_window}])"

    def increase_over_range(self, metric: str, *matchers: Matcher) -> str:
        return f"increase({self.select(metric, *matchers)}[{WHOLE_RANGE}])"

    def services_query(self, metric: str) -> str:
        """``label_values`` listing the services (jobs) that report ``metric``."""
        return f"label_values({_selector(metric, self.options.label_filter)}, {JOB_LABEL})"

    def names_query(self, metric: str) -> str:
        """``label_values`` listing the names the dashboard's service reports ``metric`` for."""
        selector = _selector(metric, (self.job, *self.options.label_filter))
        return f"label_values({selector}, {self.name_label})"

    @property
    def rate_note(self) -> str:
        """What a reader of a rate panel needs to know about its window."""
        if self.options.rate_window == GRAFANA_RATE_INTERVAL:
            return (
                "Rates use $__rate_interval with a 1-minute minimum step on every query, so the window is at"
                " least 4 minutes: counters move only once per SDK export (60 s by default), and a shorter"
                " window would swing between 0 and double the true rate."
            )
        return (
            f"Rates use a fixed {self.options.rate_window} window on every query: counters move only once"
            " per SDK export (60 s by default), so a window shorter than 5 exports swings between 0 and"
            " double the true rate."
        )

    @property
    def window_summary(self) -> str:
        """The rate window, for a dashboard's description."""
        if self.options.rate_window == GRAFANA_RATE_INTERVAL:
            return (
                "Rate windows are $__rate_interval with a 1-minute minimum step (at least 4 minutes), sized"
                " for the SDK's 60 s default export interval."
            )
        return f"Rate windows are a fixed {self.options.rate_window}."


def _selector(metric: str, matchers: Iterable[Matcher]) -> str:
    inside = ", ".join(str(m) for m in matchers)
    return f"{metric}{{{inside}}}" if inside else metric
