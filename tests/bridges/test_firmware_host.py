"""The firmware's host tests (firmware/test: doctest, fake Arduino headers, ASan + UBSan), built
with CMake in a temporary directory and run with ctest, so the C++ codec is checked against the
same tests/vectors/serial_link.json as the Python one on every ``./bootstrap.sh test``.

Missing cmake, a C++ compiler or clang-format is a failure, not a skip: ``./bootstrap.sh setup``
installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "firmware" / "test"


def run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "CTEST_OUTPUT_ON_FAILURE": "1"},
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{output[-6000:]}")
    return output


def test_tools_are_installed() -> None:
    tools = ("cmake", "ctest", "c++", "clang-format")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    assert not missing, f"missing {missing}: run ./bootstrap.sh setup"


def test_firmware_host_tests_pass(tmp_path: Path) -> None:
    build = tmp_path / "build"
    jobs = str(min(2, os.cpu_count() or 1))
    run(
        [
            "cmake",
            "-S",
            str(SOURCE),
            "-B",
            str(build),
            f"-DPython3_EXECUTABLE={sys.executable}",
        ],
        ROOT,
    )
    run(["cmake", "--build", str(build), "--parallel", jobs], ROOT)
    output = run(["ctest", "--test-dir", str(build), "--output-on-failure"], ROOT)
    assert "100% tests passed" in output
    report = run([str(build / "firmware_tests")], ROOT)
    assert "Status: SUCCESS!" in report
