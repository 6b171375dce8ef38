"""Turn tests/vectors/provisioning.json into a C++ header for the firmware host tests.

Usage: provision_vectors_to_header.py PROVISIONING_JSON OUTPUT_HEADER (CMake runs it at build
time). Byte strings stay hex, as in the JSON; the tests decode them. The device exchanges'
steps are one flat table; each case names its first step and their count.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PRELUDE = """// Generated from tests/vectors/provisioning.json by
// firmware/test/provision_vectors_to_header.py. Do not edit: regenerate the JSON file.
#ifndef PROVISIONING_VECTORS_H
#define PROVISIONING_VECTORS_H

#include <stddef.h>
#include <stdint.h>

namespace provision_vectors {

struct Checksum { const char* input; unsigned sum; };
struct Packet { const char* name; unsigned type; const char* data; const char* wire; };
struct Invalid { const char* name; const char* wire; const char* error; };
struct Stream { const char* name; const char* wire; const char* events; };
struct Step { const char* send; const char* call; const char* expect; const char* state; };
struct Exchange { const char* name; bool stored; size_t first; size_t count; };
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


def row(*values: str) -> str:
    return "  {" + ", ".join(values) + "},"


def table(kind: str, name: str, rows: list[str]) -> str:
    body = "\n".join(rows)
    return (
        f"static const {kind} {name}[] = {{\n{body}\n}};\n"
        f"static const size_t {name}Count = sizeof {name} / sizeof {name}[0];\n"
    )


def header(vectors: dict[str, Any]) -> str:
    checksums = [row(c_string(c["input"]), f"{c['sum']}u") for c in vectors["checksum"]]
    packets = [
        row(c_string(c["name"]), f"{c['type']}u", c_string(c["data"]), c_string(c["wire"]))
        for c in vectors["packets"]
    ]
    invalid = [
        row(c_string(c["name"]), c_string(c["wire"]), c_string(c["error"]))
        for c in vectors["invalid"]
    ]
    streams = [
        row(c_string(c["name"]), c_string(c["wire"]), c_string(",".join(c["events"])))
        for c in vectors["streams"]
    ]
    steps: list[str] = []
    exchanges: list[str] = []
    for case in vectors["device"]:
        first = len(steps)
        for step in case["steps"]:
            steps.append(
                row(
                    c_string(step.get("send", "")),
                    c_string(step.get("call", "")),
                    c_string(step["expect"]),
                    c_string(step["state"]),
                )
            )
        stored = "true" if case["stored"] else "false"
        exchanges.append(row(c_string(case["name"]), stored, str(first), str(len(case["steps"]))))
    info = ", ".join(c_string(text) for text in vectors["device_info"])
    stored = vectors["stored"]
    texts = ", ".join(
        c_string(stored[key]) for key in ("ssid", "passphrase", "role", "host", "user", "password")
    )
    parts = [
        PRELUDE,
        f"static const char* const kDeviceInfo[] = {{{info}}};\n",
        "struct Stored {\n  const char* ssid; const char* passphrase; const char* role;\n"
        "  const char* host; const char* user; const char* password; unsigned port;\n};\n",
        f"static const Stored kStored = {{{texts}, {stored['port']}u}};\n",
        table("Checksum", "kChecksums", checksums),
        table("Packet", "kPackets", packets),
        table("Invalid", "kInvalid", invalid),
        table("Stream", "kStreams", streams),
        table("Step", "kSteps", steps),
        table("Exchange", "kExchanges", exchanges),
        "}  // namespace provision_vectors\n\n#endif  // PROVISIONING_VECTORS_H\n",
    ]
    return "\n".join(parts)


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(header(json.loads(source.read_text(encoding="utf-8"))), encoding="utf-8")


if __name__ == "__main__":
    main()
