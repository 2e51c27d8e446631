"""A traffic light with python-statemachine; the app knows nothing about OpenTelemetry.

Run it under auto-instrumentation with the console exporters::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        python examples/statemachine_app.py

Its last line is its own ground truth: how many events ended in each outcome. The output shows one
``__main__.TrafficLight <event>`` span per event and the ``statemachine.*`` metrics, with those counts.
"""

from __future__ import annotations

import json
from collections import Counter

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed


class BulbBroken(Exception):
    pass


class TrafficLight(StateMachine):
    green = State(initial=True)
    yellow = State()
    red = State()

    slow = green.to(yellow)
    stop = yellow.to(red)
    go = red.to(green, cond="road_clear")

    road_clear = False
    bulb_broken = False

    def on_enter_red(self) -> None:
        if self.bulb_broken:  # a StateMachine rolls the transition back
            raise BulbBroken("red bulb")


outcomes: Counter[str] = Counter()
light = TrafficLight()
for event, clear, broken in [
    ("go", False, False),  # not valid in green: refused
    ("slow", False, False),
    ("stop", False, True),  # the bulb: failed, still yellow
    ("stop", False, False),
    ("go", False, False),  # the road is not clear: blocked
    ("go", True, False),
]:
    light.road_clear, light.bulb_broken = clear, broken
    try:
        light.send(event)
    except TransitionNotAllowed:
        outcomes["blocked" if event == "go" and light.current_state_value == "red" else "refused"] += 1
    except BulbBroken:
        outcomes["failed"] += 1
    else:
        outcomes["transitioned"] += 1
print("state:", light.current_state_value)
print("outcomes:", json.dumps(dict(sorted(outcomes.items()))))
