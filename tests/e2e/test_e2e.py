"""End to end: the demo under ``opentelemetry-instrument`` → OTLP → collector → Prometheus and Jaeger.

Every total Prometheus holds for the demo's service must equal the demo's own ground truth exactly,
and Jaeger must hold its traces. Nothing is skipped: a missing binary fails (scripts/stack builds or
installs it first).
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.parse
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from otel_resilience import contract as c
from otel_resilience._demo.truth import compare, expected_totals, observed_totals
from tests.support.dashboards import panel_queries, rules_with_for
from tests.support.demo_runs import NAMESPACE, DemoRun, prometheus_points, run_demo, totals_table
from tests.support.pipeline import Stack, http_json, prometheus_with_rules, wait_for
from tests.support.redis_server import redis_server


@pytest.fixture(scope="module")
def demo(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    service = f"demo-{uuid.uuid4().hex[:8]}"
    return run_demo(stack, tmp_path_factory.mktemp("demo"), service, str(uuid.uuid4()))


def test_prometheus_totals_equal_the_ground_truth(stack: Stack, demo: DemoRun) -> None:
    expected = expected_totals(demo.truth)
    selector = f'service_name="{demo.service}"'

    def agreeing() -> list[tuple[Any, float, float]] | None:
        rows = compare(expected, observed_totals(prometheus_points(stack, selector)))
        return rows if all(e == o for _, e, o in rows) else None

    deadline = time.monotonic() + 60
    rows = agreeing()
    while rows is None and time.monotonic() < deadline:
        time.sleep(1)
        rows = agreeing()
    final = rows or compare(expected, observed_totals(prometheus_points(stack, selector)))
    table = totals_table(final)
    print(f"\ndemo wall time {demo.wall_seconds:.1f} s; ground truth vs Prometheus:\n{table}")
    assert rows is not None, f"Prometheus totals differ from the ground truth:\n{table}"
    assert len(final) >= 40, "the demo exercised every metric with several outcomes"


def test_every_contract_metric_carries_the_service_labels(stack: Stack, demo: DemoRun) -> None:
    wait_for("the demo's series", lambda: stack.query(f'{{service_name="{demo.service}"}}'))
    for spec in c.METRICS:
        series = spec.prometheus_name + ("_count" if spec.kind is c.InstrumentKind.HISTOGRAM else "")
        result = stack.query(f'{series}{{job="{NAMESPACE}/{demo.service}"}}')
        assert result, f"{series} is missing for job {NAMESPACE}/{demo.service}"
        for item in result:
            assert item["metric"]["instance"] == demo.instance
            assert item["metric"]["service_name"] == demo.service


def test_jaeger_holds_operations_attempts_breaker_calls_and_transitions(stack: Stack, demo: DemoRun) -> None:
    def traces(operation: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"service": demo.service, "operation": operation, "limit": 2000})
        return list(http_json(f"{stack.jaeger}/api/traces?{query}", timeout=30).get("data") or [])

    retried = wait_for(
        "a retried payments operation in Jaeger",
        lambda: [t for t in traces("demo.fetch_payments") if len(t["spans"]) >= 5],
    )
    spans = {s["spanID"]: s for s in retried[0]["spans"]}
    parent_of = {s["spanID"]: (s["references"] or [{}])[0].get("spanID") for s in spans.values()}
    (operation,) = [s for s in spans.values() if s["operationName"] == "demo.fetch_payments"]
    attempts = [s for s in spans.values() if parent_of[s["spanID"]] == operation["spanID"]]
    assert len(attempts) >= 2
    assert {s["operationName"] for s in attempts} == {"demo.fetch_payments attempt"}
    breaker_calls = [s for s in spans.values() if s["operationName"] == "payments"]
    assert breaker_calls
    assert all(spans[parent_of[s["spanID"]]] in attempts for s in breaker_calls)

    def events(span: dict[str, Any]) -> list[str]:
        return [f["value"] for log in span["logs"] for f in log["fields"] if f["key"] == "event"]

    transitions = [s for t in traces("payments") for s in t["spans"] if c.STATE_CHANGE_EVENT in events(s)]
    assert transitions, "a circuit_breaker.state_change event on a breaker span"


def test_a_breaker_shared_through_redis_is_open_for_both_processes(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two demo processes share the inventory breaker through CircuitRedisStorage: when one trips
    it, Prometheus shows it open for both (told apart by service.instance.id).

    Each process reports the shared state as it last saw it, so the two can see the opening up to
    an export apart, and a scrape can fall between: both open within two scrapes (10 s) is both
    open in the same outage, which lasts about 6 s of the demo's 20.
    """
    tmp = tmp_path_factory.mktemp("shared")
    service = f"shared-{uuid.uuid4().hex[:8]}"
    instances = ["process-a", "process-b"]
    query = (
        f'max_over_time(resilience_circuit_breaker_status{{service_name="{service}",'
        ' resilience_circuit_breaker_name="inventory", resilience_circuit_breaker_state="open"}[10s])'
        " == 1"
    )
    with redis_server(tmp) as port, ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(run_demo, stack, tmp, service, instance, "--redis", f"redis://127.0.0.1:{port}/0")
            for instance in instances
        ]
        seen_open: set[str] = set()
        while not all(run.done() for run in runs) and seen_open != set(instances):
            seen_open = {item["metric"]["instance"] for item in stack.query(query)}
            time.sleep(1)
        results = [run.result() for run in runs]
    assert seen_open == set(instances), f"open for {sorted(seen_open)} only"
    # Each process saw the trip: its own or the other's, noticed through Redis.
    for result in results:
        assert result.truth["breakers"]["inventory"]["transitions"].get("closed->open", 0) >= 1


