"""433 MHz radio signals that the real ``rtl_433`` decodes, generated for tests and demos.

Each encoder is a pure function from a device's fields (named as rtl_433 reports them) to one
:class:`Packet`: the on/off pulse train of one radio packet in microseconds, as the device's
transmitter keys its carrier, with the number of times the real device repeats it. The encoders
follow the formats documented in rtl_433's decoders (the file each one names, in
``src/devices/`` of github.com/merbanan/rtl_433, release 22.11), with timings inside the
tolerances of those decoders and close to what the decoders' comments measured on real devices.

Signals reach rtl_433 as *OOK pulse data*, rtl_433's own text format (what ``-w FILE.ook``
writes and ``-r FILE.ook`` or ``-r ook:PATH`` reads; ``src/pulse_data.c``)::

    ;pulse data
    ;version 1
    ;timescale 1us
    500 1000        <- carrier on 500 us, then off 1000 us
    ...
    ;end            <- any line starting with ';' after pulses ends one package

rtl_433 hands each package to its decoders as its pulse detector hands them what it hears
from a dongle. So the writer cuts a transmission into packages where the live detector would
(``src/pulse_detect.c``: a gap longer than 10 times the longest pulse and 10 ms, or longer than
100 ms, or 1200 pulses): whether the repeats of a packet reach a decoder together (one report)
or one by one (one report per repeat) is then what it would be on air.

The same text works as a live stream: rtl_433 reads ``-r ook:-`` (stdin) or ``-r ook:FIFO``
line by line and decodes a package as soon as it reads the ``;end`` after it; it exits at end
of input. :func:`package_text` gives one transmission's text to write and flush.

Not modelled: I/Q samples (levels, noise floor, frequency); rtl_433 reports ``rssi``, ``snr``
and ``noise`` as 0 and the time as the (empty) sample position for pulse data.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Pulse = tuple[int, int]
"""(carrier on, carrier off) in microseconds."""

HEADER = ";pulse data\n;version 1\n;timescale 1us\n"
END = ";end\n"

# rtl_433's live pulse detector (include/pulse_data.h, include/pulse_detect.h, 22.11).
MAX_PULSES = 1200
MIN_GAP_US = 10_000
MAX_GAP_US = 100_000
MAX_GAP_RATIO = 10


@dataclass(frozen=True)
class Transmission:
    """A packet sent ``repeats`` times, ``gap_before_us`` of silence after what came before.

    The gap is the time a live feeder waits before sending it; in a file every transmission
    starts a package of its own anyway."""

    pulses: tuple[Pulse, ...]
    repeats: int
    gap_before_us: int = 1_000_000

    def train(self) -> tuple[Pulse, ...]:
        return self.pulses * self.repeats


@dataclass(frozen=True)
class Packet:
    """One packet of ``model`` (the name rtl_433 reports); the last gap is the device's pause
    before its next repeat. ``repeats`` is how many times the real device sends it."""

    model: str
    pulses: tuple[Pulse, ...]
    repeats: int

    def send(self, repeats: int | None = None, gap_before_us: int = 1_000_000) -> Transmission:
        """The packet as the device transmits it (its own repeat count unless told)."""
        count = self.repeats if repeats is None else repeats
        if count < 1:
            raise ValueError(f"repeats must be at least 1, not {count}")
        return Transmission(self.pulses, count, gap_before_us)


def _bits(value: int, width: int) -> str:
    if not 0 <= value < 1 << width:
        raise ValueError(f"{value} does not fit in {width} bits")
    return format(value, f"0{width}b")


def _check(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}, not {value}")


# --- weather sensor: Nexus-TH ------------------------------------------------------------

NEXUS_PULSE_US = 500
NEXUS_ZERO_GAP_US = 1000
NEXUS_ONE_GAP_US = 2000
NEXUS_SYNC_GAP_US = 4000
NEXUS_REPEATS = 12


def _crc8(data: bytes, poly: int, init: int) -> int:
    crc = init
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def nexus_th(
    id: int, channel: int, battery_ok: bool, temperature_c: float, humidity: int
) -> Packet:
    """Nexus / FreeTec NC-7345 / TFA 30.3209 temperature-humidity sensor, rtl_433 protocol 19,
    ``src/devices/nexus.c``; reported as model ``Nexus-TH`` (``Nexus-T`` when humidity is 0).

    36 bits, pulse-position coded: a ~500 us pulse, then a 1000 us gap for 0 or 2000 us for 1;
    a pulse and a 4000 us sync gap end each packet; sent 12 times. Nibbles: id (8 bits),
    battery-ok bit, 0, channel - 1 (2 bits), temperature in 0.1 C (12 bits, two's complement),
    1111, humidity (8 bits)."""
    _check("id", id, 0, 0xFF)
    _check("channel", channel, 1, 3)
    _check("humidity", humidity, 0, 100)
    tenths = round(temperature_c * 10)
    _check("temperature in 0.1 C", tenths, -2048, 2047)
    bits = (
        _bits(id, 8)
        + ("1" if battery_ok else "0")
        + "0"
        + _bits(channel - 1, 2)
        + _bits(tenths & 0xFFF, 12)
        + "1111"
        + _bits(humidity, 8)
    )
    raw = (int(bits, 2) << 4).to_bytes(5, "big")  # as nexus.c sees them: 36 bits, left-aligned
    # The decoder drops payloads that would also pass as a Rubicson sensor's CRC (1 in 256)
    # and two all-ones patterns; say so rather than send what cannot decode.
    if _rubicson_crc_ok(raw) or (raw[0] == 0xFF and raw[2] == 0xFF and raw[3] == 0xFF):
        raise ValueError(f"nexus.c rejects these fields (id {id}, {temperature_c} C): pick others")
    pulses = [
        (NEXUS_PULSE_US, NEXUS_ONE_GAP_US if bit == "1" else NEXUS_ZERO_GAP_US) for bit in bits
    ]
    pulses.append((NEXUS_PULSE_US, NEXUS_SYNC_GAP_US))
    return Packet("Nexus-TH" if humidity else "Nexus-T", tuple(pulses), NEXUS_REPEATS)


def _rubicson_crc_ok(raw: bytes) -> bool:
    """rubicson.c's check, which nexus.c uses to refuse Rubicson packets: a CRC-8 (polynomial
    0x31, init 0x6c) over 32 bits and the 8 bits that follow the 4 constant bits."""
    rearranged = bytes([raw[0], raw[1], raw[2], raw[3] & 0xF0, (raw[3] & 0x0F) << 4 | raw[4] >> 4])
    return _crc8(rearranged, 0x31, 0x6C) == 0


# --- door/window contact and PIR: Kerui ------------------------------------------------------

KERUI_SHORT_US = 420
KERUI_LONG_US = 960
KERUI_SYNC_GAP_US = 8000
KERUI_REPEATS = 25
KERUI_EVENTS = {
    "motion": 0xA,
    "open": 0xE,
    "close": 0x7,
    "tamper": 0xB,
    "water": 0x5,
    "battery": 0xF,
}


def kerui(id: int, event: str) -> Packet:
    """Kerui D026 door/window contact, P831 PIR, WD51 leak sensor, rtl_433 protocol 68,
    ``src/devices/kerui.c``; reported as model ``Kerui-Security`` with ``state`` the event.

    EV1527-style pulse-width code: 20-bit id, 4-bit event code (``KERUI_EVENTS``), a long
    (~960 us) pulse and short gap for 1, a short (~420 us) pulse and long gap for 0, then a short
    sync pulse and a gap under the decoder's 9.9 ms reset; the decoder wants 9 of the ~25 repeats.
    rtl_433 22.11's default decoders also read it as ``Smoke-GS558`` (protocol 86), as they would
    a real Kerui sensor's signal."""
    _check("id", id, 1, 0xFFFFF)
    if event not in KERUI_EVENTS:
        raise ValueError(f"event must be one of {sorted(KERUI_EVENTS)}, not {event!r}")
    bits = _bits(id, 20) + _bits(KERUI_EVENTS[event], 4)
    pulses = [
        (KERUI_LONG_US, KERUI_SHORT_US) if bit == "1" else (KERUI_SHORT_US, KERUI_LONG_US)
        for bit in bits
    ]
    pulses.append((KERUI_SHORT_US, KERUI_SYNC_GAP_US))
    return Packet("Kerui-Security", tuple(pulses), KERUI_REPEATS)


