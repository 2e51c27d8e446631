"""The dashboards are generated from the contract: regeneration, schema round trip, no typed names, CLI.

``tests/integration/test_dashboards.py`` checks the generated files themselves (structure, PromQL, promtool).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_resilience import contract
from otel_resilience.__main__ import main
from otel_resilience._dashboards import (
    GRAFANA_RATE_INTERVAL,
    DashboardOptions,
    Matcher,
    OptionError,
    parse_label_filter,
    render_dashboards,
)
from tests.support.dashboards import (
    DASHBOARD_FILES,
    DASHBOARDS_DIR,
    iter_panels,
    parse_label_values,
    promql_names,
    promtool,
    substitute,
)

GENERATOR_DIR = Path(contract.__file__).parent / "_dashboards"
REGENERATE = "otel-resilience dashboards --out dashboards"

needs_builder = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="grafana-foundation-sdk, the dashboards' builder, needs Python 3.11"
)


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every panel query and variable query of a dashboard."""
    found = [target["expr"] for panel in iter_panels(dashboard) for target in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            selector, _ = parse_label_values(variable["query"]["query"])
            found.append(selector or "")
    return found


# -- the shipped files ------------------------------------------------------------------------------


@needs_builder
def test_shipped_dashboards_are_the_generated_ones() -> None:
    generated = render_dashboards()
    assert sorted(generated) == sorted(path.name for path in DASHBOARD_FILES)
    for path in DASHBOARD_FILES:
        assert path.read_text(encoding="utf-8") == generated[path.name], f"{path.name} is stale: {REGENERATE}"


@needs_builder
@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_decodes_into_the_sdk_model_without_loss(path: Path) -> None:
    """Grafana cannot run here: decoding into the SDK's typed model is the schema check."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard, Panel
    from grafana_foundation_sdk.models.prometheus import Dataquery

    register_default_plugins()  # panel options and queries decode into their plugins' types
    data = json.loads(path.read_text(encoding="utf-8"))
    decoded = Dashboard.from_json(data)
    assert json.loads(json.dumps(decoded, cls=JSONEncoder)) == data
    for panel in decoded.panels or []:
        assert isinstance(panel, Panel)
        assert not isinstance(panel.options, dict), f"{panel.title}: options of no known panel type"
        assert all(isinstance(target, Dataquery) for target in panel.targets or []), panel.title


def _names_of_the_contract() -> set[str]:
    names = {contract.prometheus_name(spec) for spec in contract.METRICS}
    attributes = {attribute for spec in contract.METRICS for attribute in spec.attributes}
    return names | attributes | {contract.prometheus_label(attribute) for attribute in attributes}


def _string_literals(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every string constant, the literal parts of f-strings included."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_generator_types_no_metric_or_label_name() -> None:
    names = _names_of_the_contract()
    modules = sorted(GENERATOR_DIR.glob("*.py"))
    assert len(modules) >= 5, modules
    typed = [
        f"{module.name}:{line}: {name!r}"
        for module in modules
        for line, text in _string_literals(module.read_text(encoding="utf-8"))
        for name in names
        if name in text
    ]
    assert not typed, "names to take from otel_resilience.contract:\n" + "\n".join(typed)


def test_the_name_check_sees_f_strings_and_docstrings() -> None:
    source = 'x = f"rate({y}{{job=1}})"\n"""doc: resilience_retry_calls_total"""\n'
    assert sorted(text for _, text in _string_literals(source)) == [
        "doc: resilience_retry_calls_total",
        "rate(",
        "{job=1})",
    ]


# -- variants ---------------------------------------------------------------------------------------


NAME_VARIABLES = {
    "circuit-breakers.json": "breaker",
    "retries.json": "operation",
    "state-machines.json": "machine",
}


@needs_builder
def test_variant_with_fixed_datasource_job_filter_and_window() -> None:
    options = DashboardOptions(
        datasource_uid="prom-eu",
        job='shop/"checkout"',
        label_filter=parse_label_filter('cluster="eu-1", region=~"eu-.*"'),
        rate_window="5m",
    )
    for name, text in render_dashboards(options).items():
        assert "${datasource}" not in text, name
        assert "$__rate_interval" not in text, name
        dashboard = json.loads(text)
        variables = [v["name"] for v in dashboard["templating"]["list"]]
        assert variables == [NAME_VARIABLES[name]], name
        for expr in _expressions(dashboard):
            for selector in promql_names(expr).selectors:
                matchers = set(selector.matchers)
                assert ("job", "=", 'shop/"checkout"') in matchers, expr
                assert {("cluster", "=", "eu-1"), ("region", "=~", "eu-.*")} <= matchers, expr
            assert set(promql_names(expr).ranges) <= {"5m", "$__range"}, expr
        for panel in iter_panels(dashboard):
            assert panel["datasource"] == {"type": "prometheus", "uid": "prom-eu"}, panel["title"]
            if any("[5m]" in t["expr"] for t in panel["targets"]):
                assert "fixed 5m window" in panel["description"], panel["title"]


@needs_builder
def test_variant_queries_parse(tmp_path: Path) -> None:
    options = DashboardOptions(
        job="shop", label_filter=(Matcher("cluster", "!~", "test.*"),), rate_window="2m"
    )
    expressions = [
        substitute(expr, service="unused")
        for text in render_dashboards(options).values()
        for expr in _expressions(json.loads(text))
    ]
    rules = {
        "groups": [
            {"name": "variant", "rules": [{"record": f"v:{i}", "expr": e} for i, e in enumerate(expressions)]}
        ]
    }
    path = tmp_path / "variant.rules.yml"
    path.write_text(json.dumps(rules), encoding="utf-8")  # JSON is YAML
    done = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"datasource_uid": "has space"}, "datasource uid"),
        ({"datasource_uid": "x" * 41}, "datasource uid"),
        ({"job": "  "}, "job"),
        ({"rate_window": "5"}, "rate window"),
        ({"rate_window": "5 m"}, "rate window"),
    ],
)
def test_invalid_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        DashboardOptions(**options)


def test_label_filter() -> None:
    assert parse_label_filter(r'a="x", b!~"y|z",c="say \"hi\""') == (
        Matcher("a", "=", "x"),
        Matcher("b", "!~", "y|z"),
        Matcher("c", "=", r"say \"hi\""),
    )
    for bad in ("", "a=x", 'a="x" b="y"', '1a="x"', 'a=="x"', 'a="x",'):
        with pytest.raises(OptionError, match="label filter"):
            parse_label_filter(bad)
    assert DashboardOptions().rate_window == GRAFANA_RATE_INTERVAL


# -- the command ------------------------------------------------------------------------------------


@needs_builder
def test_command_writes_importable_dashboards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grafana"
    assert main(["dashboards", "--out", str(out), "--datasource-uid", "X"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in DASHBOARD_FILES)
    assert capsys.readouterr().out.count("wrote ") == len(DASHBOARD_FILES)
    for name in written:
        dashboard = json.loads((out / name).read_text(encoding="utf-8"))
        assert dashboard["uid"] == json.loads((DASHBOARDS_DIR / name).read_text(encoding="utf-8"))["uid"]
        assert all(p["datasource"]["uid"] == "X" for p in iter_panels(dashboard))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--datasource-uid", "a b"], "datasource uid"),
        (["--label-filter", "cluster=eu"], "label filter"),
        (["--rate-window", "fast"], "rate window"),
    ],
)
def test_command_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dashboards", "--out", str(tmp_path), *arguments])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "otel-resilience dashboards: error:" in error
    assert message in error


def test_command_rejects_a_file_as_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(SystemExit) as exited:
        main(["dashboards", "--out", str(path)])
    assert exited.value.code == 2
    assert "not a directory" in capsys.readouterr().err


def test_command_without_the_builder_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes any import of the package fail as if it were not installed.
    for module in [m for m in sys.modules if m.partition(".")[0] == "grafana_foundation_sdk"] or [
        "grafana_foundation_sdk"
    ]:
        monkeypatch.setitem(sys.modules, module, None)
    for module in (
        "_write",
        "_circuit_breakers",
        "_retries",
        "_state_machines",
        "_panels",
    ):  # the modules that import it
        monkeypatch.delitem(sys.modules, f"otel_resilience._dashboards.{module}", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["dashboards", "--out", str(tmp_path)])
    assert exited.value.code == 1
    assert "pip install 'otel-resilience[dashboards]'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_builder_is_an_optional_extra() -> None:
    requirements = importlib.metadata.requires("otel-resilience") or []
    builder = [r for r in requirements if r.startswith("grafana-foundation-sdk")]
    assert builder, requirements
    assert all("extra ==" in r for r in builder), builder


def test_instrumentation_never_imports_the_builder() -> None:
    code = (
        "import sys, otel_resilience.pybreaker, otel_resilience.tenacity, otel_resilience.__main__,"
        " otel_resilience._dashboards; assert 'grafana_foundation_sdk' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
