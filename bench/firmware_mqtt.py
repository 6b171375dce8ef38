#!/usr/bin/env python3
"""The firmware's MQTT transport (issue 18): its size on the ESP8266 and a sleepy wake cycle's
awake time against the MQTT minimum.

Size: ``src/MsgfloMqtt.cpp`` and ``src/MsgfloMqttCodec.cpp`` compiled freestanding with Debian's
xtensa-lx106-elf-g++ (the flags of firmware/test/CMakeLists.txt), flash = .text (+ literals)
and static RAM = .data + .bss of those objects (``xtensa-lx106-elf-size``), plus the sizeof of
``msgflo::MqttTransport<>`` (the object a sketch holds: 256-byte buffer, 4 QoS 1 slots) and of
``MqttTransport<256, 1>`` (one slot), read as the sizes of global arrays of that many bytes
(``nm -S``) so no board is needed.

Wake: ``mqtt_participant_bench`` (the host program optimised, without the sanitizers the tests
use) runs ``--sleepy --persistent --send 21.5`` on a private mosquitto, the same role every run
so the broker resumes its session as it would for a board: from main() to the DISCONNECT
written (connect, subscribe its inport, announce, publish at QoS 1, settled(): the SUBACK and
PUBACK in, then disconnect), as the program measures it. The MQTT minimum is a raw socket
client doing only what such a wake needs, one round trip after the other: CONNECT/CONNACK,
SUBSCRIBE/SUBACK (when the device subscribes), PUBLISH QoS 1/PUBACK, DISCONNECT. A second row
has a device without inports (``--no-inport``) against the minimum without the SUBSCRIBE. One
warm-up run each, then ``--runs`` (at most 500) of each; medians; every wait bounded.

    .venv/bin/python -m bench.firmware_mqtt [--runs 50] [--quiet 0] [--build DIR]

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
PROBE = (
    '#include "MsgfloMqtt.h"\n'
    "char mqtt_transport_size[sizeof(msgflo::MqttTransport<>)];\n"
    "char mqtt_transport_one_slot_size[sizeof(msgflo::MqttTransport<256, 1>)];\n"
)
MAX_RUNS = 500


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
    sizes = {"flash": text, "data": data, "bss": bss}
    for key, symbol in (
        ("sizeof", "mqtt_transport_size"),
        ("one_slot", "mqtt_transport_one_slot_size"),
    ):
        found = re.search(rf"^[0-9a-f]+ ([0-9a-f]+) \w {symbol}$", nm, re.M)
        assert found, nm
        sizes[key] = int(found.group(1), 16)
    return sizes


def build_program(build: Path) -> Path:
    """The optimised, unsanitised host program (CMake target ``mqtt_participant_bench``)."""
    configure = ["cmake", "-S", str(FIRMWARE / "test"), "-B", str(build)]
    python = f"-DPython3_EXECUTABLE={sys.executable}"
    subprocess.run([*configure, python], check=True, capture_output=True, timeout=300)
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "mqtt_participant_bench", "--parallel", "2"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return build / "mqtt_participant_bench"


def device_cycle(program: Path, port: int, role: str, quiet: int, inport: bool) -> float:
    """Seconds from main() (the wake) to DISCONNECT written, as the program measures it."""
    extra = [] if inport else ["--no-inport"]
    result = subprocess.run(
        [str(program), "--port", str(port), "--role", role, "--persistent", "--sleepy",
         "--send", "21.5", "--quiet", str(quiet), "--deadline", "10", *extra],
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


def minimal_cycle(port: int, client: str, subscribe: bool) -> float:
    """The MQTT minimum, one round trip after the other: CONNECT/CONNACK, SUBSCRIBE/SUBACK
    (``subscribe``), PUBLISH QoS 1/PUBACK, DISCONNECT; a persistent session like the device's."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        name = client.encode()
        body = b"\x00\x04MQTT\x04\x00\x00\x1e" + len(name).to_bytes(2, "big") + name
        sock.sendall(bytes([0x10, len(body)]) + body)
        assert _read_exact(sock, 4)[:2] == b"\x20\x02"
        if subscribe:
            topic = f"{client}/in".encode()
            body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x01"
            sock.sendall(bytes([0x82, len(body)]) + body)
            assert _read_exact(sock, 5)[:4] == b"\x90\x03\x00\x01"
        topic = f"{client}/out".encode()
        body = len(topic).to_bytes(2, "big") + topic + b"\x00\x02" + b"21.5"
        sock.sendall(bytes([0x32, len(body)]) + body)
        assert _read_exact(sock, 4) == b"\x40\x02\x00\x02"
        sock.sendall(b"\xe0\x00")
        elapsed = time.perf_counter() - start
    return elapsed


def compare(port: int, program: Path, runs: int, quiet: int, inport: bool) -> None:
    role = "bench-in" if inport else "bench-out"
    device_cycle(program, port, role, quiet, inport)  # warm-up: the session exists from now on
    minimal_cycle(port, f"min-{role}", inport)
    device = [device_cycle(program, port, role, quiet, inport) for _ in range(runs)]
    minimum = [minimal_cycle(port, f"min-{role}", inport) for _ in range(runs)]
    d, m = statistics.median(device), statistics.median(minimum)
    what = (
        "CONNECT, SUBSCRIBE, PUBLISH QoS 1, DISCONNECT"
        if inport
        else ("CONNECT, PUBLISH QoS 1, DISCONNECT")
    )
    print(
        f"wake to radio-off, {'an inport' if inport else 'no inport'} (quiet {quiet} ms, {runs} "
        f"runs, medians): device {d * 1e3:.3f} ms (min {min(device) * 1e3:.3f}), MQTT minimum "
        f"({what}) {m * 1e3:.3f} ms (min {min(minimum) * 1e3:.3f}), ratio {d / m:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--quiet", type=int, default=0, help="settled() quiet time, ms")
    parser.add_argument("--build", type=Path, help="a CMake build dir of firmware/test to reuse")
    args = parser.parse_args()
    runs = max(1, min(args.runs, MAX_RUNS))
    with tempfile.TemporaryDirectory(prefix="bench-fw-mqtt-") as tmp:
        sizes = xtensa_sizes(Path(tmp))
        print(
            f"ESP8266 (xtensa-lx106, -Os): flash {sizes['flash']} B (.text+.literal+.rodata of "
            f"MsgfloMqtt.o, MsgfloMqttCodec.o); static RAM .data {sizes['data']} B + .bss "
            f"{sizes['bss']} B; sizeof(MqttTransport<>) {sizes['sizeof']} B (4 QoS 1 slots), "
            f"sizeof(MqttTransport<256, 1>) {sizes['one_slot']} B"
        )
        program = build_program(args.build or Path(tmp) / "build")
        with Mosquitto() as broker:
            for inport in (True, False):
                compare(broker.port, program, runs, args.quiet, inport)


if __name__ == "__main__":
    main()
