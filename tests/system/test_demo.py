"""``./bootstrap.sh demo`` runs the demo entry point: it must show a live, working network."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from tests.support.cli import BIN, run_script

# The demo starts a private mosquitto of its own (in its process: the guard cannot see it).
pytestmark = pytest.mark.integration

DEMO = str(BIN / "msgflo-gateway-demo")


def test_demo_runs_the_coordinator_with_simulated_devices() -> None:
    result = run_script("msgflo-gateway-demo", "--duration", "10", "--interval", "0.2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "broker (private, loopback only): mqtt://127.0.0.1:" in out
    status = [line for line in out.splitlines() if line.startswith("[display] LED")]
    assert len(status) >= 10, out
    # Data crossed every edge of examples/demo.fbp through the coordinator: humidity from
    # the sensor, presses from the button, and the alarm (fed by the temperature and the
    # limit IIP) switching the LED on at least once.
    last = status[-1]
    assert re.search(r"humidity \d+\.\d%", last), last
    presses = int(last.rsplit(" ", 1)[1])
    assert presses >= 1, last
    assert any("LED ON " in line for line in status), status
    # The replayed BLE thermometer, through the BLE bridge and the coordinator's edge.
    assert re.search(r"fridge 2\d\.\d C", last), last
    # The 433 MHz weather sensor: its recorded signal, rtl_433, the 433 MHz bridge, the edge.
    assert "outside 12.5 C" in last, last
    for role in ("climate", "button", "alarm", "display", "fridge", "garden"):
        assert f"participant {role}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert out.rstrip().endswith("demo stopped")


def test_demo_stops_cleanly_on_ctrl_c() -> None:
    process = subprocess.Popen([DEMO], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.rstrip().endswith("demo stopped")
    assert "Traceback" not in err
