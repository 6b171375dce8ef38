"""The command-line tools, run as a user would: as processes against a real mosquitto."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.mosquitto import Mosquitto, free_port
from tests.support.cli import BIN, run_script

EXAMPLES = Path(__file__).parents[2] / "examples"


def start(name: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [str(BIN / name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    return out


@pytest.fixture
def repeat(mosquitto: Mosquitto) -> Iterator[subprocess.Popen[str]]:
    process = start("msgflo-python", str(EXAMPLES / "repeat.py"), "rep", "--broker", mosquitto.url)
    yield process
    if process.poll() is None:
        stop(process)


def dump_after_send(broker: str, queue: str, sends: list[list[str]], amount: int) -> str:
    dump = start(
        "msgflo-dump-message",
        "--broker",
        broker,
        "--queue",
        queue,
        "--amount",
        str(amount),
        "--timeout",
        "10",
    )
    time.sleep(0.5)  # let it subscribe; the dump would otherwise miss the messages
    for args in sends:
        result = run_script("msgflo-send-message", "--broker", broker, *args)
        assert result.returncode == 0, result.stderr
    out, _ = dump.communicate(timeout=15)
    assert dump.returncode == 0, out
    return out


@pytest.mark.integration
def test_send_and_dump_through_a_python_participant(
    mosquitto: Mosquitto, repeat: subprocess.Popen[str]
) -> None:
    time.sleep(0.5)
    out = dump_after_send(
        mosquitto.url,
        "rep/out",
        [["--queue", "rep/in", "--json", '{"a": [1, 2]}'], ["--queue", "rep/in", "--raw", "open"]],
        amount=2,
    )
    assert json.loads(out) == [{"a": [1, 2]}, "open"]
    assert "rep(PythonRepeat) running on mqtt://127.0.0.1:" in stop(repeat)


@pytest.mark.integration
def test_dump_one_message_prints_one_value(mosquitto: Mosquitto) -> None:
    out = dump_after_send(mosquitto.url, "x/y", [["--queue", "x/y", "--raw", "23.5"]], amount=1)
    assert json.loads(out) == 23.5


@pytest.mark.integration
def test_msgflo_python_runs_files_written_for_the_original(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    source = textwrap.dedent(
        """
        import msgflo

        class Shout(msgflo.Participant):
            def __init__(self, role):
                d = {'component': 'Shout', 'inports': [{'id': 'in', 'type': 'string'}],
                     'outports': [{'id': 'out', 'type': 'string'}]}
                msgflo.Participant.__init__(self, d, role)

            def process(self, inport, msg):
                self.send('out', msg.data.upper() + '!')
                self.ack(msg)

        if __name__ == '__main__':
            msgflo.main(Shout)
        """
    )
    (tmp_path / "shout.py").write_text(source)
    process = start("msgflo-python", str(tmp_path / "shout.py"), "loud", "--broker", mosquitto.url)
    try:
        time.sleep(0.8)
        out = dump_after_send(
            mosquitto.url, "loud/out", [["--queue", "loud/in", "--json", '"hi"']], amount=1
        )
        assert json.loads(out) == "HI!"
    finally:
        stop(process)


@pytest.mark.parametrize("name", ["msgflo-send-message", "msgflo-dump-message", "msgflo-python"])
def test_invalid_broker_url_is_one_line_and_exit_2(name: str) -> None:
    args = {
        "msgflo-send-message": ["--queue", "q", "--json", "1"],
        "msgflo-dump-message": ["--queue", "q"],
        "msgflo-python": [str(EXAMPLES / "repeat.py"), "rep"],
    }[name]
    result = run_script(name, *args, "--broker", "mqtt:/nohost")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "mqtt:/nohost" in lines[0] and "invalid broker URL" in lines[0]


def test_send_rejects_bad_json_and_wildcard_queue() -> None:
    bad_json = run_script("msgflo-send-message", "--queue", "q", "--json", "{nope")
    assert bad_json.returncode == 2 and "--json is not valid JSON" in bad_json.stderr
    wildcard = run_script("msgflo-send-message", "--queue", "#ROLE/in", "--json", "1")
    assert wildcard.returncode == 2 and "unsubstituted #ROLE" in wildcard.stderr


def test_send_to_unreachable_broker_times_out_with_one_line() -> None:
    port = free_port()
    result = run_script(
        "msgflo-send-message",
        "--broker",
        f"mqtt://127.0.0.1:{port}",
        "--queue",
        "q",
        "--json",
        "1",
        "--timeout",
        "1",
    )
    assert result.returncode == 1
    assert f"could not deliver to mqtt://127.0.0.1:{port} within 1 s" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_participant_waits_for_a_broker_that_is_not_up_yet(tmp_path: Path) -> None:
    port = free_port()
    # A short discovery period: the dump below may subscribe just after the first announcement
    # (sent the moment the participant connects), and must not wait 27 s for the next one.
    process = start(
        "msgflo-python",
        str(EXAMPLES / "repeat.py"),
        "late",
        "--broker",
        f"mqtt://127.0.0.1:{port}",
        "--discovery-period",
        "2",
    )
    try:
        time.sleep(1.5)
        assert process.poll() is None  # still running, retrying
        with Mosquitto(port=port) as broker:
            # It announces itself once connected (and subscribed: same connection, in order).
            announced = run_script(
                "msgflo-dump-message", "--broker", broker.url, "--queue", "fbp", "--timeout", "10"
            )
            assert json.loads(announced.stdout)["payload"]["role"] == "late", announced.stderr
            out = dump_after_send(
                broker.url, "late/out", [["--queue", "late/in", "--json", "1"]], amount=1
            )
            assert json.loads(out) == 1
    finally:
        output = stop(process)
    assert "cannot connect to mqtt://127.0.0.1" in output and "retry in" in output
    assert "Traceback" not in output


def test_msgflo_python_usage_errors(tmp_path: Path) -> None:
    assert "usage: msgflo-python" in run_script("msgflo-python").stderr
    missing = run_script("msgflo-python", str(tmp_path / "nope.py"), "r")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (tmp_path / "empty.py").write_text("x = 1\n")
    empty = run_script("msgflo-python", str(tmp_path / "empty.py"), "r")
    assert empty.returncode == 2 and "defines no subclass of msgflo.Participant" in empty.stderr
    (tmp_path / "broken.py").write_text("def f(:\n")
    broken = run_script("msgflo-python", str(tmp_path / "broken.py"), "r")
    assert broken.returncode == 2 and "broken.py:1: syntax error" in broken.stderr


@pytest.mark.integration
def test_msgflo_register_announces_foreign_participants(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    (tmp_path / "Vacuum.yml").write_text(
        "component: c-base/Vacuum\nicon: trash\ninports:\n  on: {queue: 'c-base/#ROLE/on'}\n"
    )
    dump = start(
        "msgflo-dump-message",
        "--broker",
        mosquitto.url,
        "--queue",
        "fbp",
        "--amount",
        "2",
        "--timeout",
        "10",
    )
    time.sleep(0.5)
    result = run_script(
        "msgflo-register",
        "--broker",
        mosquitto.url,
        "--forever",
        "false",
        "--role",
        f"vac1:{tmp_path / 'Vacuum.yml'}",
        "--role",
        f"vac2:{tmp_path / 'Vacuum.yml'}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Sent discovery message for vac1",
        "Sent discovery message for vac2",
    ]
    out, _ = dump.communicate(timeout=15)
    payloads = [m["payload"] for m in json.loads(out)]
    assert [(p["id"], p["inports"][0]["id"], p["inports"][0]["queue"]) for p in payloads] == [
        ("vac1", "on", "c-base/vac1/on"),
        ("vac2", "on", "c-base/vac2/on"),
    ]


def test_msgflo_register_bad_input() -> None:
    bad_role = run_script("msgflo-register", "--role", "novalue")
    assert bad_role.returncode == 2 and "expected ROLE:FILE.yaml" in bad_role.stderr
    bad_bool = run_script("msgflo-register", "--role", "a:b.yml", "--forever", "maybe")
    assert bad_bool.returncode == 2 and "expected true or false" in bad_bool.stderr
