"""The pieces both dashboards share, written once: datasource, variables, panel styles, common panels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import QueryEditorMode

from otel_resilience import contract
from otel_resilience._dashboards import _promql as promql

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from grafana_foundation_sdk.cog.builder import Builder

    from otel_resilience._dashboards._options import DashboardOptions, Matcher

DATASOURCE_TYPE: Final = "prometheus"
DATASOURCE_VARIABLE: Final = "datasource"
TAG: Final = "otel-resilience"
"""Every dashboard carries it; the dashboards link to each other through it."""
MIN_STEP: Final = "1m"
"""Every query's minimum step: it makes $__rate_interval at least 4 minutes (see the rate note)."""
LEGEND_CALCS: Final = ("mean", "max", "lastNotNull")
QUANTILE_CALCS: Final = ("mean", "max")
"""A mean and a max of quantiles; their last value says little."""
SCHEMA_VERSION: Final = 39
"""Grafana migrates older schemas on load; 39 is read by Grafana 10.4 and every later release."""


@dataclass(frozen=True)
class Grid:
    """A panel's place on Grafana's 24-column grid."""

    x: int
    y: int
    w: int
    h: int

    def model(self) -> model.GridPos:
        return model.GridPos(h=self.h, w=self.w, x=self.x, y=self.y)


@dataclass(frozen=True)
class Heading:
    """What tells a reader which panel this is, and where it stands."""

    panel_id: int
    title: str
    description: str
    grid: Grid


AnyPanel = TypeVar("AnyPanel", bargauge.Panel, stat.Panel, statetimeline.Panel, timeseries.Panel)


def headed(panel: AnyPanel, heading: Heading, options: DashboardOptions) -> AnyPanel:
    """``panel`` with its heading, reading the dashboards' datasource."""
    return (
        panel.id(heading.panel_id)
        .title(heading.title)
        .description(heading.description)
        .datasource(datasource(options))
        .grid_pos(heading.grid.model())
    )


def colored_by(mode: model.FieldColorModeId) -> dashboard_builders.FieldColor:
    return dashboard_builders.FieldColor().mode(mode)


def thresholds(*steps: tuple[str, float | None]) -> dashboard_builders.ThresholdsConfig:
    """Absolute thresholds, ``(color, from value)``; the first step's value is None (from -infinity)."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(color=color, value=value) for color, value in steps])
    )


def datasource(options: DashboardOptions) -> model.DataSourceRef:
    """The Prometheus every panel, query and variable reads: the user's, or the datasource variable."""
    uid = options.datasource_uid or f"${{{DATASOURCE_VARIABLE}}}"
    return model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=uid)


def query(
    options: DashboardOptions,
    expr: str,
    legend: str,
    ref_id: str = "A",
    *,
    instant: bool = False,
    exemplars: bool = False,
) -> prometheus.Dataquery:
    """A Prometheus query; ``exemplars`` shows the traces of recorded durations as points on the panel."""
    target = (
        prometheus.Dataquery()
        .datasource(datasource(options))
        .editor_mode(QueryEditorMode.CODE)
        .expr(expr)
        .interval(MIN_STEP)
        .legend_format(legend)
        .ref_id(ref_id)
    )
    if exemplars:
        target = target.exemplar(True)
    return target.instant() if instant else target.range()


# -- variables --------------------------------------------------------------------------------------


def variables(scope: promql.Scope, metric: str, label_text: str) -> list[Builder[model.VariableModel]]:
    """The datasource, service and name variables a dashboard's queries use (none a user fixed).

    ``metric`` is the series whose labels list the services and names: one every breaker or retried
    operation reports from its first use.
    """
    options = scope.options
    found: list[Builder[model.VariableModel]] = []
    if options.datasource_uid is None:
        found.append(
            dashboard_builders.DatasourceVariable(DATASOURCE_VARIABLE)
            .label("Data source")
            .type(DATASOURCE_TYPE)
            .hide(model.VariableHide.DONT_HIDE)
            .include_all(False)
            .multi(False)
            .regex("")
            .description("The Prometheus that scrapes the OpenTelemetry Collector's prometheus exporter.")
        )
    if options.job is None:
        found.append(
            _label_values_variable(options, promql.SERVICE_VARIABLE, scope.services_query(metric))
            .label("Service")
            .include_all(False)
            .multi(False)
            .description(
                f"Prometheus `{promql.JOB_LABEL}`:"
                " service.namespace/service.name of the instrumented process."
            )
        )
    all_names = model.VariableOption(selected=True, text=["All"], value=["$__all"])
    found.append(
        _label_values_variable(options, scope.name_variable, scope.names_query(metric))
        .label(label_text)
        .current(all_names)
        .include_all(True)
        .all_value(".*")
        .multi(True)
        .description(f"`{scope.name_label}`.")
    )
    return found


def _label_values_variable(
    options: DashboardOptions, name: str, label_values: str
) -> dashboard_builders.QueryVariable:
    # The structured query of Grafana's Prometheus variable editor ("Label values", qryType 1).
    editor_query: dict[str, object] = {
        "qryType": 1,
        "query": label_values,
        "refId": "PrometheusVariableQueryEditor-VariableQuery",
    }
    return (
        dashboard_builders.QueryVariable(name)
        .datasource(datasource(options))
        .query(editor_query)
        .hide(model.VariableHide.DONT_HIDE)
        .options([])
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .regex("")
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


# -- panels -----------------------------------------------------------------------------------------


def fixed_colors(
    series_colors: Mapping[str, str],
) -> list[Builder[model.DashboardFieldConfigSourceOverrides]]:
    """One override per series name (its legend) giving it a fixed color."""
    return [
        dashboard_builders.DashboardFieldConfigSourceOverrides()
        .matcher(model.MatcherConfig(id_val="byName", options=name))
        .properties([model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})])
        for name, color in series_colors.items()
    ]


