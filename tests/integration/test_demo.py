"""``./bootstrap.sh demo`` runs the demo entry point: it must show a live, working network."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

DEMO = str(Path(sys.executable).parent / "msgflo-gateway-demo")


def test_demo_shows_participants_exchanging_messages() -> None:
    result = subprocess.run(
        [DEMO, "--duration", "4", "--interval", "0.1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "private Mosquitto at mqtt://127.0.0.1:" in out
    assert "discovery: thermometer (demo/Thermometer) in=[] out=['temperature']" in out
    assert "discovery: alarm (demo/ThresholdAlarm) in=['in'] out=['alarm']" in out
    readings = [line for line in out.splitlines() if "thermometer/temperature:" in line]
    assert len(readings) >= 10
    # The alarm reported its initial state, then reacted to a reading above its 23 degree limit.
    assert "alarm/alarm: true" in out and "alarm/alarm: false" in out
    assert "Traceback" not in result.stderr


def test_demo_stops_cleanly_on_ctrl_c() -> None:
    process = subprocess.Popen([DEMO], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert out.rstrip().endswith("demo stopped")
    assert "Traceback" not in err
