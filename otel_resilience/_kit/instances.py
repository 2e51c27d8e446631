"""The live objects of an instrumented library (breakers, machines), held weakly, with their birthplace.

Objects made after ``instrument()`` are registered by a patch on their constructor, with the code
that created them (:func:`~otel_resilience._kit.names.code_site`): the name of an object the
application did not name. Objects made before are found once, by a scan of the garbage
collector's objects, and named after the module global that holds them.
"""

from __future__ import annotations

import gc
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from otel_resilience._kit.faults import contain
from otel_resilience._kit.names import code_site

if TYPE_CHECKING:
    from otel_resilience._kit.patching import Observer

T = TypeVar("T")

UNKNOWN_SITE = "unknown"
"""The birthplace of an object made while nothing was instrumented, and held by no module global."""


class InstanceRegistry(Generic[T]):
    """Every live instance of ``cls`` this instrumentation knows, with where it was created."""

    def __init__(self, cls: type[T], skip_packages: tuple[str, ...]) -> None:
        self._cls = cls
        self._skip_packages = skip_packages
        self._sites: weakref.WeakKeyDictionary[T, str] = weakref.WeakKeyDictionary()
        # Objects are registered from any thread while the metric reader's thread reads them.
        self._lock = threading.Lock()

    def register(self, instance: T) -> None:
        """A new instance, created by the code that called into the library just now."""
        site = code_site(self._skip_packages)
        with self._lock:
            self._sites[instance] = site

    def adopt_existing(self) -> None:
        """Find the instances created before ``instrument()``; name them after a module global."""
        cls = self._cls
        globals_by_id = {
            id(value): f"{module_name}.{attribute}"
            for module_name, module in list(sys.modules.items())
            for attribute, value in list(getattr(module, "__dict__", {}).items())
            if isinstance(value, cls)
        }
        for obj in gc.get_objects():
            if isinstance(obj, cls):
                with self._lock:
                    self._sites[obj] = globals_by_id.get(id(obj), UNKNOWN_SITE)

    def site(self, instance: T) -> str:
        """Where ``instance`` was created (``unknown`` for one made while this was not instrumented)."""
        site = self._sites.get(instance)
        if site is None:
            with self._lock:
                site = self._sites.setdefault(instance, UNKNOWN_SITE)
        return site

    def snapshot(self) -> list[T]:
        """The live instances now, safe to iterate while other threads register more."""
        with self._lock:
            return list(self._sites.keys())


def registering(registry: InstanceRegistry[Any], library: str) -> Observer:
    """The observer of a constructor patch: each new object registered with where it was created."""

    @contain(f"{library} breaker registration")
    def init(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        registry.register(instance)

    return init
