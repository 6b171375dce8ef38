"""Each kind of GPIO device as a participant, and what its inports accept (pure).

A device's participant has component ``gpio/<Kind>`` (gpiozero's class name), its role from
``bridges.gpio.devices`` and the id ``<role>-gpio``, so it keeps its id across restarts. Inputs
send JSON booleans; outputs take what a graph or the dashboard sends them:

- a switch (``state``): ``true``/``false``, ``1``/``0``, ``"on"``/``"off"`` (JSON, or the
  bare text of a hand-typed message);
- a trigger (``on``, ``off``, ``toggle``): any message but ``false`` and ``null``, so that
  ``button STATE -> TOGGLE led`` toggles once per press, not twice;
- a level (``level``): a number 0-1;
- a blink (``blink``, ``beep``): ``true`` (0.5 s on, 0.5 s off, until told otherwise), a
  number of seconds on and off, or ``{"on_time": s, "off_time": s, "n": count}``; ``false``
  stops it.

A payload that is none of these raises :class:`BadPayloadError`, whose message is one line.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from typing import Any

from gateway.bridges.gpio.header import where
from gateway.config import GpioDevice
from gateway.participant.definition import ParticipantDefinition, define

SWITCH = "boolean"
TRIGGER = "bang"


@dataclass(frozen=True)
class Kind:
    component: str  # gpiozero's class, after gpio/
    icon: str
    inports: tuple[tuple[str, str, str], ...] = ()  # (id, type, description)
    outports: tuple[tuple[str, str, str], ...] = ()


_SWITCHED = (
    ("state", SWITCH, "true: on, false: off"),
    ("on", TRIGGER, "turn on"),
    ("off", TRIGGER, "turn off"),
    ("toggle", TRIGGER, "on if off, off if on"),
)
_BLINK = ("blink", "any", "blink: true, seconds on and off, or {on_time, off_time, n}")

KINDS: dict[str, Kind] = {
    "button": Kind(
        "Button",
        "hand-pointer-o",
        outports=(
            ("state", SWITCH, "true while pressed, false when released"),
            ("pressed", SWITCH, "true at each press"),
            ("released", SWITCH, "true at each release"),
            ("held", SWITCH, "true once a press has lasted hold_time"),
        ),
    ),
    "led": Kind("LED", "lightbulb-o", inports=(*_SWITCHED, _BLINK)),
    "pwm_led": Kind(
        "PWMLED",
        "lightbulb-o",
        inports=(("level", "number", "brightness 0-1"), *_SWITCHED, _BLINK),
    ),
    "buzzer": Kind(
        "Buzzer",
        "bell",
        inports=(*_SWITCHED, ("beep", "any", "beep: true, seconds, or {on_time, off_time, n}")),
    ),
    "motion": Kind(
        "MotionSensor", "eye", outports=(("motion", SWITCH, "true on motion, false when still"),)
    ),
    "input": Kind(
        "DigitalInputDevice", "sign-in", outports=(("state", SWITCH, "true when active"),)
    ),
    "output": Kind("DigitalOutputDevice", "sign-out", inports=_SWITCHED),
}


def definition(role: str, device: GpioDevice) -> ParticipantDefinition:
    kind = KINDS[device.kind]
    return define(
        role,
        f"gpio/{kind.component}",
        inports=[{"id": i, "type": t, "description": d} for i, t, d in kind.inports],
        outports=[{"id": i, "type": t, "description": d} for i, t, d in kind.outports],
        label=label(device),
        icon=kind.icon,
        participant_id=f"{role}-gpio",
    )


def label(device: GpioDevice) -> str:
    return device.label or f"{device.kind.replace('_', ' ')} on {where(device.pin)}"


class BadPayloadError(ValueError):
    """A message an inport cannot use; the message is one line."""


def _value(payload: bytes) -> Any:
    """JSON, or the bare text of a message typed by hand (``on``)."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadPayloadError(f"not UTF-8 text ({len(payload)} bytes)") from None
    try:
        return json.loads(text)
    except ValueError:
        return text


_WORDS = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False}


def switch(payload: bytes) -> bool:
    value = _value(payload)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _WORDS:
        return _WORDS[value.lower()]
    raise BadPayloadError(f"expected true/false, 1/0 or on/off, got {_shown(payload)}")


def trigger(payload: bytes) -> bool:
    """Whether a trigger port acts on this message: all but ``false`` and ``null``."""
    value = _value(payload)
    return value is not False and value is not None


def level(payload: bytes) -> float:
    value = _value(payload)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadPayloadError(f"expected a number 0-1, got {_shown(payload)}")
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise BadPayloadError(f"expected a number 0-1, got {value}")
    return float(value)


@dataclass(frozen=True)
class Blink:
    on_time: float = 0.5
    off_time: float = 0.5
    n: int | None = None  # None: until told otherwise


def blink(payload: bytes) -> Blink | None:
    """How to blink, or None to stop."""
    value = _value(payload)
    if value is False:
        return None
    if value is True or value is None or value == "":
        return Blink()
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = _seconds(value, payload)
        return Blink(seconds, seconds)
    if isinstance(value, dict) and set(value) <= {"on_time", "off_time", "n"}:
        n = value.get("n")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise BadPayloadError(f"n: expected a positive integer or null, got {_shown(payload)}")
        return Blink(
            _seconds(value.get("on_time", 0.5), payload),
            _seconds(value.get("off_time", 0.5), payload),
            n,
        )
    raise BadPayloadError(
        f"expected true, false, seconds or {{on_time, off_time, n}}, got {_shown(payload)}"
    )


MAX_BLINK = 3600.0  # seconds: one phase longer than an hour is a mistake, not a blink


def _seconds(value: object, payload: bytes) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadPayloadError(f"expected seconds, got {_shown(payload)}")
    if not (math.isfinite(value) and 0 < value <= MAX_BLINK):
        raise BadPayloadError(f"expected seconds above 0 and at most {MAX_BLINK:g}, got {value}")
    return float(value)


def _shown(payload: bytes) -> str:
    text = payload[:40].decode("utf-8", "replace")
    return repr(text) + ("..." if len(payload) > 40 else "")
