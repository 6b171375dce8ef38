"""The firmware's host tests (firmware/test: doctest, fake Arduino headers, ASan + UBSan), built
with CMake in a temporary directory and run with ctest, so the C++ codec is checked against the
same tests/vectors/serial_link.json as the Python one on every ``./bootstrap.sh test``.

The C++ participant test reads its description back from a simulated device, slice by slice;
here that text goes through Python's json module and the gateway's own validator, so the
firmware's escaping is checked by the parser that will read it in production.

Missing cmake, a C++ compiler, clang-format or arm-none-eabi-g++ (the freestanding ARM build)
is a failure, not a skip: ``./bootstrap.sh setup`` installs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.bridges.serial.description import (
    DescriptionAssembler,
    PortSpec,
    parse_description,
)
from gateway.bridges.serial.link import Description, Hello, LinkDecoder, Received

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "firmware" / "test"


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "CTEST_OUTPUT_ON_FAILURE": "1", **(env or {})},
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{output[-6000:]}")
    return output


TOOLS = ("cmake", "ctest", "c++", "clang-format", "arm-none-eabi-g++", "xtensa-lx106-elf-g++")


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host tests, configured and built once for this module."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"missing {missing}: run ./bootstrap.sh setup"
    build = tmp_path_factory.mktemp("firmware") / "build"
    jobs = str(min(2, os.cpu_count() or 1))
    configure = ["cmake", "-S", str(SOURCE), "-B", str(build)]
    run([*configure, f"-DPython3_EXECUTABLE={sys.executable}"], ROOT)
    run(["cmake", "--build", str(build), "--parallel", jobs], ROOT)
    return build


def test_tools_are_installed() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"missing {missing}: run ./bootstrap.sh setup"


def test_firmware_host_tests_pass(build: Path) -> None:
    output = run(["ctest", "--test-dir", str(build), "--output-on-failure"], ROOT)
    assert "100% tests passed" in output
    # doctest, the host no-heap check, the ARM and ESP8266 cross builds, clang-format
    assert "out of 5" in output
    assert "xtensa_no_heap_no_runtime" in output


@pytest.fixture(scope="module")
def device_output(build: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What the C++ test of a 60-byte device read back: the description text and the wire."""
    out = tmp_path_factory.mktemp("device")
    files = {
        "MSGFLO_DESCRIPTION_OUT": out / "description.json",
        "MSGFLO_DEVICE_WIRE_OUT": out / "wire",
    }
    report = run([str(build / "firmware_tests")], ROOT, {k: str(v) for k, v in files.items()})
    assert "Status: SUCCESS!" in report
    return {key: path.read_bytes() for key, path in files.items()}


def test_device_wire_decodes_with_the_python_codec(device_output: dict[str, bytes]) -> None:
    """The hello and the 52-byte description slices, through the gateway's decoder and assembler."""
    events = LinkDecoder().feed(device_output["MSGFLO_DEVICE_WIRE_OUT"])
    frames = [event for event in events if isinstance(event, Received)]
    assert len(frames) == len(events)
    assert frames[0].frame == Hello(name="Echo", version="1.2.3", max_frame=60)
    assembler = DescriptionAssembler()
    text = None
    for received in frames[1:]:
        assert isinstance(received.frame, Description)
        assert text is None
        text = assembler.add(received.frame)
    assert text == device_output["MSGFLO_DESCRIPTION_OUT"]
    assert len(frames) - 1 == -(-len(text) // 52)


def test_device_description_passes_the_gateway_validator(device_output: dict[str, bytes]) -> None:
    text = device_output["MSGFLO_DESCRIPTION_OUT"]
    label = 'A "quoted" C:\\dir label,\ta tab, a newline\n, \x01 and gr\u00fc\u00df'
    assert json.loads(text)["label"] == label
    description = parse_description(text)
    assert description.component == "Echo"
    assert description.label == label
    assert description.icon == "repeat"
    assert description.inports == (PortSpec("in", "string"), PortSpec("led", "boolean"))
    assert description.outports == (PortSpec("out", "string"), PortSpec("raw", "any"))
    assert description.version == "1.2.3"
