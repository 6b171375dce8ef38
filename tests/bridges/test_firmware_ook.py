"""433 MHz transmit from a serial-linked microcontroller (issue 17, item 4).

Three layers, each against a reference that is not the generator itself:

- The C++ host tests (firmware/test/ook: doctest, ASan + UBSan, freestanding no-heap builds for
  the host, a Cortex-M0+ and the ESP8266) compare every edge with sequences typed out from the
  documented timing tables.
- The generated edges, written as rtl_433's OOK pulse data, are decoded by the real rtl_433:
  its Proove/Nexa decoder must read the house code, unit and state back, and a flex decoder
  built from rc-switch's protocol 1 timing the EV1527 code.
- The RemoteSockets example, built for an Uno, runs on a simulated ATmega328P
  (firmware/test/ook/pin_trace.c: the serial HIL harness plus a trace of pin 10 in CPU cycles).
  A command reaches it as a msgflo message through mosquitto and ``msgflo-serial``; the traced
  waveform is checked edge by edge against the timing table and decoded by rtl_433 again.

The waveform tolerance is 40 us per edge. The sketch changes the pin from loop() when micros()
(4 us steps) passes an edge's deadline, so each edge is late by up to one loop() iteration
(measured up to ~30 us: micros(), the next edge's computation with a 32-bit shift,
digitalWrite); a duration is the difference of two such delays. The deadlines follow the
schedule, not the last edge, so errors do not add up: the whole transmission's span must match
within the same 40 us. Receivers take far more (rtl_433's decoders for these families accept
+-200 us).

Missing cmake, compilers, simavr or rtl_433 is a failure, not a skip (``./bootstrap.sh setup``).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.mosquitto import Mosquitto
from tests.bridges.test_simavr_hil import LINK, Board, spawned
from tests.conftest import Probe
from tests.support.cli import BIN
from tests.support.wait import until

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "firmware" / "test" / "ook"
PIN_TRACE = SOURCE / "pin_trace.c"
BUILD_AVR = ROOT / "firmware" / "extras" / "build_avr.py"
EXAMPLE = "RemoteSockets"
SERIAL = "SIMAVR0433"
ROLE = "sockets"
TOLERANCE_US = 40.0
CYCLES_PER_US = 16  # the simulated Uno's 16 MHz

Wave = list[tuple[bool, float]]  # (level, microseconds)


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "CTEST_OUTPUT_ON_FAILURE": "1", **(env or {})},
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{output[-6000:]}")
    return output


# ---- the timing tables, restated from the references (docs/rf433.md, "Transmit") ----


def protocol1(bits: str, repeats: int) -> Wave:
    """PT2262/EV1527 as rc-switch protocol 1: T = 350 us; 0 = 1:3, 1 = 3:1; then sync 1:31."""
    t = 350.0
    once: Wave = []
    for bit in bits:
        high, low = (3, 1) if bit == "1" else (1, 3)
        once += [(True, high * t), (False, low * t)]
    return [*once, (True, t), (False, 31 * t)] * repeats


def nexa(house: int, group: bool, on: bool, unit: int, repeats: int) -> Wave:
    """Nexa self-learning: T = 260 us; sync T + 10 T; 1 = T 5T T T, 0 = T T T 5T; pause T + 40 T."""
    t = 260.0
    bits = f"{house:026b}{int(group)}{int(on)}{unit:04b}"
    once: Wave = [(True, t), (False, 10 * t)]
    for bit in bits:
        gaps = (5, 1) if bit == "1" else (1, 5)
        once += [(True, t), (False, gaps[0] * t), (True, t), (False, gaps[1] * t)]
    return [*once, (True, t), (False, 40 * t)] * repeats


# ---- rtl_433 as the independent decoder ----

EV1527_FLEX = "n=ev1527,m=OOK_PWM,s=350,l=1050,r=5000,t=200,bits=25,invert"


def pulse_data(wave: Wave) -> str:
    """rtl_433's OOK pulse data text (pulse and gap pairs in us) of a waveform."""
    lines = [";pulse data", ";version 1", ";timescale 1us", ";freq1 433920000"]
    pairs = zip(wave[0::2], wave[1::2], strict=False)
    for (high, pulse), (low, gap) in pairs:
        assert high and not low
        lines.append(f"{round(pulse)} {round(gap)}")
    return "\n".join([*lines, ";end", ""])


