"""Write tests/vectors/serial_link.json, the serial link test vectors (docs/serial-link.md).

Run ``python tests/vectors/make_serial_link_vectors.py`` after changing the protocol; the JSON
file it writes is the contract both codecs (gateway/bridges/serial/link.py and
firmware/src/MsgfloLink.cpp) are tested against. This script deliberately uses its own small,
slow implementations of CRC and COBS (straight from the definitions) rather than the codecs it
checks, and is deterministic (fixed random seed, sorted keys).
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("serial_link.json")


def crc16(data: bytes) -> int:
    """Bitwise CRC-16/CCITT-FALSE, as in the catalogue: poly 0x1021, init 0xFFFF, no refl."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def cobs(data: bytes) -> bytes:
    """COBS by blocks: each block is up to 254 non-zero bytes behind a length code; a block
    shorter than 254 stands for "these bytes, then a zero", the zero after the last one dropped."""
    out = b""
    rest = data + b"\x00"  # the implicit final zero that the decoder drops
    while rest:
        block = rest[:254].split(b"\x00", 1)[0]
        if len(block) == 254:
            out += b"\xff" + block
            rest = rest[254:]
            if rest == b"\x00":  # a full block at the very end needs no empty block after it
                break
        else:
            out += bytes([len(block) + 1]) + block
            rest = rest[len(block) + 1 :]
    return out


def wire(frame_type: bytes, seq: int, body: bytes) -> bytes:
    raw = frame_type + bytes([seq]) + body
    return cobs(raw + struct.pack(">H", crc16(raw))) + b"\x00"


def text(value: str) -> bytes:
    data = value.encode()
    return bytes([len(data)]) + data


KINDS = {
    "H": "Hello",
    "D": "Description",
    "d": "DescribeRequest",  # same type byte D; the body length tells them apart
    "M": "PortMessage",
    "P": "Ping",
    "p": "Pong",
    "E": "DeviceError",
}


def frame(name: str, letter: str, seq: int, body: bytes, fields: dict[str, Any]) -> dict[str, Any]:
    kind = KINDS[letter]
    type_byte = letter.upper().encode() if letter == "d" else letter.encode()
    return {
        "name": name,
        "kind": kind,
        "type": type_byte.decode(),
        "seq": seq,
        "fields": fields,
        "body": body.hex(),
        "wire": wire(type_byte, seq, body).hex(),
    }


def crc_vectors() -> list[dict[str, Any]]:
    inputs = [b"", b"123456789", b"\x00", b"\xff\xff\xff\xff", b"M\x00\x00hi", bytes(range(256))]
    return [{"input": data.hex(), "crc": crc16(data)} for data in inputs]


def cobs_vectors() -> list[dict[str, Any]]:
    nonzero = bytes(range(1, 256))
    cases = {
        "empty": b"",
        "one zero": b"\x00",
        "two zeros": b"\x00\x00",
        "zero inside": b"\x11\x22\x00\x33",
        "trailing zeros": b"\x11\x00\x00\x00",
        "run of ten zeros": bytes(10),
        "253 non-zero": nonzero[:253],
        "254 non-zero": nonzero[:254],
        "255 non-zero": nonzero[:255],
        "zero then 254 non-zero": b"\x00" + nonzero[:254],
        "254 non-zero then zero": nonzero[:254] + b"\x00",
        "253 non-zero then zero": nonzero[:253] + b"\x00",
        "254 zeros": bytes(254),
    }
    return [
        {"name": name, "decoded": data.hex(), "encoded": cobs(data).hex()}
        for name, data in cases.items()
    ]


def counters(cobs_: int, crc: int, overflow: int, rejected: int) -> dict[str, int]:
    return {"cobs": cobs_, "crc": crc, "overflow": overflow, "rejected": rejected}


def frame_vectors() -> list[dict[str, Any]]:
    json_text = b'{"component":"ButtonLed","inports":[{"id":"led","type":"boolean"}]}'
    max_payload = bytes((n * 7 + 1) % 256 for n in range(249))
    hello = {"protocol": 1, "max_frame": 60, "name": "ButtonLed", "version": "1.0.0"}
    return [
        frame("hello", "H", 0, b"\x01\x3c" + text("ButtonLed") + text("1.0.0"), hello),
        frame(
            "hello, empty strings, protocol 2",
            "H",
            7,
            b"\x02\xfe\x00\x00",
            {"protocol": 2, "max_frame": 254, "name": "", "version": ""},
        ),
        frame("describe request", "d", 1, b"", {"offset": 0}),
        frame("describe request at 258", "d", 2, b"\x01\x02", {"offset": 258}),
        frame(
            "description in one part",
            "D",
            1,
            struct.pack(">HH", 0, len(json_text)) + json_text,
            {"offset": 0, "total": len(json_text), "data": json_text.hex()},
        ),
        frame(
            "description, second part",
            "D",
            3,
            struct.pack(">HH", 240, 250) + b"}]}",
            {"offset": 240, "total": 250, "data": b"}]}".hex()},
        ),
        frame("message with text", "M", 9, b"\x00on", {"port": 0, "payload": b"on".hex()}),
        frame("message, empty payload", "M", 255, b"\x03", {"port": 3, "payload": ""}),
        frame(
            "message, zeros in payload",
            "M",
            0,
            b"\x01\x00\x00\x00",
            {"port": 1, "payload": "000000"},
        ),
        frame(
            "message, largest (254-byte frame)",
            "M",
            128,
            b"\x02" + max_payload,
            {"port": 2, "payload": max_payload.hex()},
        ),
        frame("ping", "P", 42, b"", {}),
        frame(
            "pong",
            "p",
            42,
            struct.pack(">4H", 1, 2, 0x0300, 0xFFFF),
            {"counters": counters(1, 2, 0x0300, 0xFFFF)},
        ),
        frame(
            "pong with an extra counter",
            "p",
            43,
            struct.pack(">5H", 0, 0, 0, 0, 9),
            {"counters": counters(0, 0, 0, 0)},
        ),
        frame("error", "E", 5, b"\x03no port 7", {"code": 3, "text": "no port 7"}),
        frame("error without text", "E", 6, b"\x81", {"code": 0x81, "text": ""}),
    ]


