#!/usr/bin/env python3
"""The firmware's MQTT transport (issue 18): its size on the ESP8266 and a sleepy wake cycle's
awake time against the MQTT minimum.

Size: ``src/MsgfloMqtt.cpp`` and ``src/MsgfloMqttCodec.cpp`` compiled freestanding with Debian's
xtensa-lx106-elf-g++ (the flags of firmware/test/CMakeLists.txt), flash = .text (+ literals)
and static RAM = .data + .bss of those objects (``xtensa-lx106-elf-size``), plus
``sizeof(msgflo::MqttTransport<>)`` (the object a sketch holds), read as the size of a global
array of that many bytes (``nm -S``) so no board is needed.

Wake: the host build of ``mqtt_participant --sleepy --persistent --send`` on a private
mosquitto: from process start to the DISCONNECT written (it connects, subscribes, announces,
publishes at QoS 1, waits for the PUBACK and ``--quiet`` ms of silence), against a minimal raw
socket client doing only CONNECT/CONNACK, PUBLISH QoS 1/PUBACK and DISCONNECT. Both use the same
loopback broker; ``--runs`` of each, medians reported, every wait bounded.

    .venv/bin/python -m bench.firmware_mqtt [--runs 20] [--quiet 250] [--build DIR]

No figure is asserted; see bench/RESULTS.md for recorded runs.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gateway.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
FLAGS = [
    "-c", "-std=c++11", "-Os", "-ffreestanding", "-fno-exceptions", "-fno-rtti",
    "-fno-threadsafe-statics", "-nostdinc++", "-ffunction-sections", "-fdata-sections",
    "-mlongcalls", "-mtext-section-literals", "--specs=/usr/lib/xtensa-lx106-elf/picolibc.specs",
    f"-I{FIRMWARE / 'test' / 'fake'}", f"-I{FIRMWARE / 'src'}",
]  # fmt: skip
PROBE = '#include "MsgfloMqtt.h"\nchar mqtt_transport_size[sizeof(msgflo::MqttTransport<>)];\n'


def xtensa_sizes(out: Path) -> dict[str, int]:
    """flash and static RAM of the MQTT objects, and sizeof(MqttTransport<>), on the ESP8266."""
    text = data = bss = 0
    for name in ("MsgfloMqtt", "MsgfloMqttCodec"):
        obj = out / f"{name}.o"
        src = FIRMWARE / "src" / f"{name}.cpp"
        subprocess.run(["xtensa-lx106-elf-g++", *FLAGS, str(src), "-o", str(obj)], check=True)
        size = subprocess.run(
            ["xtensa-lx106-elf-size", "-A", str(obj)], capture_output=True, text=True, check=True
        ).stdout
        for line in size.splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[1].isdigit():
                continue
            if parts[0].startswith((".text", ".literal", ".rodata", ".irom")):
                text += int(parts[1])
            elif parts[0].startswith(".data"):
                data += int(parts[1])
            elif parts[0].startswith(".bss"):
                bss += int(parts[1])
    probe_src, probe_obj = out / "probe.cpp", out / "probe.o"
    probe_src.write_text(PROBE)
    subprocess.run(
        ["xtensa-lx106-elf-g++", *FLAGS, str(probe_src), "-o", str(probe_obj)], check=True
    )
    nm = subprocess.run(
        ["xtensa-lx106-elf-nm", "-S", str(probe_obj)], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"^[0-9a-f]+ ([0-9a-f]+) \w mqtt_transport_size$", nm, re.M)
    assert found, nm
    return {"flash": text, "data": data, "bss": bss, "sizeof": int(found.group(1), 16)}


def build_program(build: Path) -> Path:
    configure = ["cmake", "-S", str(FIRMWARE / "test"), "-B", str(build)]
    python = f"-DPython3_EXECUTABLE={sys.executable}"
    subprocess.run([*configure, python], check=True, capture_output=True)
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "mqtt_participant", "--parallel", "2"],
        check=True, capture_output=True,
    )  # fmt: skip
    return build / "mqtt_participant"


def device_cycle(program: Path, port: int, run: int, quiet: int) -> float:
    """Seconds from main() (the wake) to DISCONNECT written, as the program measures it
    (the ASan/UBSan build, the only one the CMake project makes)."""
    result = subprocess.run(
        [str(program), "--port", str(port), "--role", f"bench{run}", "--persistent", "--sleepy",
         "--send", "21.5", "--quiet", str(quiet), "--deadline", "10"],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    found = re.search(r"^slept awake_us=(\d+)$", result.stdout, re.M)
    assert found, result.stdout
    return int(found.group(1)) / 1e6


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def minimal_cycle(port: int, run: int) -> float:
    """The MQTT minimum: CONNECT/CONNACK, PUBLISH QoS 1/PUBACK, DISCONNECT."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = f"min{run}".encode()
        body = b"\x00\x04MQTT\x04\x00\x00\x1e" + len(client).to_bytes(2, "big") + client
        sock.sendall(bytes([0x10, len(body)]) + body)
        assert _read_exact(sock, 4)[:2] == b"\x20\x02"
        topic = f"min{run}/out".encode()
        body = len(topic).to_bytes(2, "big") + topic + b"\x00\x01" + b"21.5"
        sock.sendall(bytes([0x32, len(body)]) + body)
        assert _read_exact(sock, 4) == b"\x40\x02\x00\x01"
        sock.sendall(b"\xe0\x00")
        elapsed = time.perf_counter() - start
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quiet", type=int, default=250, help="settled() quiet time, ms")
    parser.add_argument("--build", type=Path, help="a CMake build dir of firmware/test to reuse")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fw-mqtt-") as tmp:
        sizes = xtensa_sizes(Path(tmp))
        print(
            f"ESP8266 (xtensa-lx106, -Os): flash {sizes['flash']} B (.text+.literal+.rodata of "
            f"MsgfloMqtt.o, MsgfloMqttCodec.o); static RAM .data {sizes['data']} B + .bss "
            f"{sizes['bss']} B; sizeof(MqttTransport<>) {sizes['sizeof']} B"
        )
        program = build_program(args.build or Path(tmp) / "build")
        with Mosquitto() as broker:
            for quiet in sorted({args.quiet, 0}):
                device = [device_cycle(program, broker.port, i, quiet) for i in range(args.runs)]
                minimum = [minimal_cycle(broker.port, i) for i in range(args.runs)]
                d, m = statistics.median(device), statistics.median(minimum)
                print(
                    f"wake to radio-off (quiet {quiet} ms, {args.runs} runs, medians): device "
                    f"{d * 1000:.1f} ms (incl. process start), MQTT minimum {m * 1000:.2f} ms, "
                    f"ratio {d / m:.1f}"
                )


if __name__ == "__main__":
    main()
