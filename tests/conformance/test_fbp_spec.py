"""fbp-spec 0.8.0 (the current release, which refuses the original coordinator) runs our specs.

The specs (tests/conformance/specs) test core/Repeat with JSON values of every type, unicode
and null, and a chain of our Python participants around an unmodified msgflo-nodejs one, all
started by the coordinator as fbp-spec builds each fixture graph through the runtime protocol.
``sequential_specs`` are two suites that use the same node name one after the other, as suites
written separately do: fbp-spec clears the graph between them, so the second suite's ``a`` is a
new participant of a role whose old participant was just stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.mosquitto import Mosquitto, free_port
from tests.conformance.test_fbp_protocol import SECRET, wait_listening
from tests.support.cli import BIN

pytestmark = pytest.mark.integration

NPM = Path(__file__).parents[1] / "npm" / "node_modules"
SPECS = Path(__file__).parent / "specs"
SEQUENTIAL = Path(__file__).parent / "sequential_specs"


@contextlib.contextmanager
def coordinator(mosquitto: Mosquitto, cwd: Path) -> Iterator[tuple[int, list[str]]]:
    """A ``msgflo`` coordinator with a secret on a free port; its output when it has ended."""
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
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=env,
    )
    output: list[str] = []
    try:
        wait_listening(port, process)
        yield port, output
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output.append(process.communicate(timeout=30)[0])
    assert SECRET not in output[0], "the secret must never be logged"


def write_library(directory: Path) -> None:
    repeat_js = NPM / "msgflo-nodejs" / "examples" / "Repeat.coffee"
    (directory / "library.json").write_text(
        json.dumps(
            {"msgflo": {"components": {"nodejs/Repeat": f"msgflo-nodejs --name #ROLE {repeat_js}"}}}
        )
    )


def fbp_spec(
    port: int, specs: Path, *, command_timeout: int = 30, timeout: float = 300
) -> tuple[int, str]:
    """Run fbp-spec on ``specs`` (a file or a directory of them) against the runtime on
    ``port``: exit status and output. ``--command-timeout`` is in seconds; it does not bound
    the wait for a case's output, so ``timeout`` does."""
    program = NPM / ".bin" / "fbp-spec"
    assert program.exists(), "npm fbp-spec is not installed; run ./bootstrap.sh setup"
    try:
        result = subprocess.run(
            [
                str(program),
                "--address",
                f"ws://127.0.0.1:{port}",
                "--secret",
                SECRET,
                "--command-timeout",
                str(command_timeout),
                str(specs),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return -1, f"fbp-spec did not finish within {timeout:g} s; its output:\n{partial}"
    return result.returncode, result.stdout + result.stderr


def test_fbp_spec_suites_pass(mosquitto: Mosquitto, tmp_path: Path) -> None:
    write_library(tmp_path)
    with coordinator(mosquitto, tmp_path) as (port, coordinator_output):
        status, output = fbp_spec(port, SPECS)
    passed = re.findall(r": ✓", output)
    assert status == 0, output + coordinator_output[-1][-3000:]
    assert "✗" not in output, output
    assert len(passed) == 9, output  # 7 Repeat cases + 2 chain cases


def test_suites_reusing_a_node_name_run_one_after_another(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # Before the fix the second suite's packet went out before its new participant ``a`` had
    # subscribed (the stopped one still counted as discovered) and fbp-spec waited for an
    # answer for ever (its command timeout does not cover that wait).
    write_library(tmp_path)
    with coordinator(mosquitto, tmp_path) as (port, coordinator_output):
        runs = [
            fbp_spec(port, SEQUENTIAL, command_timeout=15, timeout=60),  # two suites in one run
            fbp_spec(port, SEQUENTIAL / "second.yaml", command_timeout=15, timeout=60),
        ]
    for status, output in runs:
        assert status == 0 and "✗" not in output, output + coordinator_output[-1][-3000:]
    assert [len(re.findall(r": ✓", output)) for _, output in runs] == [3, 2]