def rtl_433(path: Path, *decoder: str) -> list[dict[str, object]]:
    assert shutil.which("rtl_433"), "rtl_433 missing: run ./bootstrap.sh setup (rtl-433)"
    output = run(["rtl_433", "-F", "json", "-R", "0", *decoder, "-r", str(path)], timeout=60)
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def nexa_decoded(path: Path) -> list[dict[str, object]]:
    return [e for e in rtl_433(path, "-R", "51") if e.get("model") == "Proove-Security"]


def ev1527_decoded(path: Path) -> list[object]:
    return [e["codes"] for e in rtl_433(path, "-X", EV1527_FLEX) if e.get("model") == "ev1527"]


# Unit field 0001 on the air: rtl_433 splits the 4 bits into channel and unit, both inverted.
NEXA_DECODED = {"id": 12345678, "state": "ON", "group": 0, "channel": 3, "unit": 2}


# ---- the host tests ----


@pytest.fixture(scope="module")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tools = ("cmake", "ctest", "c++", "arm-none-eabi-g++", "xtensa-lx106-elf-g++")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    assert not missing, f"missing {missing}: run ./bootstrap.sh setup"
    build = tmp_path_factory.mktemp("ook") / "build"
    run(["cmake", "-S", str(SOURCE), "-B", str(build)])
    run(["cmake", "--build", str(build), "--parallel", "1"])
    return build


def test_ook_host_tests_pass(host_build: Path) -> None:
    output = run(["ctest", "--test-dir", str(host_build), "--output-on-failure"])
    assert "100% tests passed, 0 tests failed out of 4" in output  # doctest + 3 no-heap builds


def test_generated_codes_decode_with_rtl_433(host_build: Path, tmp_path: Path) -> None:
    """The doctest binary writes a Nexa code (house 12345678, unit 1, on) and an EV1527 code
    (0x5A5A5A, protocol 1) as pulse data; rtl_433 reads each repeat back."""
    pulses = tmp_path / "generated.ook"
    report = run([str(host_build / "ook_tests")], {"MSGFLO_OOK_PULSES_OUT": str(pulses)})
    assert "Status: SUCCESS!" in report
    first, second, _ = pulses.read_text().split(";end\n")
    (nexa_file := tmp_path / "nexa.ook").write_text(first + ";end\n")
    (ev1527_file := tmp_path / "ev1527.ook").write_text(second + ";end\n")
    decoded = nexa_decoded(nexa_file)
    assert len(decoded) == 5  # five repeats, each a whole packet
    assert all(NEXA_DECODED.items() <= event.items() for event in decoded), decoded
    assert ev1527_decoded(ev1527_file) == [["{25}5a5a5a0"]] * 10  # 24 bits + the sync's pulse


# ---- the example on a simulated Uno ----


def build_firmware(directory: Path) -> tuple[Path, Path]:
    """The pin-tracing harness and RemoteSockets for an Uno; a failure fails the test."""
    for tool in ("avr-gcc", "avr-g++", "gcc"):
        assert shutil.which(tool), f"{tool} missing: run ./bootstrap.sh setup"
    if not Path("/usr/include/simavr/sim_avr.h").exists():
        pytest.fail("simavr headers missing: run ./bootstrap.sh setup (libsimavr-dev)")
    harness = directory / "pin_trace"
    command = ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-I/usr/include/simavr"]
    run([*command, str(PIN_TRACE), "-o", str(harness), "-lsimavr", "-lsimavrparts", "-lutil"])
    avr = directory / "avr"
    run([sys.executable, str(BUILD_AVR), "--build", str(avr), "--jobs", "1", EXAMPLE])
    return harness, avr / EXAMPLE / f"{EXAMPLE}.elf"


