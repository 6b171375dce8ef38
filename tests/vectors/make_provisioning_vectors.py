"""Generate tests/vectors/provisioning.json: Improv Wi-Fi serial packets and msgflo's broker
command (docs/provisioning.md), for the Python codec (gateway/bridges/serial/improv.py) and the
firmware's (firmware/src/MsgfloProvision.h).

It builds every packet by hand, with its own checksum, so it shares no bugs with the codecs.
Run from the repository: ``python tests/vectors/make_provisioning_vectors.py`` (it rewrites
the JSON next to it).

Keys: ``checksum`` (input hex, sum), ``packets`` (a packet, its wire bytes and meaning),
``invalid`` (wire bytes and the error a receiver reports), ``streams`` (wire bytes and the
events in order) and ``device`` (what the firmware's provisioning service answers, step by
step, as a board with the ``device_info`` below).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("provisioning.json")
HEADER = b"IMPROV"
DEVICE_INFO = ["msgflo-test", "1.0.0", "host", "Provisioning board"]


def packet(kind: int, data: bytes, version: int = 1, fix: int = 0) -> bytes:
    head = HEADER + bytes([version, kind, len(data)]) + data
    total = 0
    for byte in head:
        total = (total + byte) % 256
    return head + bytes([(total + fix) % 256]) + b"\n"


def strings(*texts: str) -> bytes:
    out = b""
    for text in texts:
        raw = text.encode("utf-8")
        out += bytes([len(raw)]) + raw
    return out


def rpc(command: int, data: bytes = b"") -> bytes:
    return packet(3, bytes([command, len(data)]) + data)


def result(command: int, *texts: str) -> bytes:
    data = strings(*texts)
    return packet(4, bytes([command, len(data)]) + data)


def state(value: int) -> bytes:
    return packet(1, bytes([value]))


def error(code: int) -> bytes:
    return packet(2, bytes([code]))


BROKER = ("1", "lab/sensor", "192.168.4.1", "1883", "dev-lab-sensor", "s3cret-pass")
WIFI = ("msgflo-kit", "kit-passphrase")


def packets() -> list[dict[str, Any]]:
    cases: list[tuple[str, int, bytes, dict[str, Any]]] = [
        ("state ready", 1, b"\x02", {"kind": "current_state", "state": 2}),
        ("state provisioning", 1, b"\x03", {"kind": "current_state", "state": 3}),
        ("state provisioned", 1, b"\x04", {"kind": "current_state", "state": 4}),
        ("error none", 2, b"\x00", {"kind": "error_state", "code": 0}),
        ("error unknown rpc", 2, b"\x02", {"kind": "error_state", "code": 2}),
        ("error unable to connect", 2, b"\x03", {"kind": "error_state", "code": 3}),
        ("request state", 3, b"\x02\x00", {"kind": "rpc", "command": 2, "data": ""}),
        ("device info request", 3, b"\x03\x00", {"kind": "rpc", "command": 3, "data": ""}),
        ("broker query", 3, b"\xf0\x00", {"kind": "rpc", "command": 240, "data": ""}),
    ]
    # Improv's own example of the WiFi command first.
    example = ("MyWirelessAP", "mysecurepassword")
    assert strings(*example)[0] == 0x0C and len(strings(*example)) == 0x1E
    commands: list[tuple[str, tuple[str, ...], int]] = [
        ("wifi settings (Improv's example)", example, 1),
        ("wifi settings", WIFI, 1),
        ("broker settings", BROKER, 240),
        ("wifi settings, UTF-8", ("Küche ☕", "pass wörd"), 1),
    ]
    for name, texts, command in commands:
        data = strings(*texts)
        cases.append(
            (
                name,
                3,
                bytes([command, len(data)]) + data,
                {"kind": "rpc", "command": command, "data": data.hex(), "strings": list(texts)},
            )
        )
    for name, texts, command in (
        ("result empty", (), 1),
        ("result url", ("http://192.168.4.20",), 1),
        ("result device info", tuple(DEVICE_INFO), 3),
        ("result broker role", ("1", "lab/sensor"), 240),
        ("result broker unprovisioned", ("1", ""), 240),
    ):
        data = strings(*texts)
        cases.append(
            (
                name,
                4,
                bytes([command, len(data)]) + data,
                {"kind": "rpc_result", "command": command, "strings": list(texts)},
            )
        )
    # A large packet: 253 bytes of RPC data, the most a packet holds.
    big = strings("s" * 32, "p" * 63, "x" * 154)
    assert len(big) == 252
    cases.append(
        (
            "largest rpc",
            3,
            bytes([0x04, 253]) + big + b"\x00",  # command 4 (scan) with arbitrary data
            {"kind": "rpc", "command": 4, "data": (big + b"\x00").hex()},
        )
    )
    return [
        {
            "name": name,
            "type": kind,
            "data": data.hex(),
            "wire": packet(kind, data).hex(),
            "fields": fields,
        }
        for name, kind, data, fields in cases
    ]


def invalid() -> list[dict[str, Any]]:
    return [
        {
            "name": "checksum off by one",
            "wire": packet(1, b"\x02", fix=1).hex(),
            "error": "bad_checksum",
        },
        {
            "name": "checksum of a long packet",
            "wire": packet(3, b"\x02\x00", fix=255).hex(),
            "error": "bad_checksum",
        },
        {"name": "version 2", "wire": packet(1, b"\x02", version=2).hex(), "error": "bad_version"},
        {"name": "state of two bytes", "wire": packet(1, b"\x02\x02").hex(), "error": "bad_body"},
        {"name": "empty state", "wire": packet(2, b"").hex(), "error": "bad_body"},
        {
            "name": "rpc length byte too big",
            "wire": packet(3, b"\x01\x05ab").hex(),
            "error": "bad_body",
        },
        {
            "name": "rpc without its length byte",
            "wire": packet(3, b"\x01").hex(),
            "error": "bad_body",
        },
        {
            "name": "result string past the end",
            "wire": packet(4, b"\x01\x02\x05a").hex(),
            "error": "bad_body",
        },
        {"name": "unknown packet type", "wire": packet(9, b"\x00").hex(), "error": "bad_body"},
    ]


def streams() -> list[dict[str, Any]]:
    log = b"[I][wifi:123]: starting\r\n"
    return [
        {
            "name": "log lines around a packet",
            "wire": (log + state(2) + b"booted\n").hex(),
            "events": ["packet:1"],
        },
        {
            "name": "false starts of the header",
            # "I" starts a header again; a mismatch drops what was matched.
            "wire": (b"IMPRIMPROXI" + state(4)).hex(),
            "events": ["packet:1"],
        },
        {
            "name": "bad checksum, then a good packet",
            "wire": (packet(1, b"\x02", fix=3) + state(3)).hex(),
            "events": ["error:bad_checksum", "packet:1"],
        },
        {
            "name": "bad version, then a good packet",
            "wire": (packet(1, b"\x02", version=7) + error(0)).hex(),
            "events": ["error:bad_version", "packet:2"],
        },
        {
            "name": "back to back without line feeds",
            "wire": (error(0)[:-1] + state(2)[:-1] + result(3, *DEVICE_INFO)[:-1]).hex(),
            "events": ["packet:2", "packet:1", "packet:4"],
        },
        {
            "name": "a packet cut short, then a whole one",
            # The cut packet's length byte swallows the next packet's first bytes: both are
            # lost (one bad checksum); the third arrives.
            "wire": (rpc(2)[:9] + state(2) + b"\n" * 20 + state(4)).hex(),
            "events": ["error:bad_checksum", "packet:1"],
        },
    ]


def device() -> list[dict[str, Any]]:
    """What the firmware answers: each step sends ``send`` (or makes the sketch call
    ``call``) and expects exactly ``expect`` back; ``state`` is the service's state after it
    (unprovisioned, joining, provisioned)."""
    broker = strings(*BROKER)
    wifi = strings(*WIFI)
    # A provisioned board, asked for its state and its role: the same whether it was just
    # provisioned or booted with stored credentials.
    asked_when_provisioned = [
        {
            "send": rpc(2).hex(),
            "expect": (error(0) + state(4) + result(1)).hex(),
            "state": "provisioned",
        },
        {
            "send": rpc(0xF0).hex(),
            "expect": (error(0) + result(0xF0, "1", "lab/sensor")).hex(),
            "state": "provisioned",
        },
    ]
    return [
        {
            "name": "unprovisioned board, provisioned by the gateway",
            "stored": False,
            "steps": [
                {
                    "send": rpc(2).hex(),
                    "expect": (error(0) + state(2)).hex(),
                    "state": "unprovisioned",
                },
                {
                    "send": rpc(3).hex(),
                    "expect": (error(0) + result(3, *DEVICE_INFO)).hex(),
                    "state": "unprovisioned",
                },
                {
                    "send": rpc(0xF0).hex(),
                    "expect": (error(0) + result(0xF0, "1", "")).hex(),
                    "state": "unprovisioned",
                },
                {
                    "send": rpc(0xF0, broker).hex(),
                    "expect": (error(0) + result(0xF0, "1", "lab/sensor")).hex(),
                    "state": "unprovisioned",
                },
                {
                    "send": rpc(1, wifi).hex(),
                    "expect": (error(0) + state(3)).hex(),
                    "state": "joining",
                },
                {"call": "joined", "expect": (state(4) + result(1)).hex(), "state": "provisioned"},
                *asked_when_provisioned,
            ],
        },
        {
            "name": "the WiFi cannot be joined",
            "stored": False,
            "steps": [
                {
                    "send": rpc(1, wifi).hex(),
                    "expect": (error(0) + state(3)).hex(),
                    "state": "joining",
                },
                {
                    "call": "join_failed",
                    "expect": (error(3) + state(2)).hex(),
                    "state": "unprovisioned",
                },
            ],
        },
        {
            "name": "bad packets and unknown commands",
            "stored": False,
            "steps": [
                {
                    "send": packet(3, b"\x02\x00", fix=1).hex(),
                    "expect": error(1).hex(),
                    "state": "unprovisioned",
                },
                {
                    "send": packet(3, b"\x02\x05").hex(),
                    "expect": error(1).hex(),
                    "state": "unprovisioned",
                },
                {
                    "send": rpc(0x42).hex(),
                    "expect": (error(0) + error(2)).hex(),
                    "state": "unprovisioned",
                },
                {
                    "send": rpc(0xF0, strings("1", "role")).hex(),
                    "expect": (error(0) + error(1)).hex(),
                    "state": "unprovisioned",
                },
                {
                    "send": rpc(0xF0, strings(*BROKER[:3], "99999", *BROKER[4:])).hex(),
                    "expect": (error(0) + error(1)).hex(),
                    "state": "unprovisioned",
                },
                {
                    "send": rpc(1, strings("x" * 33, "passphrase")).hex(),
                    "expect": (error(0) + error(1)).hex(),
                    "state": "unprovisioned",
                },
                {"send": (b"garbage\n" + state(2)).hex(), "expect": "", "state": "unprovisioned"},
                {
                    "send": rpc(2).hex(),
                    "expect": (error(0) + state(2)).hex(),
                    "state": "unprovisioned",
                },
            ],
        },
        {
            "name": "a board that booted with stored credentials",
            "stored": True,
            "steps": [
                *asked_when_provisioned,
            ],
        },
    ]


def main() -> None:
    vectors = {
        "comment": "Generated by tests/vectors/make_provisioning_vectors.py; do not edit.",
        "version": 1,
        "device_info": DEVICE_INFO,
        "stored": {
            "ssid": WIFI[0],
            "passphrase": WIFI[1],
            "role": BROKER[1],
            "host": BROKER[2],
            "port": int(BROKER[3]),
            "user": BROKER[4],
            "password": BROKER[5],
        },
        "checksum": [
            {"input": b"".hex(), "sum": 0},
            {"input": b"IMPROV".hex(), "sum": sum(b"IMPROV") % 256},
            {"input": (b"\xff" * 300).hex(), "sum": (255 * 300) % 256},
        ],
        "packets": packets(),
        "invalid": invalid(),
        "streams": streams(),
        "device": device(),
    }
    OUT.write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