# --- remote control: EV1527 / PT2262 (Generic-Remote) -------------------------------------

EV1527_SHORT_US = 450
EV1527_LONG_US = 3 * EV1527_SHORT_US
EV1527_SYNC_GAP_US = 31 * EV1527_SHORT_US
EV1527_REPEATS = 6


def generic_remote(id: int, cmd: int) -> Packet:
    """EV1527 / PT2262 remote control (and the cheap sensors built on those chips), rtl_433
    protocol 30, ``src/devices/generic_remote.c``; reported as model ``Generic-Remote``.

    24 bits, pulse-width coded at a ~450 us clock: a 3-clock pulse and 1-clock gap for 1, a
    1-clock pulse and 3-clock gap for 0, then a 1-clock sync pulse and a 31-clock gap. rtl_433
    splits the 24 bits into ``id`` (16) and ``cmd`` (8; on EV1527 the last 4 address bits and the
    4 button bits). The chip repeats the code while a button is held; a short press is ~6."""
    _check("id", id, 1, 0xFFFF)
    _check("cmd", cmd, 1, 0xFF)
    bits = _bits(id, 16) + _bits(cmd, 8)
    pulses = [
        (EV1527_LONG_US, EV1527_SHORT_US) if bit == "1" else (EV1527_SHORT_US, EV1527_LONG_US)
        for bit in bits
    ]
    pulses.append((EV1527_SHORT_US, EV1527_SYNC_GAP_US))
    return Packet("Generic-Remote", tuple(pulses), EV1527_REPEATS)


# --- remote control: Nexa / Proove / KlikAanKlikUit self-learning ---------------------------

