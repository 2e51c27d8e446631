"""automat's patch points: ``Transitioner.transition``, which both APIs call for every input.

``MethodicalMachine`` inputs (``doInput``) and ``TypeMachine`` inputs (``implementation``) look the
transitioner up and call ``transition(input)`` at call time, for instances made before or after
``instrument()``: it says the state before, the input and the state after (or raises
``NoTransition``: refused). The outputs it returns are then called by automat's input function; to
see them raise (failed: the new state is already set) and to make the trigger's span current while
they run, that function receives each output behind a proxy that behaves as the output. A caller
other than automat's own input functions (code calling ``transition`` itself) gets the outputs
untouched, and the trigger is recorded when ``transition`` returns.

``Transitioner.__init__`` registers each transitioner for the instance census. Nothing is
registered with automat: ``_setTrace`` is one slot per instance that the application may use.
"""

from __future__ import annotations

import gc
import sys
import weakref
from typing import TYPE_CHECKING, Any, Callable

from automat import MethodicalMachine, NoTransition, TypeMachine
from automat._core import Transitioner
from automat._methodical import MethodicalInput, _transitionerFromInstance
from automat._typed import implementMethod
from wrapt import ObjectProxy

from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.gate import gated
from otel_resilience._kit.instances import InstanceRegistry
from otel_resilience._kit.patching import Observer, PatchPlan, PatchTarget, Wrapper, after_call
from otel_resilience._kit.recording import make_current, restore
from otel_resilience._statemachines import (
    FAILED,
    REFUSED,
    TRANSITIONED,
    ActiveTrigger,
    Instance,
    MachineTelemetry,
    TriggerInfo,
    Verdict,
    cancelled_or,
    class_name,
    state_name,
    type_name,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import CodeType, FrameType

    from otel_resilience._kit.settings import Settings

_SKIPPED_PACKAGES = ("automat", "wrapt", "otel_resilience")
_FRAMES_UP = 4
"""How far above ``transition`` (or ``Transitioner.__init__``) automat's own caller may be."""


CodeKey = tuple[str, int]
"""A function's code by where it is written: automat renames ``doInput``'s code after each input."""


def _key(code: CodeType) -> CodeKey:
    return code.co_filename, code.co_firstlineno


def _inner_code(function: Callable[..., Any], name: str) -> CodeKey:
    """Where the function named ``name`` defined inside ``function`` is written."""
    return next(
        _key(const)
        for const in function.__code__.co_consts
        if hasattr(const, "co_name") and const.co_name == name
    )


_IMPLEMENTATION = _inner_code(implementMethod, "implementation")
_INPUT_CALLERS = (_inner_code(MethodicalInput.__get__, "doInput"), _IMPLEMENTATION)
_CREATORS = (_key(_transitionerFromInstance.__code__), _key(TypeMachine.__call__.__code__))


def symbol_name(symbol: Any) -> str:
    """A state or input as reported: methodical ones by their method's name, typed ones by name."""
    method = getattr(symbol, "method", None)
    if method is not None:
        return method.__name__  # type: ignore[no-any-return]
    return state_name(symbol)


def _caller(codes: tuple[CodeKey, ...]) -> FrameType | None:
    """The frame of automat's own function among the few above the patch (None: someone else called)."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(_FRAMES_UP):
        if frame is None:
            return None
        if _key(frame.f_code) in codes:
            return frame
        frame = frame.f_back
    return None


def _typed_name(implementer_type: type) -> str | None:
    """A TypeMachine's name: its input protocol's ``module.QualName``, from an input's implementation."""
    for value in vars(implementer_type).values():
        code = getattr(value, "__code__", None)
        if code is not None and _key(code) == _IMPLEMENTATION:
            method = value.__closure__[code.co_freevars.index("method")].cell_contents
            protocol = method.__qualname__.rpartition(".")[0]
            return f"{method.__module__}.{protocol}"
    return None


class Names:
    """The name of each automaton's machine, found once: the class that declares the machine."""

    def __init__(self) -> None:
        self.by_automaton: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def adopt_existing(self) -> None:
        for obj in gc.get_objects():
            if isinstance(obj, type):
                for value in list(vars(obj).values()):
                    if isinstance(value, MethodicalMachine):
                        self.by_automaton.setdefault(value._automaton, type_name(obj))
            elif isinstance(obj, TypeMachine):
                self._typed(obj.__automat_automaton__, obj.__automat_type__)

    def _typed(self, automaton: Any, implementer_type: type) -> str | None:
        name = _typed_name(implementer_type)
        if name is not None:
            self.by_automaton.setdefault(automaton, name)
        return name

    def from_frame(self, automaton: Any, frame: FrameType | None) -> str | None:
        """Learn the name from automaton's own caller: the instance (methodical) or implementer (typed)."""
        known = self.by_automaton.get(automaton)
        if known is not None or frame is None:
            return known
        local = frame.f_locals
        oself = local.get("oself")
        if oself is not None:  # doInput, _transitionerFromInstance: the methodical machine's instance
            for cls in type(oself).__mro__:
                if any(
                    isinstance(v, MethodicalMachine) and v._automaton is automaton for v in vars(cls).values()
                ):
                    return self.by_automaton.setdefault(automaton, type_name(cls))
            return None
        owner = local.get("self")
        if isinstance(owner, TypeMachine):
            return self._typed(automaton, owner.__automat_type__)
        return None if owner is None else self._typed(automaton, type(owner))


class FollowedOutput(ObjectProxy[Any]):
    """An output of a recorded trigger: called with the trigger's span current; the last one ends it."""

    def __init__(self, output: Any, run: OutputsRun, last: bool) -> None:
        super().__init__(output)
        self._self_run = run
        self._self_last = last

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        run = self._self_run
        span = run.active.span
        token = None if span is None else make_current(span)
        try:
            value = self.__wrapped__(*args, **kwargs)
        except BaseException as exc:
            if token is not None:
                restore(token)
            run.finish(cancelled_or(exc, FAILED))
            raise
        if token is not None:
            restore(token)
        if self._self_last:
            run.finish((TRANSITIONED, None))
        return value


class OutputsRun:
    """The outputs of one trigger, from the first to the one that raised or the last."""

    __slots__ = ("active", "telemetry", "transitioner")

    def __init__(self, telemetry: MachineTelemetry, active: ActiveTrigger, transitioner: Any) -> None:
        self.telemetry = telemetry
        self.active = active
        self.transitioner = transitioner

    def finish(self, verdict: Verdict) -> None:
        transitioner = self.transitioner
        self.telemetry.finish(self.active, lambda: verdict, lambda: symbol_name(transitioner._state))


def _transition_wrapper(telemetry: MachineTelemetry, names: Names) -> Wrapper:
    def transition(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        active = None
        follow = False
        try:
            caller = _caller(_INPUT_CALLERS)
            follow = caller is not None
            automaton = instance._automaton
            name = names.from_frame(automaton, caller) or class_name(instance)
            symbol = args[0] if args else kwargs["inputSymbol"]
            model = instance if caller is None else caller.f_locals.get("oself", caller.f_locals.get("self"))
            active = telemetry.start(
                instance, model, name, symbol_name(symbol), symbol_name(instance._state), current=False
            )
        except Exception as fault:
            report_fault("automat trigger telemetry", fault)
        if active is None:
            return wrapped(*args, **kwargs)
        try:
            outputs, tracer = wrapped(*args, **kwargs)
        except BaseException as exc:
            verdict = cancelled_or(exc, REFUSED if isinstance(exc, NoTransition) else FAILED)
            telemetry.finish(active, lambda: verdict, lambda: symbol_name(instance._state))
            raise
        run = OutputsRun(telemetry, active, instance)
        if not follow or not outputs:
            run.finish((TRANSITIONED, None))
            return outputs, tracer
        last = len(outputs) - 1
        return [FollowedOutput(output, run, index == last) for index, output in enumerate(outputs)], tracer

    return gated(telemetry.gate, transition)


def _census(
    transitioners: InstanceRegistry[Transitioner[Any, Any, Any]], names: Names
) -> Callable[[], Iterator[Instance]]:
    def census() -> Iterator[Instance]:
        for transitioner in transitioners.snapshot():
            automaton = transitioner._automaton
            name = names.by_automaton.get(automaton)
            if name is None:  # a machine none of whose inputs ran since instrument(): not named yet
                continue
            states = [symbol_name(state) for state in automaton.states()]
            yield name, states, [symbol_name(transitioner._state)]

    return census


def _registration_observer(
    transitioners: InstanceRegistry[Transitioner[Any, Any, Any]], names: Names
) -> Observer:
    @contain("automat machine registration")
    def init(transitioner: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        transitioners.register(transitioner)
        names.from_frame(transitioner._automaton, _caller(_CREATORS))

    return init


def instrumentation(
    settings: Settings[TriggerInfo], scope: str, on_open: Callable[[], None]
) -> tuple[MachineTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    names = Names()
    names.adopt_existing()
    transitioners: InstanceRegistry[Transitioner[Any, Any, Any]] = InstanceRegistry(
        Transitioner, _SKIPPED_PACKAGES
    )
    transitioners.adopt_existing()
    telemetry = MachineTelemetry(settings, scope, on_open=on_open, census=_census(transitioners, names))
    eager: list[PatchTarget] = [
        (Transitioner, "__init__", after_call(_registration_observer(transitioners, names))),
        (Transitioner, "transition", _transition_wrapper(telemetry, names)),
    ]
    return telemetry, PatchPlan(eager)