def trace(path: Path) -> list[tuple[int, bool]]:
    """(cycle, level) per pin change, as pin_trace.c writes them; a half-written line is left."""
    changes = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) == 2:
            changes.append((int(fields[0]), fields[1] == "1"))
    return changes


def clear(path: Path) -> None:
    """Empties the trace; the harness appends (O_APPEND), so it writes from the start again."""
    path.write_text("")


def waveform(changes: list[tuple[int, bool]]) -> Wave:
    """Levels and how long each lasted, from the first rise to the last change."""
    start = next((i for i, (_, level) in enumerate(changes) if level), len(changes))
    changes = changes[start:]
    return [
        (level, (end - begin) / CYCLES_PER_US)
        for (begin, level), (end, _) in itertools.pairwise(changes)
    ]


def check_waveform(got: Wave, want: Wave) -> None:
    """Edge by edge within the tolerance; the last low (the final gap) never ends in a change,
    so it is not measured. The total span checks that errors do not accumulate."""
    assert len(got) == len(want) - 1, f"{len(got)} edges traced, {len(want) - 1} expected"
    errors = []
    for index, ((level, us), (want_level, want_us)) in enumerate(zip(got, want, strict=False)):
        assert level == want_level, f"edge {index}: level {level}, expected {want_level}"
        errors.append(us - want_us)
    worst = max(errors, key=abs)
    print(f"{len(errors)} edges, error {min(errors):+.1f} .. {max(errors):+.1f} us")
    assert abs(worst) <= TOLERANCE_US, f"an edge is off by {worst:+.1f} us"
    span = sum(us for _, us in got) - sum(us for _, us in want[:-1])
    assert abs(span) <= TOLERANCE_US, f"the transmission's span is off by {span:+.1f} us"


async def transmit(probe: Probe, command: str, trace_file: Path, wave: Wave) -> Wave:
    """Send a command to the board's inport as a JSON string; wait for its `sent` report and for
    the waveform's edges in the trace; return the waveform traced for it."""
    clear(trace_file)
    before = len(probe.received[f"{ROLE}/sent"])
    probe.transport.publish(f"{ROLE}/code", json.dumps(command).encode())
    await until(lambda: len(probe.received[f"{ROLE}/sent"]) > before, 30, f"{command!r} sent")
    report = json.loads(probe.received[f"{ROLE}/sent"][before])
    assert report["edges"] == len(wave), report
    await until(lambda: len(waveform(trace(trace_file))) >= len(wave) - 1, 5, "the edges")
    return waveform(trace(trace_file))


