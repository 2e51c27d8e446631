"""The Grafana dashboards and Prometheus alert rules: structure, PromQL, contract, promtool.

Nothing here is skipped: a missing promtool fails with install instructions (tests/dashboards.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_resilience import contract
from tests.support.dashboards import (
    ALERTS_DOC,
    DASHBOARD_FILES,
    DATASOURCE_REF,
    PROVISIONING_DIR,
    RULES_FILE,
    RULES_TEST_FILE,
    alert_rules,
    allowed_values,
    contract_series,
    dashboards,
    iter_panels,
    panel_queries,
    parse_label_values,
    promql_names,
    promtool,
    rules_with_for,
    substitute,
    variable_queries,
)

EXPORT_INTERVAL_SECONDS = 60
"""The OpenTelemetry SDK's default metric export interval: the windows below are sized for it."""

SAMPLE_SERVICE = "demo/shop"

DASHBOARD_VARIABLES = {
    "circuit-breakers.json": ("datasource", "service", "breaker"),
    "retries.json": ("datasource", "service", "operation"),
    "state-machines.json": ("datasource", "service", "machine"),
}

EXPECTED_PANELS = {
    "circuit-breakers.json": {
        "Breakers open now": "stat",
        "Breaker state": "state-timeline",
        "Transitions by target state": "timeseries",
        "Call rate by outcome": "timeseries",
        "Rejected calls rate": "timeseries",
        "Failure ratio": "timeseries",
        "Half-open probe outcomes": "timeseries",
        "Consecutive failures": "timeseries",
        "Call latency p50 / p95 / p99": "timeseries",
        "Unguarded calls rate": "timeseries",
        "Unguarded call failures by error type": "timeseries",
        "Diagnostics: misused resilience code": "timeseries",
    },
    "retries.json": {
        "Operations by outcome": "timeseries",
        "Share of operations that needed a retry": "timeseries",
        "Exhausted operations rate": "timeseries",
        "Attempts per operation p50 / p95 / max": "timeseries",
        "Attempt failure rate by error type": "timeseries",
        "Backoff time spent per second": "timeseries",
        "Attempt latency p50 / p95 / p99": "timeseries",
        "Top operations by attempts": "bargauge",
        "Diagnostics: misused resilience code": "timeseries",
    },
    "state-machines.json": {
        "Machines by state": "timeseries",
        "Triggers by outcome": "timeseries",
        "Transition rate by previous state -> state": "timeseries",
        "Refused, blocked and failed triggers by trigger and error type": "timeseries",
        "Share of failed triggers": "timeseries",
        "Trigger latency p50 / p95 / p99": "timeseries",
    },
}

ALLOWED_WINDOWS = {"$__rate_interval", "$__range"}
"""Dashboards never hard-code a rate window: Grafana sizes $__rate_interval from the step."""


def _duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|[smhdwy])", text)
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    assert parts, f"not a duration: {text!r}"
    return sum(int(n) * units[u] for n, u in parts)


def _github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def _run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        binary = promtool()
    except FileNotFoundError as error:
        pytest.fail(str(error))
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, cwd=cwd)