# -- the dashboards and alerts on the demo's data ---------------------------------------------------

STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}  # the state timeline's value mappings


def test_every_dashboard_panel_returns_data(stack: Stack, demo: DemoRun) -> None:
    """Every panel query, variables substituted, evaluated when the demo ended (rates over the run)."""
    at = demo.ended_at + 6  # one scrape after the last export
    window = f"{int(demo.wall_seconds) + 10}s"
    wait_for("the demo's last scrape", lambda: time.time() > at)
    job = f"{NAMESPACE}/{demo.service}"
    empty = []
    for query in panel_queries(job, rate_interval=window, range_=window):
        values = [float(item["value"][1]) for item in stack.query(query.expr, at)]
        print(f"{query.name}: {values}")
        if not [v for v in values if math.isfinite(v)]:
            empty.append(f"{query.name}: {query.expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_key_panels_agree_with_the_ground_truth(stack: Stack, demo: DemoRun) -> None:
    at = demo.ended_at + 6
    wait_for("the demo's last scrape", lambda: time.time() > at)
    job = f"{NAMESPACE}/{demo.service}"
    window = demo.wall_seconds + 10
    panels = {
        q.panel_title: q
        for q in panel_queries(job, rate_interval=f"{window:.0f}s", range_=f"{window:.0f}s")
        if q.ref_id == "A"
    }
    breakers = demo.truth["breakers"]

    (open_now,) = stack.query(panels["Breakers open now"].expr, at)
    assert float(open_now["value"][1]) == sum(b["final_state"] == "open" for b in breakers.values())

    timeline = {
        item["metric"][c.prometheus_label(c.BREAKER_NAME)]: float(item["value"][1])
        for item in stack.query(panels["Breaker state"].expr, at)
    }
    assert timeline == {name: STATE_VALUES[b["final_state"]] for name, b in breakers.items()}

    # Rates times the window they were taken over, which began before the demo started. rate() only
    # sees what a series counted after its first scrape (docs/telemetry.md, "Reading rates"): the
    # demo's breakers are busy, and payments trips, within seconds of starting, often before a scrape
    # saw their zero-initialised series. Prometheus extrapolates back towards zero, never below it, and
    # taken at the last scrape there is nothing to extrapolate forward: between what was counted after
    # each series' first scrape and what was counted in all. The exact totals are compared above.
    outcome_label = c.prometheus_label(c.OUTCOME)
    samples = f'{c.BREAKER_CALLS.prometheus_name}{{job="{job}"}}[{window:.0f}s]'
    last_scrape = max(float(item["values"][-1][0]) for item in stack.query(samples, at))
    unseen: Counter[str] = Counter()
    for item in stack.query(samples, last_scrape):
        unseen[item["metric"][outcome_label]] += float(item["values"][0][1])
    rates = {
        item["metric"][outcome_label]: float(item["value"][1]) * round(window)
        for item in stack.query(panels["Call rate by outcome"].expr, last_scrape)
    }
    for outcome in ("success", "rejected", "unguarded"):
        truth = sum(b["calls"].get(outcome, 0) for b in breakers.values())
        print(f"{outcome}: truth {truth}, first scraped {unseen[outcome]:g}, panel {rates[outcome]:.1f}")
        assert truth - unseen[outcome] - 1e-6 <= rates[outcome] <= truth + 1e-6, outcome

    # The same bounds for the unguarded calls panel, per breaker, and for the diagnostics panel.
    unguarded = {
        item["metric"][c.prometheus_label(c.BREAKER_NAME)]: float(item["value"][1]) * round(window)
        for item in stack.query(panels["Unguarded calls rate"].expr, last_scrape)
    }
    assert set(unguarded) == {n for n, b in breakers.items() if b["calls"].get("unguarded")}
    findings_samples = f'{c.DIAGNOSTICS.prometheus_name}{{job="{job}"}}[{window:.0f}s]'
    findings_unseen = sum(float(item["values"][0][1]) for item in stack.query(findings_samples, last_scrape))
    findings_panel = sum(
        float(item["value"][1]) * window / 60
        for item in stack.query(panels["Diagnostics: misused resilience code"].expr, last_scrape)
    )
    findings_truth = sum(sum(names.values()) for names in demo.truth["diagnostics"].values())
    print(f"findings: truth {findings_truth}, first scraped {findings_unseen:g}, panel {findings_panel:.1f}")
    assert findings_truth - findings_unseen - 1e-6 <= findings_panel <= findings_truth + 1e-6


def test_alerts_fire_and_resolve(stack: Stack, tmp_path: Path) -> None:
    """Real Prometheus with the shipped rules (a copy with `for: 5s`, the shipped timing is covered by
    promtool's unit tests) fires CircuitBreakerOpen while the demo's inventory outage holds the
    breaker open, and resolves it once the breaker closes; fires ResilienceMisuse while the
    recommendations breaker keeps counting breaker_blind_to_async findings; and fires
    StateMachineTriggersFailing (the label printer jams for half the run) and
    StateMachineTriggersRefused (order events replayed from half-way) on the orders machine."""
    service = f"alerts-{uuid.uuid4().hex[:8]}"
    job = f"{NAMESPACE}/{service}"
    breaker_label = c.prometheus_label(c.BREAKER_NAME)
    watched = {
        "CircuitBreakerOpen": {breaker_label: "inventory"},
        "ResilienceMisuse": {
            breaker_label: "recommendations",
            c.prometheus_label(c.DIAGNOSTIC): c.Finding.BREAKER_BLIND_TO_ASYNC.value,
        },
        "StateMachineTriggersFailing": {c.prometheus_label(c.STATEMACHINE_NAME): "orders"},
        "StateMachineTriggersRefused": {c.prometheus_label(c.STATEMACHINE_NAME): "orders"},
    }
    timelines: dict[str, list[tuple[float, str]]] = {name: [] for name in watched}
    with prometheus_with_rules(rules_with_for("5s"), tmp_path) as prometheus, ThreadPoolExecutor(1) as pool:
        began = time.monotonic()
        run = pool.submit(run_demo, stack, tmp_path, service, "alerts", duration=40)

        def alert_states() -> dict[str, str]:
            states = dict.fromkeys(watched, "inactive")
            for alert in http_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]:
                labels = alert["labels"]
                expected = watched.get(labels["alertname"]) if labels.get("job") == job else None
                if expected is not None and all(labels.get(k) == v for k, v in expected.items()):
                    states[labels["alertname"]] = str(alert["state"])
            return states

        def breaker_resolved() -> bool:
            states = [s for _, s in timelines["CircuitBreakerOpen"]]
            return "firing" in states and states[-1] == "inactive"

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for name, state in alert_states().items():
                timeline = timelines[name]
                if not timeline or timeline[-1][1] != state:
                    timeline.append((round(time.monotonic() - began, 1), state))
            if run.done() and breaker_resolved():
                break
            time.sleep(0.5)
        truth = run.result().truth
    for name, timeline in timelines.items():
        print(f"\n{name} (seconds into the demo): {timeline}")
    assert breaker_resolved(), timelines["CircuitBreakerOpen"]
    assert truth["breakers"]["inventory"]["final_state"] == "closed"
    # A finding keeps counting with every call: the alert fires, and stays until 5 minutes without one.
    assert "firing" in [s for _, s in timelines["ResilienceMisuse"]], timelines["ResilienceMisuse"]
    for name in ("StateMachineTriggersFailing", "StateMachineTriggersRefused"):
        assert "firing" in [s for _, s in timelines[name]], timelines[name]


