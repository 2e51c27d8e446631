"""The kit's property patches: reads go through the wrapper, writes and deletes to the original, and
removal puts the very property back."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from otel_resilience._kit.patching import Patches, PatchPlan, WrappedProperty


class Thing:
    def __init__(self) -> None:
        self._value = 1

    @property
    def value(self) -> int:
        return self._value

    @property
    def settable(self) -> int:
        return self._value

    @settable.setter
    def settable(self, value: int) -> None:
        self._value = value


def test_a_property_is_patched_as_its_getter_and_restored() -> None:
    original, original_settable = vars(Thing)["value"], vars(Thing)["settable"]
    seen: list[tuple[Any, tuple[Any, ...]]] = []

    def plus_ten(
        wrapped: Callable[[], int], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> int:
        seen.append((instance, args))
        return wrapped() + 10

    patches = Patches()
    patches.apply(PatchPlan([(Thing, "value", plus_ten), (Thing, "settable", plus_ten)]))
    thing = Thing()
    assert isinstance(vars(Thing)["value"], WrappedProperty)
    assert thing.value == 11
    assert seen == [(thing, ())]
    with pytest.raises(AttributeError):
        thing.value = 3  # type: ignore[misc]
    thing.settable = 5
    assert thing.settable == 15
    assert Thing.value is vars(Thing)["value"]  # read on the class: the patch itself
    patches.remove_all()
    assert vars(Thing)["value"] is original
    assert vars(Thing)["settable"] is original_settable
    assert thing.value == 5