def _walk(node: Any, path: str = "") -> Any:
    """Yield (path, key, value) for every dict entry of a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


# -- dashboards: structure --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def all_dashboards() -> dict[str, dict[str, Any]]:
    return dashboards()


def test_dashboard_files_exist_and_are_json(all_dashboards: dict[str, dict[str, Any]]) -> None:
    assert sorted(all_dashboards) == sorted(p.name for p in DASHBOARD_FILES)
    uids = [d["uid"] for d in all_dashboards.values()]
    assert len(set(uids)) == len(uids), uids
    for name, dashboard in all_dashboards.items():
        assert dashboard.get("uid"), name
        assert dashboard.get("title"), name
        assert 36 <= dashboard["schemaVersion"] <= 41, f"{name}: schemaVersion {dashboard['schemaVersion']}"
        assert dashboard.get("description"), f"{name}: no dashboard description"
        assert "otel-resilience" in dashboard.get("tags", []), name


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_no_import_inputs_or_hard_coded_datasource(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "${DS_" not in text, f"{path.name}: ${{DS_...}} import inputs do not resolve under provisioning"
    dashboard = yaml.safe_load(text)
    assert "__inputs" not in dashboard, f"{path.name}: __inputs (an export for sharing) cannot be provisioned"
    for where, key, value in _walk(dashboard):
        if key != "datasource":
            continue
        if isinstance(value, dict):
            assert value == DATASOURCE_REF, f"{path.name}{where}: datasource {value}"
        else:
            assert value == "${datasource}", f"{path.name}{where}: datasource {value!r}"


def test_variables(all_dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in all_dashboards.items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert tuple(variables) == DASHBOARD_VARIABLES[name], name
        datasource = variables["datasource"]
        assert datasource["type"] == "datasource", name
        assert datasource["query"] == "prometheus", name
        assert not datasource.get("current", {}).get("value"), f"{name}: datasource variable pinned to a uid"
        service = variables["service"]
        assert service["type"] == "query", name
        selector, label = parse_label_values(dict(variable_queries(dashboard))["service"])
        assert label == "job", f"{name}: service variable must list `job` values"
        assert selector, name
        selection = DASHBOARD_VARIABLES[name][2]
        variable = variables[selection]
        assert variable["type"] == "query", name
        assert variable["multi"] is True, f"{name}: ${selection} must be multi-value"
        assert variable["includeAll"] is True, f"{name}: ${selection} must include All"
        assert variable.get("allValue") == ".*", name
        selector, label = parse_label_values(dict(variable_queries(dashboard))[selection])
        assert selector, name
        assert 'job="$service"' in selector, f"{name}: ${selection} must follow $service"


def test_expected_panels(all_dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in all_dashboards.items():
        found = {p["title"]: p["type"] for p in iter_panels(dashboard)}
        assert found == EXPECTED_PANELS[name], name


def test_panel_ids_unique_and_grid_not_overlapping(all_dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in all_dashboards.items():
        panels = list(iter_panels(dashboard))
        ids = [p["id"] for p in panels]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids {ids}"
        boxes = []
        for panel in panels:
            grid = panel["gridPos"]
            x, y, w, h = (grid[k] for k in ("x", "y", "w", "h"))
            assert all(isinstance(v, int) for v in (x, y, w, h)), f"{name}: {panel['title']} {grid}"
            assert min(x, y) >= 0, f"{name}: {panel['title']} {grid}"
            assert min(w, h) > 0, f"{name}: {panel['title']} {grid}"
            assert x + w <= 24, f"{name}: {panel['title']} wider than the grid {grid}"
            boxes.append((panel["title"], x, y, w, h))
        for i, (title_a, xa, ya, wa, ha) in enumerate(boxes):
            for title_b, xb, yb, wb, hb in boxes[i + 1 :]:
                overlap = xa < xb + wb and xb < xa + wa and ya < yb + hb and yb < ya + ha
                assert not overlap, f"{name}: panels {title_a!r} and {title_b!r} overlap"


def test_panels_descriptions_datasource_targets(all_dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in all_dashboards.items():
        for panel in iter_panels(dashboard):
            where = f"{name}: {panel['title']}"
            assert len(panel.get("description", "")) >= 80, f"{where}: describe what it shows and what to do"
            assert panel.get("datasource") == DATASOURCE_REF, where
            targets = panel.get("targets")
            assert targets, f"{where}: no targets"
            ref_ids = [t.get("refId") for t in targets]
            assert all(ref_ids), f"{where}: target without refId"
            assert len(set(ref_ids)) == len(ref_ids), f"{where}: refIds {ref_ids}"
            for target in targets:
                assert target.get("datasource") == DATASOURCE_REF, f"{where}: target {target.get('refId')}"
                assert target.get("expr", "").strip(), f"{where}: empty expr"
                if "$__rate_interval" in target["expr"]:
                    # The minimum step makes $__rate_interval at least 4 minutes: counters move
                    # once per 60 s export.
                    assert target.get("interval") == "1m", f"{where}: set the target's min step to 1m"


def test_rate_windows_use_grafana_intervals(all_dashboards: dict[str, dict[str, Any]]) -> None:
    for query in panel_queries(SAMPLE_SERVICE):
        ranges = set(promql_names(query.raw_expr).ranges)
        assert ranges <= ALLOWED_WINDOWS, f"{query.name}: hard-coded range {ranges - ALLOWED_WINDOWS}"


def _expected_unit(expr: str) -> str:
    """The unit a query's result has, judged from its shape."""
    if "histogram_quantile" in expr:
        return "s" if "_seconds_bucket" in expr else "none"
    if re.search(r"rate\(\w+_seconds_sum", expr):
        return "s"  # seconds per second: the time spent
    if re.search(r"\)\s*/\s*\(?", expr):
        return "percentunit"  # a ratio of two rates, 0..1
    if "increase(" in expr:
        return "short"
    if "rate(" in expr:
        return "opm" if re.search(r"\*\s*60\s*$", expr) else "ops"
    return "none"  # a gauge


