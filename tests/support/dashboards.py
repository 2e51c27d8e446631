"""The shipped Grafana dashboards and Prometheus rules, as data the tests can check and run.

Used by ``tests/integration/test_dashboards.py`` (structure, PromQL, contract) and by the end-to-end
test, which runs every panel query against a real Prometheus holding demo data::

    from tests.support.dashboards import panel_queries

    for query in panel_queries(service="demo/shop", rate_interval="30s", range_="10m"):
        result = prometheus.query(query.expr)  # instant query, or a range query
        assert result, query.name

Template variables are substituted as Grafana would: ``$service`` is a literal inside
``job="$service"``, ``$breaker`` and ``$operation`` are regular expressions inside ``=~`` (Grafana's
"All" is ``.*``), ``$__rate_interval`` and ``$__range`` are durations.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from otel_resilience import contract
from tests.support import ROOT

DASHBOARDS_DIR = ROOT / "dashboards"
DASHBOARD_FILES = (
    DASHBOARDS_DIR / "circuit-breakers.json",
    DASHBOARDS_DIR / "retries.json",
    DASHBOARDS_DIR / "state-machines.json",
)
RULES_FILE = DASHBOARDS_DIR / "alerts" / "resilience.rules.yml"
RULES_TEST_FILE = DASHBOARDS_DIR / "alerts" / "resilience.rules.test.yml"
ALERTS_DOC = ROOT / "docs" / "alerts.md"
PROVISIONING_DIR = DASHBOARDS_DIR / "provisioning"

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
"""What every panel, target and query variable must name as its datasource."""

# -- loading --------------------------------------------------------------------------------------


def load_dashboard(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def dashboards() -> dict[str, dict[str, Any]]:
    """The shipped dashboards by file name."""
    return {path.name: load_dashboard(path) for path in DASHBOARD_FILES}


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those nested in collapsed rows included; rows themselves are not yielded."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def alert_rules() -> list[dict[str, Any]]:
    """The alerting rules of the shipped rule file (recording rules excluded)."""
    with RULES_FILE.open(encoding="utf-8") as f:
        groups = yaml.safe_load(f)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def rules_with_for(duration: str) -> str:
    """The shipped rule file with every alert's ``for:`` replaced (a test-only copy for short runs)."""
    with RULES_FILE.open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = duration
    return yaml.safe_dump(doc, sort_keys=False)


def promtool() -> str:
    """Path of promtool (``$PROMTOOL`` or ``PATH``); raises with install instructions if missing."""
    found = shutil.which(os.environ.get("PROMTOOL") or "promtool")
    if not found:
        raise FileNotFoundError(
            "promtool not found on PATH (or $PROMTOOL): it checks and unit-tests the alert rules and"
            " parses every dashboard query. Install Debian's Prometheus, which ships it:"
            " `apt-get install -y --no-install-recommends prometheus` (then stop the service it"
            " starts: `service prometheus stop; service prometheus-node-exporter stop`)."
        )
    return found


# -- template variables ---------------------------------------------------------------------------


def _prometheus_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def substitute(
    expr: str,
    *,
    service: str,
    breaker: str = ".*",
    operation: str = ".*",
    machine: str = ".*",
    rate_interval: str = "1m",
    range_: str = "1h",
    interval: str = "1m",
) -> str:
    """Replace Grafana's template variables in a query with concrete values.

    ``service`` is a literal (escaped for a PromQL string); ``breaker``, ``operation`` and ``machine`` are RE2
    regular expressions, as Grafana substitutes multi-value variables inside ``=~``.
    """
    values = {
        "__rate_interval": rate_interval,
        "__range": range_,
        "__interval": interval,
        "service": _prometheus_string(service),
        "breaker": _prometheus_string(breaker),
        "operation": _prometheus_string(operation),
        "machine": _prometheus_string(machine),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


# -- panel queries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel, template variables substituted."""

    dashboard: str
    """The dashboard's file name."""
    panel_id: int
    panel_title: str
    panel_type: str
    ref_id: str
    raw_expr: str
    expr: str
    legend: str
    instant: bool
    """True for panels that show one value per series (stat, bar gauge): run as an instant query."""
    unit: str

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel_title} / {self.ref_id}"


def panel_queries(
    service: str,
    breaker: str = ".*",
    operation: str = ".*",
    machine: str = ".*",
    *,
    rate_interval: str = "1m",
    range_: str = "1h",
) -> Iterator[PanelQuery]:
    """Every panel query of both dashboards with the variables substituted.

    ``rate_interval`` stands for Grafana's ``$__rate_interval`` (at least 4 minutes in Grafana,
    because of the 1-minute minimum step of the panels; tests with short export intervals pass
    less), ``range_`` for ``$__range`` (the dashboard's time range).
    """
    for file_name, dashboard in dashboards().items():
        for panel in iter_panels(dashboard):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
            for target in panel.get("targets", []):
                raw = target["expr"]
                yield PanelQuery(
                    dashboard=file_name,
                    panel_id=panel["id"],
                    panel_title=panel["title"],
                    panel_type=panel["type"],
                    ref_id=target["refId"],
                    raw_expr=raw,
                    expr=substitute(
                        raw,
                        service=service,
                        breaker=breaker,
                        operation=operation,
                        machine=machine,
                        rate_interval=rate_interval,
                        range_=range_,
                    ),
                    legend=target.get("legendFormat", ""),
                    instant=bool(target.get("instant")) and not target.get("range", False),
                    unit=unit,
                )


