"""An automat machine the automat tests share: a door that opens (with two outputs, the first of which
raises while the door is jammed) and closes."""

from __future__ import annotations

from automat import MethodicalMachine


class Door:
    _machine = MethodicalMachine()
    jammed = False

    @_machine.state(initial=True)
    def closed(self) -> None:
        "closed"

    @_machine.state()
    def opened(self) -> None:
        "opened"

    @_machine.input()
    def open(self) -> None:
        "open"

    @_machine.input()
    def close(self) -> None:
        "close"

    @_machine.output()
    def _creak(self) -> str:
        if self.jammed:
            raise RuntimeError("jammed")
        return "creak"

    @_machine.output()
    def _slam(self) -> str:
        return "slam"

    closed.upon(open, enter=opened, outputs=[_creak, _slam])
    opened.upon(close, enter=closed, outputs=[])


DOOR = f"{Door.__module__}.{Door.__qualname__}"
"""The machine's name in the telemetry: its class's qualified name."""