def with_crc(raw: bytes) -> bytes:
    return raw + struct.pack(">H", crc16(raw))


def invalid_vectors() -> list[dict[str, Any]]:
    good = bytes.fromhex(wire(b"M", 1, b"\x00hello")[:-1].hex())
    flipped = bytearray(good)
    flipped[4] ^= 0x01
    cases = [
        ("block longer than the frame", bytes.fromhex("0548010200"), "bad_cobs"),
        ("cut-off frame after a reset", good[:5] + b"\x00", "bad_cobs"),
        ("one bit flipped", bytes(flipped) + b"\x00", "bad_crc"),
        (
            "crc bytes swapped",
            cobs(b"P\x01" + struct.pack("<H", crc16(b"P\x01"))) + b"\x00",
            "bad_crc",
        ),
        ("empty after decoding", b"\x01\x00", "too_short"),
        ("three bytes", cobs(b"P\x01\x02") + b"\x00", "too_short"),
        ("256 encoded bytes", b"\xff" + bytes(range(1, 256)) + b"\x00", "too_long"),
        ("unknown type Z", cobs(with_crc(b"Z\x01")) + b"\x00", "unknown_type"),
        ("lower-case h", cobs(with_crc(b"h\x01\x01")) + b"\x00", "unknown_type"),
        ("message without port", cobs(with_crc(b"M\x01")) + b"\x00", "bad_body"),
        ("ping with a body", cobs(with_crc(b"P\x01\x00")) + b"\x00", "bad_body"),
        ("hello cut in the name", cobs(with_crc(b"H\x01\x01\xfe\x05ab")) + b"\x00", "bad_body"),
        ("hello without version", cobs(with_crc(b"H\x01\x01\xfe\x02ab")) + b"\x00", "bad_body"),
        ("pong with 3 counter bytes", cobs(with_crc(b"p\x01\x00\x00\x00")) + b"\x00", "bad_body"),
        ("describe body of 3 bytes", cobs(with_crc(b"D\x01\x00\x00\x01")) + b"\x00", "bad_body"),
        (
            "description past its total",
            cobs(with_crc(b"D\x01\x00\x02\x00\x03ab")) + b"\x00",
            "bad_body",
        ),
        ("error without code", cobs(with_crc(b"E\x01")) + b"\x00", "bad_body"),
    ]
    return [{"name": name, "wire": data.hex(), "error": kind} for name, data, kind in cases]


def stream_vectors() -> list[dict[str, Any]]:
    """Byte streams with garbage around valid frames, and the events a decoder reports."""
    rng = random.Random(6)
    ping = wire(b"P", 1, b"")
    message = wire(b"M", 2, b"\x00\x00x")
    garbage = bytes(rng.randrange(1, 256) for _ in range(300))  # no zero: one overflow
    return [
        {
            "name": "lone zeros and a frame",
            "wire": (b"\x00\x00" + ping + b"\x00").hex(),
            "events": ["P"],
        },
        {
            "name": "half a frame, then two frames",
            "wire": (message[3:] + ping + message).hex(),
            "events": ["error:bad_crc", "P", "M"],
        },
        {
            "name": "300 bytes without a zero, then a frame",
            "wire": (garbage + b"\x00" + ping).hex(),
            "events": ["error:too_long", "P"],
        },
    ]


def build() -> dict[str, Any]:
    return {
        "description": "serial link test vectors, see docs/serial-link.md",
        "generator": "tests/vectors/make_serial_link_vectors.py",
        "protocol_version": 1,
        "crc16": crc_vectors(),
        "cobs": cobs_vectors(),
        "frames": frame_vectors(),
        "invalid": invalid_vectors(),
        "streams": stream_vectors(),
    }


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=1, sort_keys=True) + "\n"


def main() -> None:
    OUT.write_text(render(build()), encoding="utf-8")


if __name__ == "__main__":
    main()