@pytest.mark.integration
async def test_remote_sockets_on_simavr_through_the_bridge(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness, elf = build_firmware(tmp_path)
    trace_file = tmp_path / "pin10.txt"
    trace_file.write_text("")
    monkeypatch.setenv("MSGFLO_SIMAVR_TRACE", str(trace_file))
    devices = tmp_path / "by-id"
    devices.mkdir()
    board = Board(harness, elf, devices / LINK.format(serial=SERIAL))
    bridge_log = tmp_path / "bridge.log"
    bridge = [str(BIN / "msgflo-serial"), "--broker", mosquitto.url]
    bridge += ["--glob", str(devices / "usb-*"), "--role", f"{SERIAL}={ROLE}", "--period", "2"]
    for port in ("sent", "error"):
        await probe.watch(f"{ROLE}/{port}")
    await probe.watch("fbp")
    try:
        with spawned(bridge, bridge_log):
            board.plug()
            try:
                await run_scenario(probe, trace_file, tmp_path)
            except BaseException:
                print("--- bridge log ---\n" + bridge_log.read_text("utf-8", "replace"))
                raise
    finally:
        board.unplug()


async def run_scenario(probe: Probe, trace_file: Path, tmp_path: Path) -> None:
    def announced() -> list[dict[str, object]]:
        payloads = [m.get("payload", {}) for m in probe.discovery()]
        return [p for p in payloads if p.get("role") == ROLE]

    await until(lambda: bool(announced()), 20, "the board's discovery on fbp")
    announcement = announced()[-1]
    assert announcement["inports"] == [{"id": "code", "type": "string", "queue": f"{ROLE}/code"}]
    assert announcement["outports"] == [
        {"id": "sent", "type": "object", "queue": f"{ROLE}/sent"},
        {"id": "error", "type": "string", "queue": f"{ROLE}/error"},
    ]

    # Nexa: edge by edge against the table, then decoded by rtl_433 from the pin itself.
    want = nexa(12345678, group=False, on=True, unit=1, repeats=5)
    got = await transmit(probe, "nexa 12345678 1 on", trace_file, want)
    check_waveform(got, want)
    (pulses := tmp_path / "nexa-pin.ook").write_text(pulse_data([*got, want[-1]]))
    decoded = nexa_decoded(pulses)
    assert len(decoded) == 5
    assert all(NEXA_DECODED.items() <= event.items() for event in decoded), decoded

    # EV1527 / PT2262 (rc-switch protocol 1), three repeats.
    want = protocol1("010110100101101001011010", repeats=3)
    got = await transmit(probe, "ev1527 0x5A5A5A x3", trace_file, want)
    check_waveform(got, want)
    (pulses := tmp_path / "ev1527-pin.ook").write_text(pulse_data([*got, want[-1]]))
    assert ev1527_decoded(pulses) == [["{25}5a5a5a0"]] * 3

    # A command that arrives while one is on air waits for it (the board keeps reading serial in
    # the pauses), then goes out whole right after it.
    await command_while_on_air(probe, trace_file)

    # A bad command: refused with a reason, nothing on the pin.
    clear(trace_file)
    probe.transport.publish(f"{ROLE}/code", json.dumps("nexa 99999999 1 on").encode())
    reason = await probe.next_json(f"{ROLE}/error", timeout=10)
    assert reason.startswith("out of range"), reason
    assert trace(trace_file) == []


async def command_while_on_air(probe: Probe, trace_file: Path) -> None:
    first = nexa(12345678, group=False, on=False, unit=1, repeats=30)  # 2.4 s simulated
    second = protocol1("010110100101101001011010", repeats=2)
    sent = f"{ROLE}/sent"
    before = len(probe.received[sent])
    clear(trace_file)
    probe.transport.publish(f"{ROLE}/code", json.dumps("nexa 12345678 1 off x30").encode())
    await until(lambda: len(trace(trace_file)) > 20, 10, "the first command on air")
    probe.transport.publish(f"{ROLE}/code", json.dumps("ev1527 0x5A5A5A x2").encode())
    assert len(trace(trace_file)) < len(first) // 2, "the first command ended too soon"
    await until(lambda: len(probe.received[sent]) >= before + 2, 30, "both commands sent")
    reports = [json.loads(payload) for payload in probe.received[sent][before:]]
    assert [report["protocol"] for report in reports] == ["nexa", "rc1"]
    total = len(first) + len(second) - 1
    await until(lambda: len(waveform(trace(trace_file))) >= total, 5, "the edges")
    got = waveform(trace(trace_file))
    check_waveform(got[: len(first) - 1], first)
    check_waveform(got[len(first) :], second)
    # The first's final pause (10.4 ms) ends when the second starts: it was waiting, not sent
    # after a round trip of its own.
    level, pause = got[len(first) - 1]
    assert not level
    assert 40 * 260 - TOLERANCE_US <= pause <= 40 * 260 + 5000, pause
