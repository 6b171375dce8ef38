"""The FBP protocol's own test suite (``fbp-test``, npm fbp-protocol 0.9.8) against our coordinator.

The suite connects to a running runtime, adds ``core/Repeat`` and ``core/Drop`` nodes (our
built-in components, started as real participants), edits the graph, starts and stops the
network and checks every reply against the protocol's JSON schemas. The original coordinator
passes 3 of its 22 tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.mosquitto import Mosquitto, free_port
from tests.support.cli import BIN

pytestmark = pytest.mark.integration

NPM = Path(__file__).parents[1] / "npm"
FBP_TEST = NPM / "node_modules" / ".bin" / "fbp-test"
SECRET = "conformance-secret-4711"


def wait_listening(port: int, process: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"coordinator exited: {process.communicate()[0]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"coordinator did not listen on {port} within {timeout} s")


@pytest.fixture
def coordinator(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "msgflo"),
            "--broker",
            mosquitto.url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--secret",
            SECRET,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_listening(port, process)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        assert SECRET not in out, "the secret must never be logged"


def test_official_fbp_protocol_suite_passes_completely(coordinator: int, tmp_path: Path) -> None:
    assert FBP_TEST.exists(), "npm fbp-protocol is not installed; run ./bootstrap.sh setup"
    config = {
        "name": "msgflo-gateway",
        "command": None,
        "host": "127.0.0.1",
        "port": coordinator,
        "collection": "core",
        "version": "0.7",
    }
    (tmp_path / "fbp-config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [str(FBP_TEST)],
        cwd=NPM,  # fbp-test runs ./node_modules/.bin/_mocha relative to its working directory
        env={**os.environ, "PROJECT_HOME": str(tmp_path), "FBP_PROTOCOL_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    passing = re.search(r"(\d+) passing", output)
    failing = re.search(r"(\d+) failing", output)
    assert passing is not None, output
    assert failing is None, output
    assert int(passing.group(1)) == 22, output
    assert result.returncode == 0, output


def test_msgflo_info_shows_the_running_graph(mosquitto: Mosquitto, tmp_path: Path) -> None:
    (tmp_path / "main.fbp").write_text(
        "'hi' -> IN first(core/Repeat)\nfirst OUT -> IN last(core/Drop)\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "msgflo"),
            "--graph",
            "main.fbp",
            "--broker",
            mosquitto.url,
            "--port",
            str(port),
            "--secret",
            SECRET,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    address = f"ws://127.0.0.1:{port}"
    try:
        wait_listening(port, process)
        info = subprocess.run(
            [str(BIN / "msgflo-info"), "--address", address, "--secret", SECRET],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        refused = subprocess.run(
            [str(BIN / "msgflo-info"), "--address", address, "--secret", "wrong"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=30)
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    assert lines[0].startswith("runtime ") and "(msgflo 0.7)" in lines[0]
    assert "  first (core/Repeat)" in lines and "  last (core/Drop)" in lines
    assert "  first out -> in last" in lines and '  "hi" -> in first' in lines
    # Ports show once the participant has announced itself; the component is listed before.
    assert any(line.startswith("  core/Repeat  in: ") for line in lines)
    assert refused.returncode == 2 and "runtime refused" in refused.stderr
    assert "wrong" not in refused.stderr and SECRET not in refused.stderr