NEXA_T_US = 250
NEXA_ONE_GAP_US = 5 * NEXA_T_US
NEXA_SYNC_GAP_US = 10 * NEXA_T_US
NEXA_PAUSE_US = 40 * NEXA_T_US
NEXA_REPEATS = 5


def nexa(id: int, channel: int, unit: int, on: bool, group: bool = False) -> Packet:
    """Nexa / Proove / Anslut / KlikAanKlikUit self-learning remote and magnet contact,
    rtl_433 protocols 96 (``src/devices/nexa.c``, model ``Nexa-Security``) and 51
    (``src/devices/proove.c``, model ``Proove-Security``): 22.11's default decoders report every
    repeat under both names.

    32 bits: 26-bit id, group bit, on bit, 2 channel bits and 2 unit bits (both inverted); each
    bit sent as two (1 as 10, 0 as 01), each of those a 250 us pulse with a 250 us gap for 0 or
    1250 us for 1; a 2500 us sync gap before and a 10 ms pause after; 5 repeats or more."""
    _check("id", id, 0, (1 << 26) - 1)
    _check("channel", channel, 0, 3)
    _check("unit", unit, 0, 3)
    bits = (
        _bits(id, 26)
        + ("1" if group else "0")
        + ("1" if on else "0")
        + _bits(channel ^ 3, 2)
        + _bits(unit ^ 3, 2)
    )
    pulses = [(NEXA_T_US, NEXA_SYNC_GAP_US)]
    for bit in bits:
        for half in "10" if bit == "1" else "01":
            pulses.append((NEXA_T_US, NEXA_ONE_GAP_US if half == "1" else NEXA_T_US))
    pulses.append((NEXA_T_US, NEXA_PAUSE_US))
    return Packet("Nexa-Security", tuple(pulses), NEXA_REPEATS)


# --- noise ------------------------------------------------------------------------------------


def noise(seed: int, count: int = 150) -> Packet:
    """``count`` pulses and gaps of random widths (100-3000 us and 100-6000 us) drawn from
    ``seed``: what a receiver hears from other transmitters' fragments. Decodes to nothing with
    rtl_433 22.11's default decoders for the seeds the tests use (any seed could, rarely, look
    like some device)."""
    _check("count", count, 1, MAX_PULSES)
    draw = random.Random(seed)
    pulses = tuple((draw.randint(100, 3000), draw.randint(100, 6000)) for _ in range(count))
    return Packet("", pulses, 1)


# --- OOK pulse data ----------------------------------------------------------------------------


def packages(train: Iterable[Pulse]) -> Iterator[tuple[Pulse, ...]]:
    """``train`` cut where rtl_433's live pulse detector ends a package (pure): after a gap
    longer than 10 times the package's longest pulse and 10 ms, after one longer than 100 ms,
    or at 1200 pulses."""
    current: list[Pulse] = []
    longest = 0
    for pulse, gap in train:
        if pulse <= 0 or gap <= 0:
            raise ValueError(f"pulse and gap must be positive, not ({pulse}, {gap})")
        current.append((pulse, gap))
        longest = max(longest, pulse)
        ends = (gap > MAX_GAP_RATIO * longest and gap > MIN_GAP_US) or gap > MAX_GAP_US
        if ends or len(current) == MAX_PULSES:
            yield tuple(current)
            current, longest = [], 0
    if current:
        yield tuple(current)


def package_text(transmission: Transmission) -> str:
    """One transmission as OOK pulse data lines, each package ended by ``;end`` so that a
    reading rtl_433 decodes it at once (no header needed: ';' lines before pulses are skipped)."""
    return "".join(
        "".join(f"{pulse} {gap}\n" for pulse, gap in package) + END
        for package in packages(transmission.train())
    )


def ook_text(transmissions: Iterable[Transmission]) -> str:
    """A whole OOK pulse data file (pure)."""
    return HEADER + "".join(package_text(t) for t in transmissions)


def write_ook(path: Path, transmissions: Iterable[Transmission]) -> Path:
    """Write an OOK pulse data file that ``rtl_433 -r PATH`` reads (name it ``*.ook`` or pass
    ``-r ook:PATH``); returns ``path``."""
    path.write_text(ook_text(transmissions), encoding="ascii")
    return path


# --- running rtl_433 on them -----------------------------------------------------------------

RTL_433 = "rtl_433"


def rtl_433_args(source: str, protocols: Iterable[int] = ()) -> list[str]:
    """rtl_433's command line to decode ``source`` (a path, ``ook:PATH`` or ``ook:-``) to JSON
    lines with the protocol number, with ``protocols`` only or else the default decoders. ``-c
    /dev/null`` keeps a stray rtl_433.conf in the working directory or home out of the test."""
    args = [RTL_433, "-c", "/dev/null", "-r", source, "-F", "json", "-M", "protocol"]
    for number in protocols:
        args += ["-R", str(number)]
    return args


def decode(path: Path, protocols: Iterable[int] = ()) -> list[dict[str, Any]]:
    """What the real rtl_433 reports for the file at ``path``, one dict per JSON line."""
    done = subprocess.run(
        rtl_433_args(f"ook:{path}", protocols),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