def variable_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(variable name, query)`` of every query variable (``label_values(...)`` as written)."""
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        yield variable["name"], query["query"] if isinstance(query, dict) else query


_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>[a-zA-Z_]\w*)\s*\)\s*$"
)


def parse_label_values(query: str) -> tuple[str | None, str]:
    """Split Grafana's ``label_values(selector, label)`` into its selector (or None) and label."""
    match = _LABEL_VALUES.match(query)
    if not match:
        raise ValueError(f"not a label_values() query: {query!r}")
    return match.group("selector"), match.group("label")


# -- a small PromQL reader: metric names, label matchers, grouping labels --------------------------

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*(?![\w:]))
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-zA-Z_:][\w:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^=<>(){},@])
  | (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
    """,
    re.VERBOSE,
)
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = _GROUPING | {"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"}
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip


@dataclass(frozen=True)
class Selector:
    """A vector selector: ``metric{label op "value", ...}``."""

    metric: str | None
    matchers: tuple[tuple[str, str, str], ...]
    """``(label, operator, value)`` with the value unquoted."""


@dataclass(frozen=True)
class PromQLNames:
    selectors: tuple[Selector, ...]
    grouping_labels: tuple[str, ...]
    """Labels named in by/without/on/ignoring/group_left/group_right."""
    ranges: tuple[str, ...]
    """The contents of every ``[...]`` range (e.g. ``5m``, ``$__rate_interval``)."""


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if not match:
            raise ValueError(f"cannot read PromQL at {expr[position : position + 20]!r} in {expr!r}")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def promql_names(expr: str) -> PromQLNames:
    """The metric names, label matchers and grouping labels an expression uses.

    Not a PromQL parser (promtool checks syntax): enough to tell metric names from functions,
    keywords and durations in the expressions of this repository.
    """
    tokens = _tokens(expr)
    selectors: list[Selector] = []
    grouping: list[str] = []
    ranges: list[str] = []
    i = 0

    def matchers_from(start: int) -> tuple[tuple[tuple[str, str, str], ...], int]:
        # tokens[start] is "{"; returns the matchers and the index after "}".
        found = []
        j = start + 1
        while tokens[j][1] != "}":
            if tokens[j][1] == ",":
                j += 1
                continue
            label, operator, value = tokens[j][1], tokens[j + 1][1], tokens[j + 2]
            if value[0] != "string":
                raise ValueError(f"unexpected matcher value {value[1]!r} in {expr!r}")
            found.append((label, operator, _unquote(value[1])))
            j += 3
        return tuple(found), j + 1

    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "range":
            ranges.append(text[1:-1].split(":")[0].strip())
            i += 1
        elif kind == "ident" and text.lower() in _KEYWORDS:
            if text.lower() in _GROUPING and following == "(":
                j = i + 2
                while tokens[j][1] != ")":
                    if tokens[j][0] == "ident":
                        grouping.append(tokens[j][1])
                    j += 1
                i = j + 1
            else:
                i += 1
        elif kind == "ident" and (
            following == "(" or (text in _AGGREGATIONS and following.lower() in ("by", "without"))
        ):
            i += 1  # a function or an aggregation operator
        elif kind == "ident":
            if following == "{":
                matchers, i = matchers_from(i + 1)
            else:
                matchers, i = (), i + 1
            selectors.append(Selector(text, matchers))
        elif text == "{":
            matchers, i = matchers_from(i)
            selectors.append(Selector(None, matchers))
        else:
            i += 1
    return PromQLNames(tuple(selectors), tuple(grouping), tuple(ranges))


# -- the contract in Prometheus terms -------------------------------------------------------------

COMMON_LABELS = ("job", "instance")
"""Labels every series has besides its attributes (set by the collector's prometheus exporter)."""


def contract_series() -> dict[str, tuple[contract.MetricSpec, frozenset[str]]]:
    """Every Prometheus series name of the contract with its metric and the labels it may carry."""
    series: dict[str, tuple[contract.MetricSpec, frozenset[str]]] = {}
    for spec in contract.METRICS:
        labels = frozenset({contract.prometheus_label(a) for a in spec.attributes} | set(COMMON_LABELS))
        base = contract.prometheus_name(spec)
        if spec.kind is contract.InstrumentKind.HISTOGRAM:
            series[base + "_bucket"] = (spec, labels | {"le"})
            series[base + "_sum"] = (spec, labels)
            series[base + "_count"] = (spec, labels)
        else:
            series[base] = (spec, labels)
    return series


def allowed_values(spec: contract.MetricSpec, label: str) -> tuple[str, ...] | None:
    """The closed set of values a label of a metric may take, or None when it is open."""
    for attribute in spec.attributes:
        if contract.prometheus_label(attribute) != label:
            continue
        if attribute == contract.OUTCOME:
            return contract.OUTCOMES_BY_METRIC.get(spec.name)
        return contract.ALLOWED_VALUES.get(attribute)
    return None