def test_units(all_dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in all_dashboards.items():
        for panel in iter_panels(dashboard):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            assert unit, f"{name}: {panel['title']}: fieldConfig.defaults.unit not set"
            for target in panel["targets"]:
                expected = _expected_unit(target["expr"])
                assert unit == expected, f"{name}: {panel['title']}: unit {unit!r}, query gives {expected!r}"
            if unit == "percentunit":
                assert panel["fieldConfig"]["defaults"].get("max") == 1, f"{name}: {panel['title']}"


def test_state_timeline_maps_states(all_dashboards: dict[str, dict[str, Any]]) -> None:
    panel = next(
        p for p in iter_panels(all_dashboards["circuit-breakers.json"]) if p["type"] == "state-timeline"
    )
    options = {}
    for mapping in panel["fieldConfig"]["defaults"]["mappings"]:
        assert mapping["type"] == "value"
        options.update(mapping["options"])
    assert {k: (v["text"], v["color"]) for k, v in options.items()} == {
        "0": ("closed", "green"),
        "1": ("half-open", "yellow"),
        "2": ("open", "red"),
    }
    assert "by (resilience_circuit_breaker_name)" in panel["targets"][0]["expr"], "one row per breaker"


def test_open_breakers_stat_turns_red(all_dashboards: dict[str, dict[str, Any]]) -> None:
    panel = next(p for p in iter_panels(all_dashboards["circuit-breakers.json"]) if p["type"] == "stat")
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0]["color"] == "green"
    assert steps[0]["value"] is None
    assert steps[1]["color"] == "red"
    assert 0 < steps[1]["value"] <= 1


