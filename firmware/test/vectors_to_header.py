"""Turn tests/vectors/serial_link.json into a C++ header for the firmware host tests.

Usage: vectors_to_header.py SERIAL_LINK_JSON OUTPUT_HEADER (CMake runs it at build time). Byte
strings stay hex, as in the JSON; the tests decode them. Text is written as C string literals
with octal escapes, so any UTF-8 survives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PRELUDE = """// Generated from tests/vectors/serial_link.json by firmware/test/vectors_to_header.py.
// Do not edit: change the generator of the JSON file and regenerate.
#ifndef SERIAL_LINK_VECTORS_H
#define SERIAL_LINK_VECTORS_H

#include <stddef.h>
#include <stdint.h>

namespace vectors {

struct Crc { const char* input; uint16_t crc; };
struct Cobs { const char* name; const char* decoded; const char* encoded; };
struct Frame {
  const char* name; const char* kind; char type; uint8_t seq; const char* body; const char* wire;
  int protocol; int maxFrame; const char* firmwareName; const char* version;
  unsigned offset; unsigned total; const char* data;
  int port; const char* payload;
  unsigned counters[4];
  int code; const char* text;
};
struct Invalid { const char* name; const char* wire; const char* error; };
struct Stream { const char* name; const char* wire; const char* events; };
"""


def c_string(text: str) -> str:
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '"\\?' or not 0x20 <= byte < 0x7F:
            out.append(f"\\{byte:03o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def frame_row(case: dict[str, Any]) -> str:
    fields = case["fields"]
    counters = fields.get("counters", {})
    values = [
        c_string(case["name"]),
        c_string(case["kind"]),
        f"'{case['type']}'",
        str(case["seq"]),
        c_string(case["body"]),
        c_string(case["wire"]),
        str(fields.get("protocol", 0)),
        str(fields.get("max_frame", 0)),
        c_string(fields.get("name", "")),
        c_string(fields.get("version", "")),
        f"{fields.get('offset', 0)}u",
        f"{fields.get('total', 0)}u",
        c_string(fields.get("data", "")),
        str(fields.get("port", 0)),
        c_string(fields.get("payload", "")),
        "{" + ", ".join(f"{counters.get(k, 0)}u" for k in ("cobs", "crc", "overflow", "rejected"))
        + "}",
        str(fields.get("code", 0)),
        c_string(fields.get("text", "")),
    ]
    return "  {" + ", ".join(values) + "},"


def table(kind: str, name: str, rows: list[str]) -> str:
    body = "\n".join(rows)
    return (
        f"static const {kind} {name}[] = {{\n{body}\n}};\n"
        f"static const size_t {name}Count = sizeof {name} / sizeof {name}[0];\n"
    )


def header(vectors: dict[str, Any]) -> str:
    crc = [f"  {{{c_string(c['input'])}, 0x{c['crc']:04x}}}," for c in vectors["crc16"]]
    cobs = [
        f"  {{{c_string(c['name'])}, {c_string(c['decoded'])}, {c_string(c['encoded'])}}},"
        for c in vectors["cobs"]
    ]
    invalid = [
        f"  {{{c_string(c['name'])}, {c_string(c['wire'])}, {c_string(c['error'])}}},"
        for c in vectors["invalid"]
    ]
    streams = [
        f"  {{{c_string(c['name'])}, {c_string(c['wire'])}, {c_string(','.join(c['events']))}}},"
        for c in vectors["streams"]
    ]
    parts = [
        PRELUDE,
        f"static const int kProtocolVersion = {vectors['protocol_version']};\n",
        table("Crc", "kCrc", crc),
        table("Cobs", "kCobs", cobs),
        table("Frame", "kFrames", [frame_row(c) for c in vectors["frames"]]),
        table("Invalid", "kInvalid", invalid),
        table("Stream", "kStreams", streams),
        "}  // namespace vectors\n\n#endif  // SERIAL_LINK_VECTORS_H\n",
    ]
    return "\n".join(parts)


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(header(json.loads(source.read_text(encoding="utf-8"))), encoding="utf-8")


if __name__ == "__main__":
    main()
