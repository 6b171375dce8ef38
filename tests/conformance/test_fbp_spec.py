"""fbp-spec 0.8.0 (the current release, which refuses the original coordinator) runs our specs.

The specs (tests/conformance/specs) test core/Repeat with JSON values of every type, unicode
and null, and a chain of our Python participants around an unmodified msgflo-nodejs one, all
started by the coordinator as fbp-spec builds each fixture graph through the runtime protocol.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from gateway.mosquitto import Mosquitto, free_port
from tests.conformance.test_fbp_protocol import SECRET, wait_listening

BIN = Path(sys.executable).parent
NPM = Path(__file__).parents[1] / "npm" / "node_modules"
SPECS = Path(__file__).parent / "specs"


def test_fbp_spec_suites_pass(mosquitto: Mosquitto, tmp_path: Path) -> None:
    fbp_spec = NPM / ".bin" / "fbp-spec"
    assert fbp_spec.exists(), "npm fbp-spec is not installed; run ./bootstrap.sh setup"
    repeat_js = NPM / "msgflo-nodejs" / "examples" / "Repeat.coffee"
    (tmp_path / "library.json").write_text(
        json.dumps(
            {"msgflo": {"components": {"nodejs/Repeat": f"msgflo-nodejs --name #ROLE {repeat_js}"}}}
        )
    )
    port = free_port()
    env = {**os.environ, "PATH": f"{NPM / '.bin'}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen(
        [
            str(BIN / "msgflo"),
            "--broker",
            mosquitto.url,
            "--port",
            str(port),
            "--secret",
            SECRET,
            "--library",
            "library.json",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=env,
    )
    try:
        wait_listening(port, process)
        result = subprocess.run(
            [
                str(fbp_spec),
                "--address",
                f"ws://127.0.0.1:{port}",
                "--secret",
                SECRET,
                "--command-timeout",
                "30000",
                str(SPECS),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        coordinator_output, _ = process.communicate(timeout=30)
    output = result.stdout + result.stderr
    passed = re.findall(r": ✓", output)
    assert result.returncode == 0, output + coordinator_output[-3000:]
    assert "✗" not in output, output
    assert len(passed) == 9, output  # 7 Repeat cases + 2 chain cases
