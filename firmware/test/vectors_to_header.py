"""Turn a shared vectors file (tests/vectors/*.json) into a C++ header for the firmware host tests.

Usage: vectors_to_header.py VECTORS_JSON OUTPUT_HEADER (CMake runs it at build time). The JSON
file's name picks the generator: serial_link.json (the serial link's codec) or provisioning.json
(Improv Wi-Fi plus msgflo's broker command). Byte strings stay hex, as in the JSON; the tests
decode them. Text is written with the gateway's own C string escaping (gateway/common/cstring.py,
standard library only, so any Python 3 runs this), so any UTF-8 survives.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.common.cstring import c_string


def prelude(name: str, guard: str, namespace: str, structs: str) -> str:
    return (
        f"// Generated from tests/vectors/{name}.json by firmware/test/vectors_to_header.py.\n"
        "// Do not edit: change the generator of the JSON file and regenerate.\n"
        f"#ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
        f"namespace {namespace} {{\n\n{structs}"
    )


def ending(guard: str, namespace: str) -> str:
    return f"}}  // namespace {namespace}\n\n#endif  // {guard}\n"


SERIAL_LINK_STRUCTS = """struct Crc { const char* input; uint16_t crc; };
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

PROVISIONING_STRUCTS = """struct Checksum { const char* input; unsigned sum; };
struct Packet { const char* name; unsigned type; const char* data; const char* wire; };
struct Invalid { const char* name; const char* wire; const char* error; };
struct Stream { const char* name; const char* wire; const char* events; };
struct Step { const char* send; const char* call; const char* expect; const char* state; };
struct Exchange { const char* name; bool stored; size_t first; size_t count; };
"""


def row(*values: str) -> str:
    return "  {" + ", ".join(values) + "},"


def table(kind: str, name: str, rows: list[str]) -> str:
    body = "\n".join(rows)
    return (
        f"static const {kind} {name}[] = {{\n{body}\n}};\n"
        f"static const size_t {name}Count = sizeof {name} / sizeof {name}[0];\n"
    )


def invalid_rows(cases: list[dict[str, Any]]) -> list[str]:
    return [row(c_string(c["name"]), c_string(c["wire"]), c_string(c["error"])) for c in cases]


def stream_rows(cases: list[dict[str, Any]]) -> list[str]:
    return [
        row(c_string(c["name"]), c_string(c["wire"]), c_string(",".join(c["events"])))
        for c in cases
    ]


# --- serial_link.json -----------------------------------------------------------------------


def frame_row(case: dict[str, Any]) -> str:
    fields = case["fields"]
    counters = fields.get("counters", {})
    return row(
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
        "{"
        + ", ".join(f"{counters.get(k, 0)}u" for k in ("cobs", "crc", "overflow", "rejected"))
        + "}",
        str(fields.get("code", 0)),
        c_string(fields.get("text", "")),
    )


def serial_link_header(vectors: dict[str, Any]) -> str:
    crc = [row(c_string(c["input"]), f"0x{c['crc']:04x}") for c in vectors["crc16"]]
    cobs = [
        row(c_string(c["name"]), c_string(c["decoded"]), c_string(c["encoded"]))
        for c in vectors["cobs"]
    ]
    parts = [
        prelude("serial_link", "SERIAL_LINK_VECTORS_H", "vectors", SERIAL_LINK_STRUCTS),
        f"static const int kProtocolVersion = {vectors['protocol_version']};\n",
        table("Crc", "kCrc", crc),
        table("Cobs", "kCobs", cobs),
        table("Frame", "kFrames", [frame_row(c) for c in vectors["frames"]]),
        table("Invalid", "kInvalid", invalid_rows(vectors["invalid"])),
        table("Stream", "kStreams", stream_rows(vectors["streams"])),
        ending("SERIAL_LINK_VECTORS_H", "vectors"),
    ]
    return "\n".join(parts)


# --- provisioning.json ----------------------------------------------------------------------


def provisioning_header(vectors: dict[str, Any]) -> str:
    """The device exchanges' steps are one flat table; each case names its first step and their
    count."""
    checksums = [row(c_string(c["input"]), f"{c['sum']}u") for c in vectors["checksum"]]
    packets = [
        row(c_string(c["name"]), f"{c['type']}u", c_string(c["data"]), c_string(c["wire"]))
        for c in vectors["packets"]
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
        prelude(
            "provisioning", "PROVISIONING_VECTORS_H", "provision_vectors", PROVISIONING_STRUCTS
        ),
        f"static const char* const kDeviceInfo[] = {{{info}}};\n",
        "struct Stored {\n  const char* ssid; const char* passphrase; const char* role;\n"
        "  const char* host; const char* user; const char* password; unsigned port;\n};\n",
        f"static const Stored kStored = {{{texts}, {stored['port']}u}};\n",
        table("Checksum", "kChecksums", checksums),
        table("Packet", "kPackets", packets),
        table("Invalid", "kInvalid", invalid_rows(vectors["invalid"])),
        table("Stream", "kStreams", stream_rows(vectors["streams"])),
        table("Step", "kSteps", steps),
        table("Exchange", "kExchanges", exchanges),
        ending("PROVISIONING_VECTORS_H", "provision_vectors"),
    ]
    return "\n".join(parts)


GENERATORS: dict[str, Callable[[dict[str, Any]], str]] = {
    "serial_link": serial_link_header,
    "provisioning": provisioning_header,
}


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    header = GENERATORS[source.stem]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(header(json.loads(source.read_text(encoding="utf-8"))), encoding="utf-8")


if __name__ == "__main__":
    main()