def time_series(
    options: DashboardOptions,
    heading: Heading,
    unit: str,
    *,
    bars: bool = False,
    stacked: bool = False,
    legend_calcs: Sequence[str] = LEGEND_CALCS,
) -> timeseries.Panel:
    """A time series panel in the dashboards' one style: lines (or bars), table legend, shared tooltip."""
    return (
        headed(timeseries.Panel(), heading, options)
        .unit(unit)
        .min(0)
        .color_scheme(colored_by(model.FieldColorModeId.PALETTE_CLASSIC))
        .draw_style(common.GraphDrawStyle.BARS if bars else common.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(60 if stacked else 10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .axis_soft_min(0)
        .stacking(
            common_builders.StackingConfig()
            .mode(common.StackingMode.NORMAL if stacked else common.StackingMode.NONE)
            .group("A")
        )
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(list(legend_calcs))
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .overrides([])
    )


def rate_by_outcome(
    scope: promql.Scope,
    heading: Heading,
    spec: contract.MetricSpec,
    outcome_colors: Mapping[str, str],
    *,
    matchers: Sequence[Matcher] = (),
    in_minutes: bool = False,
    outcome: str = contract.OUTCOME,
) -> timeseries.Panel:
    """Calls of ``spec`` (a counter) per second, or per minute as bars, stacked by ``outcome``."""
    rate = promql.aggregate("sum", (promql.label(outcome),), scope.rate(promql.series(spec), *matchers))
    expr = promql.per_minute(rate) if in_minutes else rate
    return (
        time_series(
            scope.options,
            heading,
            "opm" if in_minutes else "ops",
            bars=in_minutes,
            stacked=True,
        )
        .overrides(fixed_colors(outcome_colors))
        .with_target(query(scope.options, expr, promql.legend(outcome)))
    )


def diagnostics(scope: promql.Scope, panel_id: int, grid: Grid) -> timeseries.Panel:
    """Misuse findings per minute, by finding and the breaker or operation it is about (both dashboards)."""
    subjects = (promql.label(contract.BREAKER_NAME), promql.label(contract.RETRY_NAME))
    findings = promql.aggregate(
        "sum",
        (promql.label(contract.DIAGNOSTIC), *subjects),
        scope.rate(promql.series(contract.DIAGNOSTICS)),
    )
    heading = Heading(
        panel_id,
        "Diagnostics: misused resilience code",
        "Calls and operations per minute affected by a misuse the instrumentation found, by finding and by"
        " the breaker or operation it is about: "
        + ", ".join(
            f"{finding.value} ({contract.FINDING_GUIDES[finding].wrong})" for finding in contract.Finding
        )
        + ". Each is logged once as a WARNING on logger otel_resilience saying what to do instead;"
        " docs/diagnostics.md has an example and the fix for each. Alert: ResilienceMisuse. "
        + scope.rate_note,
        grid,
    )
    legend = (
        promql.legend(contract.DIAGNOSTIC)
        + " "
        + promql.legend(contract.BREAKER_NAME)
        + promql.legend(contract.RETRY_NAME)
    )
    return time_series(scope.options, heading, "opm", bars=True, stacked=True).with_target(
        query(scope.options, promql.per_minute(findings), legend)
    )


def quantiles(
    scope: promql.Scope,
    heading: Heading,
    spec: contract.MetricSpec,
    *,
    levels: Iterable[tuple[str, float]] = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)),
    matchers: Sequence[Matcher] = (),
    whole_numbers: bool = False,
) -> timeseries.Panel:
    """Quantiles of a histogram per name, one query per ``(legend suffix, quantile)`` of ``levels``.

    ``whole_numbers`` rounds up (attempt counts); otherwise the unit is the histogram's seconds, and
    the first query shows the durations' exemplars: a click leads to the trace of a slow call.
    """
    panel = time_series(
        scope.options,
        heading,
        "none" if whole_numbers else "s",
        legend_calcs=QUANTILE_CALCS,
    )
    bucket_rate = scope.rate(promql.series(spec, "_bucket"), *matchers)
    for ref_id, (suffix, level) in zip("ABCDEFGH", levels):
        expr = promql.quantile(level, (scope.name_label,), bucket_rate)
        if whole_numbers:
            expr = promql.wrap("ceil", expr)
        legend = promql.legend(scope.name_attribute, f" {suffix}")
        exemplars = not whole_numbers and ref_id == "A"
        panel.with_target(query(scope.options, expr, legend, ref_id, exemplars=exemplars))
    return panel


def dashboard(
    uid: str,
    title: str,
    description: str,
    tags: Sequence[str],
    panels: Iterable[Builder[model.Panel]],
    variable_list: Iterable[Builder[model.VariableModel]],
) -> model.Dashboard:
    """A dashboard with the settings all of ours share: crosshair, 3 hours, 1-minute refresh, links."""
    board = (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, *tags])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-3h", "now")
        .timezone("browser")
        .refresh("1m")
        .fiscal_year_start_month(0)
        .week_start("")
        .version(1)
        .link(
            dashboard_builders.DashboardLink("otel-resilience dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
            .target_blank(False)
            .icon("external link")
            .tooltip("")
            .url("")
        )
        .variables(list(variable_list))
        .annotations([])
    )
    for panel in panels:
        board.with_panel(panel)
    built = board.build()
    built.schema_version = SCHEMA_VERSION  # the builder has no setter for it
    return built
