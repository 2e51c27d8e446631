"""The instrumentation kit's modules, each on its own: no instrumented library involved."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

import pytest
from opentelemetry.metrics import NoOpMeterProvider, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import NoOpTracerProvider
from wrapt import FunctionWrapper

from otel_resilience import contract as c
from otel_resilience._kit import deferred, faults
from otel_resilience._kit.gate import SdkGate
from otel_resilience._kit.instances import UNKNOWN_SITE, InstanceRegistry
from otel_resilience._kit.instruments import activate, create_observable, deactivate
from otel_resilience._kit.names import AttributeSets, NameRegistry, function_name
from otel_resilience._kit.patching import Patches, PatchPlan
from otel_resilience._kit.recording import Recorder
from otel_resilience._kit.settings import resolve_settings
from tests.support.telemetry import Telemetry

# -- faults -------------------------------------------------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.faults
def test_contain_swallows_and_logs_each_place_and_type_once(caplog: pytest.LogCaptureFixture) -> None:
    guard = faults.contain("unit block")
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        for _ in range(3):
            with guard:
                raise Boom("first")
        with guard:
            raise KeyError("other type")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "telemetry failed in unit block" in messages[0]
    assert "Boom: first" in messages[0]


@pytest.mark.faults
def test_contain_as_a_decorator_returns_none_on_a_fault() -> None:
    @faults.contain("unit function")
    def compute(value: int) -> int:
        if value < 0:
            raise Boom
        return value * 2

    assert compute(4) == 8
    assert compute(-1) is None
    assert ("unit function", Boom) in faults._reported


def test_contain_lets_what_is_not_a_fault_through() -> None:
    with pytest.raises(KeyboardInterrupt), faults.contain("unit interrupt"):
        raise KeyboardInterrupt
    assert not faults._reported


@pytest.mark.faults
def test_the_fault_fixture_sees_reported_faults() -> None:
    """The autouse fixture would fail this test if it were not marked ``faults``."""
    faults.report_fault("fixture check", Boom())
    assert ("fixture check", Boom) in faults._reported


# -- names --------------------------------------------------------------------------------------


def test_name_registry_caps_and_starts_each_reported_name_once(caplog: pytest.LogCaptureFixture) -> None:
    started: list[str] = []
    names = NameRegistry("unit", 2, started.append)
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        reported = [names.report(n) for n in ["a", "b", "a", "c", "d", "b", "c"]]
    assert reported == ["a", "b", "a", c.OVERFLOW_NAME, c.OVERFLOW_NAME, "b", c.OVERFLOW_NAME]
    assert started == ["a", "b", c.OVERFLOW_NAME]
    assert [r.getMessage() for r in caplog.records] == [
        "otel-resilience: more than 2 distinct unit names; 'c' and later new names are reported as"
        " '_OTHER' (raise OTEL_PYTHON_RESILIENCE_MAX_NAMES to see them)"
    ]


def test_name_registry_under_threads_admits_exactly_the_limit() -> None:
    started: list[str] = []
    names = NameRegistry("unit", 50, started.append)
    barrier = threading.Barrier(8)

    def report(offset: int) -> None:
        barrier.wait()
        for i in range(100):
            names.report(f"n{(i * 7 + offset) % 100}")

    threads = [threading.Thread(target=report, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    admitted = {v for v in names.reported.values() if v != c.OVERFLOW_NAME}
    assert len(admitted) == 50
    assert sorted(started) == sorted([*admitted, c.OVERFLOW_NAME])


@pytest.mark.faults
def test_a_failing_first_seen_still_reports_the_name() -> None:
    def fail(name: str) -> None:
        raise Boom

    assert NameRegistry("unit", 5, fail).report("x") == "x"
    assert ("unit series initialisation", Boom) in faults._reported


def test_attribute_sets_are_built_once_and_leave_out_none() -> None:
    sets = AttributeSets(c.BREAKER_NAME, c.OUTCOME, c.ERROR_TYPE)
    success = sets.get("db", "success", None)
    assert success == {c.BREAKER_NAME: "db", c.OUTCOME: "success"}
    assert sets.get("db", "success", None) is success
    failure = {c.BREAKER_NAME: "db", c.OUTCOME: "failure", c.ERROR_TYPE: "OSError"}
    assert sets.get("db", "failure", "OSError") == failure
    assert sets.get("db") == {c.BREAKER_NAME: "db"}


def test_function_name() -> None:
    assert function_name(test_function_name) == f"{__name__}.test_function_name"
    assert function_name(Boom()) == f"{__name__}.Boom"


# -- patching -----------------------------------------------------------------------------------


class Target:
    def eager(self) -> str:
        return "eager"

    def late(self) -> str:
        return "late"


def tagging(tag: str) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> str:
        return f"{tag}({wrapped(*args, **kwargs)})"

    return wrapper


def test_patches_install_eager_now_late_later_and_remove_every_one() -> None:
    originals = dict(vars(Target))
    patches = Patches()
    patches.apply(PatchPlan([(Target, "eager", tagging("e"))], [(Target, "late", tagging("l"))]))
    assert (Target().eager(), Target().late()) == ("e(eager)", "late")
    patches.install_late()
    patches.install_late()  # idempotent: one layer
    assert (Target().eager(), Target().late()) == ("e(eager)", "l(late)")
    assert not isinstance(vars(Target)["late"].__wrapped__, FunctionWrapper)
    patches.remove_all()
    assert all(vars(Target)[name] is originals[name] for name in ("eager", "late"))


def test_late_patches_are_never_installed_after_removal() -> None:
    patches = Patches()
    patches.apply(PatchPlan([], [(Target, "late", tagging("l"))]))
    patches.remove_all()
    patches.install_late()
    assert Target().late() == "late"


# -- the SDK gate -------------------------------------------------------------------------------


def test_gate_stays_closed_without_an_sdk_and_opens_once_with_one() -> None:
    opened: list[bool] = []
    noop = (NoOpTracerProvider(), NoOpMeterProvider())
    gate = SdkGate(*noop, spans=True, on_open=lambda: opened.append(gate.open))
    assert (gate(), gate.look(), opened) == (False, False, [])
    sdk_gate = SdkGate(None, MeterProvider(), spans=False, on_open=lambda: opened.append(sdk_gate.open))
    assert (sdk_gate(), sdk_gate(), sdk_gate.look()) == (True, True, True)
    assert opened == [False], "on_open ran once, before the gate reported itself open"


def test_gate_looks_again_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_resilience._kit import gate as gate_module

    now = [100.0]
    monkeypatch.setattr(gate_module, "monotonic", lambda: now[0])
    gate = SdkGate(NoOpTracerProvider(), NoOpMeterProvider(), spans=True)
    assert gate() is False
    gate._meter_provider = MeterProvider()
    now[0] += 0.5
    assert gate() is False, "within the second: not looked at again"
    now[0] += 0.6
    assert gate() is True


# -- observable instruments ---------------------------------------------------------------------


class UnitRecorder(Recorder[Any]):
    def __init__(self, meter_provider: MeterProvider, value: int) -> None:
        settings = resolve_settings({"meter_provider": meter_provider, "metrics_only": True})
        super().__init__(settings, "otel_resilience.unit", on_open=lambda: None)
        self.value = value
        create_observable(self, c.BREAKER_CONSECUTIVE_FAILURES, UnitRecorder.observe)

    def observe(self) -> list[Observation]:
        return [Observation(self.value, {c.BREAKER_NAME: "unit"})]


def observed(reader: InMemoryMetricReader) -> list[int]:
    data = reader.get_metrics_data()
    return [
        point.value
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]


def test_observables_read_the_active_recorder_of_their_meter() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    first = UnitRecorder(provider, 1)
    assert observed(reader) == [], "not active: nothing observed"
    activate(first)
    assert observed(reader) == [1]
    deactivate(first)
    second = UnitRecorder(provider, 2)  # the same meter: the first callback reads the second recorder
    activate(second)
    assert observed(reader) == [2]
    other = UnitRecorder(MeterProvider(), 3)  # another provider's recorder is not this meter's
    activate(other)
    assert observed(reader) == []
    deactivate(other)
    provider.shutdown()


def test_deferred_work_runs_in_order_and_once(telemetry: Telemetry) -> None:
    done: list[int] = []
    for i in range(3):
        deferred.defer(lambda i=i: done.append(i))
    deferred.run_deferred()
    deferred.run_deferred()
    assert done == [0, 1, 2]


# -- instances ----------------------------------------------------------------------------------


class Widget:
    pass


MODULE_WIDGET = Widget()


def test_instance_registry_names_existing_objects_and_forgets_dead_ones() -> None:
    local = Widget()
    registry = InstanceRegistry(Widget, ("otel_resilience",))
    registry.adopt_existing()
    assert registry.site(MODULE_WIDGET) == f"{__name__}.MODULE_WIDGET"
    assert registry.site(local) == UNKNOWN_SITE
    made = Widget()
    registry.register(made)  # as a constructor patch does: the caller is this test
    assert registry.site(made).startswith(f"{__name__}.test_instance_registry_names_existing_objects")
    count = len(registry.snapshot())
    del made, local
    gc.collect()
    assert len(registry.snapshot()) == count - 2