def test_exemplars_lead_from_a_latency_panel_to_the_trace(stack: Stack, demo: DemoRun) -> None:
    """Prometheus stores exemplars of the attempt and breaker call durations (OpenMetrics from the
    collector, exemplar storage on), and Jaeger holds each one's trace with the span it names."""
    at = demo.ended_at + 6
    wait_for("the demo's last scrape", lambda: time.time() > at)
    job = f"{NAMESPACE}/{demo.service}"
    names = {
        c.RETRY_ATTEMPT_DURATION.name: lambda name: name.endswith(" attempt"),
        c.BREAKER_CALL_DURATION.name: lambda name: name in demo.truth["breakers"],
    }
    for spec in (c.RETRY_ATTEMPT_DURATION, c.BREAKER_CALL_DURATION):
        query = urllib.parse.urlencode(
            {"query": f'{spec.prometheus_name}_bucket{{job="{job}"}}', "start": at - 600, "end": at}
        )
        series = http_json(f"{stack.prometheus}/api/v1/query_exemplars?{query}")["data"]
        exemplars = [exemplar["labels"] for item in series for exemplar in item["exemplars"]]
        print(f"{spec.name}: {len(exemplars)} exemplars")
        assert exemplars, f"no exemplar of {spec.prometheus_name}"
        for labels in exemplars:  # every one: each library records its own durations
            trace_id, span_id = labels["trace_id"], labels["span_id"]

            def trace(trace_id: str = trace_id) -> dict[str, Any] | None:
                try:
                    found = http_json(f"{stack.jaeger}/api/traces/{trace_id}").get("data") or []
                except urllib.error.HTTPError:
                    return None  # not written yet
                return found[0] if found else None

            spans = {s["spanID"]: s["operationName"] for s in wait_for(f"trace {trace_id}", trace)["spans"]}
            assert span_id in spans, f"{spec.name}: span {span_id} not in trace {trace_id}"
            assert names[spec.name](spans[span_id]), f"{spec.name}: exemplar names span {spans[span_id]!r}"