def test_provisioning_files() -> None:
    datasources = yaml.safe_load((PROVISIONING_DIR / "datasources" / "datasources.yaml").read_text())
    assert datasources["apiVersion"] == 1
    prometheus, jaeger = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["uid"]
    assert prometheus["url"].startswith("http")
    assert prometheus.get("isDefault") is True, "the dashboards' datasource variable picks the default"
    assert jaeger["type"] == "jaeger"
    assert jaeger["url"] == "http://127.0.0.1:16686", "Jaeger's query port in the compose stack"
    (to_traces,) = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert to_traces == {"name": "trace_id", "datasourceUid": jaeger["uid"]}, "exemplars open their trace"
    providers = yaml.safe_load((PROVISIONING_DIR / "dashboards" / "otel-resilience.yaml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


# -- PromQL: syntax (promtool) and the telemetry contract -----------------------------------------


def _all_expressions() -> list[tuple[str, str]]:
    """(where, expression) of every panel query, variable selector and alert, variables substituted."""
    found = [(q.name, q.expr) for q in panel_queries(SAMPLE_SERVICE, "inventory|payments", "fetch_.*")]
    for name, dashboard in dashboards().items():
        for variable, query in variable_queries(dashboard):
            selector, _ = parse_label_values(query)
            if selector:
                found.append((f"{name} / ${variable}", substitute(selector, service=SAMPLE_SERVICE)))
    found += [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
    return found


def test_every_expression_parses(tmp_path: Path) -> None:
    expressions = _all_expressions()
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"check:expression_{i}:parse", "expr": expr}
                    for i, (_, expr) in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    done = _run_promtool("check", "rules", str(path))
    index = {f"check:expression_{i}:parse": where for i, (where, _) in enumerate(expressions)}
    output = re.sub(
        r"check:expression_\d+:parse", lambda m: index.get(m.group(), m.group()), done.stdout + done.stderr
    )
    assert done.returncode == 0, output
    assert f"SUCCESS: {len(expressions)} rules found" in done.stdout, output


def test_metrics_and_labels_are_in_the_contract() -> None:
    series = contract_series()
    known_labels = set().union(*(labels for _, labels in series.values()))
    for where, expr in _all_expressions():
        names = promql_names(expr)
        assert names.selectors, f"{where}: no metric in {expr!r}"
        for selector in names.selectors:
            assert selector.metric in series, f"{where}: {selector.metric!r} is not a metric of the contract"
            spec, labels = series[selector.metric]
            for label, operator, value in selector.matchers:
                assert label in labels, f"{where}: {selector.metric} has no label {label!r}"
                allowed = allowed_values(spec, label)
                if allowed is None:
                    continue
                if operator in ("=", "!="):
                    values = [value]
                elif re.fullmatch(r"\w+(\|\w+)*", value):
                    values = value.split("|")
                else:
                    continue
                for v in values:
                    assert v in allowed, f"{where}: {label}={v!r} never occurs on {spec.name} ({allowed})"
        for label in names.grouping_labels:
            assert label in known_labels, f"{where}: grouping by unknown label {label!r}"


def test_histogram_series_only_for_histograms() -> None:
    for where, expr in _all_expressions():
        for selector in promql_names(expr).selectors:
            spec, _ = contract_series()[selector.metric or ""]
            if selector.metric and selector.metric.endswith("_bucket"):
                assert spec.kind is contract.InstrumentKind.HISTOGRAM, where
                assert "histogram_quantile" in expr, f"{where}: buckets without histogram_quantile"


def test_panel_queries_helper_substitutes_everything() -> None:
    queries = list(panel_queries("ns/svc", "a", "b", rate_interval="30s", range_="5m"))
    assert len(queries) == sum(len(p["targets"]) for d in dashboards().values() for p in iter_panels(d))
    for query in queries:
        assert "$" not in query.expr, query.name
        assert 'job="ns/svc"' in query.expr, query.name
    assert any(q.instant for q in queries)
    assert any(not q.instant for q in queries)
    with pytest.raises(KeyError):
        substitute("up{x=~'$nope'}", service="s")


# -- alert rules ------------------------------------------------------------------------------------

EXPECTED_ALERTS = {
    "CircuitBreakerOpen",
    "CircuitBreakerFlapping",
    "CircuitBreakerRejectingCalls",
    "RetryExhaustion",
    "RetryStorm",
    "StateMachineTriggersFailing",
    "StateMachineTriggersRefused",
    "ResilienceMisuse",
}


def test_promtool_check_rules_with_lint() -> None:
    done = _run_promtool("check", "rules", "--lint=all", "--lint-fatal", str(RULES_FILE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout, done.stdout


def test_promtool_unit_tests_pass() -> None:
    done = _run_promtool("test", "rules", RULES_TEST_FILE.name, cwd=RULES_TEST_FILE.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout


def test_alerts_are_complete() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == EXPECTED_ALERTS
    anchors = _github_anchors(ALERTS_DOC.read_text(encoding="utf-8"))
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations.get("summary"), name
        assert annotations.get("description"), name
        url = annotations["runbook_url"]
        assert url == f"docs/alerts.md#{name.lower()}", f"{name}: runbook_url {url}"
        assert name.lower() in anchors, f"{name}: no section '## {name}' in docs/alerts.md"
        kept = {
            label.strip()
            for group in re.findall(r"by \(([^)]*)\)", rule["expr"])
            for label in group.split(",")
        }
        assert "job" in kept, f"{name}: aggregated without job"
        for label in re.findall(r"\$labels\.(\w+)", " ".join(annotations.values())):
            assert label in kept, f"{name}: {label} not kept"


def test_alert_windows_fit_the_export_interval() -> None:
    """Rate windows hold at least 5 exports; `for:` spans at least 5 exports when set."""
    for rule in alert_rules():
        for window in promql_names(rule["expr"]).ranges:
            seconds = _duration_seconds(window)
            assert seconds >= 5 * EXPORT_INTERVAL_SECONDS, f"{rule['alert']}: window {window}"
        if "for" in rule:
            seconds = _duration_seconds(rule["for"])
            assert seconds >= 5 * EXPORT_INTERVAL_SECONDS, f"{rule['alert']}: for {rule['for']}"
    (open_alert,) = (r for r in alert_rules() if r["alert"] == "CircuitBreakerOpen")
    assert "for" in open_alert, "CircuitBreakerOpen must not page on one exported sample"


def test_every_alert_has_firing_and_silent_unit_tests() -> None:
    document = yaml.safe_load(RULES_TEST_FILE.read_text(encoding="utf-8"))
    assert document["rule_files"] == [RULES_FILE.name]
    firing: set[str] = set()
    silent: set[str] = set()
    for group in document["tests"]:
        assert "interval" in group, f"{group.get('name')}: promtool 2.42 needs `interval:` in each group"
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    assert firing == EXPECTED_ALERTS, f"no firing case for {EXPECTED_ALERTS - firing}"
    assert silent == EXPECTED_ALERTS, f"no silent case for {EXPECTED_ALERTS - silent}"


def test_rules_with_short_for_still_load(tmp_path: Path) -> None:
    path = tmp_path / "short.rules.yml"
    path.write_text(rules_with_for("10s"), encoding="utf-8")
    done = _run_promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert {r.get("for") for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]} == {"10s"}
