"""The ``msgflo`` command as a user runs it: graph file, component dir, started participants."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from asyncio.subprocess import PIPE
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from gateway.mosquitto import Mosquitto, free_port
from tests.support.amqp_broker import RabbitMQ
from tests.support.cli import BIN, run_script

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "components").mkdir()
    shutil.copy(EXAMPLES / "repeat.py", tmp_path / "components" / "Repeat.py")
    (tmp_path / "main.fbp").write_text(
        "# @runtime msgflo\n'hello' -> IN rep(Repeat)\nrep OUT -> IN rep2(Repeat)\n"
    )
    return tmp_path


def coordinator(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    if "--port" not in args:  # not 3569: another run on this machine may hold it
        args = (*args, "--port", str(free_port()))
    return subprocess.Popen(
        [str(BIN / "msgflo"), "--graph", "main.fbp", *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,
    )


def start_dump(broker: str, queue: str, within: Sequence[str] = ()) -> subprocess.Popen[str]:
    dump = subprocess.Popen(
        [
            *within,
            str(BIN / "msgflo-dump-message"),
            "--broker",
            broker,
            "--queue",
            queue,
            "--timeout",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.7)  # let it subscribe before anything is sent
    return dump


def result(dump: subprocess.Popen[str]) -> object:
    out, err = dump.communicate(timeout=30)
    assert dump.returncode == 0, err
    return json.loads(out)


def dump_while_sending(broker: str, queue: str, send_to: str, within: Sequence[str] = ()) -> object:
    """Dump one message from ``queue`` while sending to ``send_to`` every half second: works
    however long the participants take to start and be wired. ``within`` prefixes both
    commands (to run them in another network namespace)."""
    dump = start_dump(broker, queue, within)
    deadline = time.monotonic() + 20
    while dump.poll() is None and time.monotonic() < deadline:
        subprocess.run(
            [
                *within,
                str(BIN / "msgflo-send-message"),
                "--broker",
                broker,
                "--queue",
                send_to,
                "--json",
                '"again"',
            ],
            capture_output=True,
            check=False,
        )
        time.sleep(0.5)
    return result(dump)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    return out


def pids_of(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]


@pytest.mark.integration
def test_runs_a_graph_with_started_participants(project: Path, mosquitto: Mosquitto) -> None:
    dump = start_dump(mosquitto.url, "rep2/out")
    process = coordinator(project, "--broker", mosquitto.url)
    try:
        # The IIP reaches rep, and rep's output is forwarded to rep2.
        assert result(dump) == "hello"
    finally:
        out = stop(process)
    assert "msgflo: coordinating 2 nodes and 1 edges" in out
    assert "[rep] rep(PythonRepeat) running on" in out
    assert process.returncode == 0
    assert "Traceback" not in out


@pytest.mark.integration
def test_tells_systemd_when_the_runtime_listens(
    project: Path, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # As msgflo-coordinator.service (Type=notify) runs it: READY=1 once "msgflo started on"
    # is true, so that the units after it (the bridges) start then.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        notify.settimeout(60)
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify")}
        process = coordinator(project, "--broker", mosquitto.url, env=env)
        try:
            assert notify.recv(64) == b"READY=1"
        finally:
            out = stop(process)
    assert "msgflo started on" in out


@pytest.mark.integration
def test_starts_a_private_broker_when_none_is_given(project: Path) -> None:
    # In a network namespace of its own, where nothing listens on localhost:1883 (a Debian
    # host runs a system Mosquitto there, and msgflo would rightly use that one).
    env = {k: v for k, v in os.environ.items() if k != "MSGFLO_BROKER"}
    fresh = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    if subprocess.run([*fresh, "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot make a network namespace here (unshare --net needs root)")
    process = subprocess.Popen(
        [*fresh, str(BIN / "msgflo"), "--graph", "main.fbp"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"started a private Mosquitto at (mqtt://127\.0\.0\.1:\d+)", first)
        assert match, first
        within = ["nsenter", f"--net=/proc/{process.pid}/ns/net", "--"]
        got = dump_while_sending(match.group(1), "rep2/out", "rep/in", within)
        assert got in ("hello", "again")
    finally:
        stop(process)


@pytest.mark.integration
def test_ignored_roles_are_not_started(project: Path, mosquitto: Mosquitto) -> None:
    dump = start_dump(mosquitto.url, "rep/out")
    # rep2 is expected to be run elsewhere; it never comes, so the IIP for rep is held only
    # until the wait timeout.
    process = coordinator(
        project, "--broker", mosquitto.url, "--ignore", "rep2", "--wait-timeout", "1"
    )
    try:
        assert result(dump) == "hello"
    finally:
        out = stop(process)
    assert "[rep] " in out and "[rep2]" not in out


@pytest.mark.integration
def test_no_stale_processes_after_kill_9(project: Path, mosquitto: Mosquitto) -> None:
    marker = f"components/Repeat.py rep-{os.getpid()}"
    (project / "main.fbp").write_text(f"'x' -> IN rep-{os.getpid()}(Repeat)\n")
    process = coordinator(project, "--broker", mosquitto.url)
    try:
        deadline = time.monotonic() + 10
        while not pids_of(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids_of(marker), "participant was not started"
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    deadline = time.monotonic() + 10
    while pids_of(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids_of(marker) == []


def test_invalid_graph_reports_every_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.fbp").write_text("a(A) OUT -> IN b(B)\nc OUT -> IN a\nx OUT -> IN y\n")
    result = run_script("msgflo", "--graph", tmp_path / "bad.fbp", timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 2
    assert all(line.startswith(f"msgflo: error: {tmp_path / 'bad.fbp'}:") for line in lines)


def test_auto_save_needs_a_graph() -> None:
    result = run_script("msgflo", "--auto-save", timeout=30)
    assert result.returncode == 2 and "--auto-save needs --graph" in result.stderr


@pytest.mark.integration
def test_msgflo_setup_prints_bindings_from_discovery(project: Path, mosquitto: Mosquitto) -> None:
    result = subprocess.run(
        [
            str(BIN / "msgflo-setup"),
            "main.fbp",
            "--broker",
            mosquitto.url,
            "--participants",
            "--timeout",
            "60",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    bindings = [line for line in result.stdout.splitlines() if not line.startswith("[")]
    assert bindings == ["PUBSUB: rep/out -> rep2/in"]  # the rest is the participants' output
    assert "use --forever to keep them" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_msgflo_setup_fails_when_edges_stay_unresolved(project: Path, mosquitto: Mosquitto) -> None:
    # Without --participants nobody announces: the wiring cannot complete, and that is a failure.
    argv = ["main.fbp", "--broker", mosquitto.url, "--timeout", "0.5"]
    result = run_script("msgflo-setup", *argv, cwd=project, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "msgflo-setup: error: 1 edges not resolved after 0.5 s: rep OUT -> IN rep2"
    )


async def through_broker(url: str, exchange: str, queue: str) -> bytes:
    """Publish to ``exchange`` (an outport) and take what arrives in ``queue`` (an inport)."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        outport = await channel.get_exchange(exchange, ensure=False)
        await outport.publish(aio_pika.Message(b'"kept"'), routing_key="")
        inport = await channel.get_queue(queue, ensure=False)
        async with asyncio.timeout(10):
            while (message := await inport.get(no_ack=True, fail=False)) is None:
                await asyncio.sleep(0.05)
        return message.body


@pytest.mark.integration
async def test_msgflo_setup_on_amqp_leaves_the_bindings_on_the_broker(
    project: Path, rabbitmq: RabbitMQ
) -> None:
    # Role names of their own: the session's broker is shared and its objects are durable.
    src, rr, work, dead = (f"{n}{secrets.token_hex(3)}" for n in ("src", "rr", "work", "dead"))
    (project / "main.fbp").write_text(
        f"{src}(Repeat) OUT -> IN {rr}(msgflo/RoundRobin)\n"
        f"{rr} OUT -> IN {work}(Repeat)\n"
        f"{rr} DEADLETTER -> IN {dead}(Repeat)\n"
        f"{work} OUT -> IN {dead}\n"
    )
    # Four Python participants start on a loaded 2-core machine: a generous discovery wait.
    argv = ["main.fbp", "--broker", rabbitmq.url, "--participants", "--timeout", "60"]
    setup = await asyncio.create_subprocess_exec(
        str(BIN / "msgflo-setup"), *argv, cwd=project, stdout=PIPE, stderr=PIPE
    )
    async with asyncio.timeout(120):
        out, err = await setup.communicate()
    assert setup.returncode == 0, err.decode()
    lines = [line for line in out.decode().splitlines() if not line.startswith("[")]
    assert lines == [
        f"PUBSUB: {work}/out -> {dead}/in",
        f"ROUNDROBIN: {src}/out -> {work}/in",
        f"DEADLETTER: {work}/in -> {dead}/in",
    ]
    assert "the bindings stay on the AMQP broker" in err.decode()
    assert "MQTT" not in err.decode() and "Traceback" not in err.decode()
    # msgflo-setup and its participants are gone: the bindings are not.
    assert {
        (f"{work}/out", f"{dead}/in"),
        (f"{src}/out", f"{work}/in"),
        (f"dead-{work}/in", f"{dead}/in"),
    } <= rabbitmq.bindings()
    assert await through_broker(rabbitmq.url, f"{work}/out", f"{dead}/in") == b'"kept"'
    assert await through_broker(rabbitmq.url, f"{src}/out", f"{work}/in") == b'"kept"'


def test_msgflo_procfile(project: Path) -> None:
    (project / "main.fbp").write_text("web(Repeat) OUT -> IN worker(Repeat)\nx(Unknown)\n")
    result = subprocess.run(
        [
            str(BIN / "msgflo-procfile"),
            "main.fbp",
            "--components",
            "components",
            "--include",
            "release: ./migrate",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "web: msgflo-python components/Repeat.py web",
        "worker: msgflo-python components/Repeat.py worker",
        "release: ./migrate",
    ]
    assert "no command for x (Unknown)" in result.stderr
    (project / "main.fbp").write_text("worker(Repeat)\n")
    no_web = subprocess.run(
        [str(BIN / "msgflo-procfile"), "main.fbp", "--components", "components"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert no_web.returncode == 2 and "no 'web' role" in no_web.stderr


@pytest.mark.integration
def test_foreign_participants_are_announced_and_wired(project: Path, mosquitto: Mosquitto) -> None:
    (project / "devices").mkdir()
    (project / "devices" / "Vacuum.yml").write_text(
        "component: c-base/Vacuum\ninports:\n  on: {queue: 'c-base/#ROLE/on'}\noutports: {}\n"
    )
    (project / "main.fbp").write_text(
        "'hello' -> IN rep(Repeat)\nrep OUT -> ON vac(c-base/Vacuum)\n"
    )
    dump = start_dump(mosquitto.url, "c-base/vac/on")
    process = coordinator(project, "--broker", mosquitto.url, "--foreign", "devices")
    try:
        # rep's output reaches the topic the YAML description gives the vacuum's "on" port.
        assert result(dump) == "hello"
    finally:
        stop(process)


@pytest.mark.integration
def test_auto_save_keeps_iips_and_adds_discovered_roles(
    project: Path, mosquitto: Mosquitto
) -> None:
    graph = project / "main.json"
    graph.write_text(
        json.dumps(
            {
                "processes": {"rep": {"component": "Repeat"}, "off": {"component": "Sleepy"}},
                "connections": [{"data": 0, "tgt": {"process": "off", "port": "in"}}],
            }
        )
    )
    (project / "extra.yml").write_text("component: Extra\ninports: {}\n")
    process = subprocess.Popen(
        [str(BIN / "msgflo"), "--graph", "main.json", "--auto-save", "--broker", mosquitto.url],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    saved: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 20
        while "extra" not in saved.get("processes", {}) and time.monotonic() < deadline:
            # A device the graph does not know announces itself (again until it is saved).
            subprocess.run(
                [
                    str(BIN / "msgflo-register"),
                    "--broker",
                    mosquitto.url,
                    "--forever",
                    "false",
                    "--role",
                    f"extra:{project / 'extra.yml'}",
                ],
                capture_output=True,
                check=False,
                timeout=30,
            )
            time.sleep(0.7)
            saved = json.loads(graph.read_text())
    finally:
        stop(process)
    processes = saved["processes"]
    assert processes["extra"]["component"] == "Extra"  # a discovered role became a node
    assert processes["off"]["component"] == "Sleepy"  # an offline node is kept
    assert {"data": 0, "tgt": {"process": "off", "port": "in"}} in saved["connections"]


@pytest.mark.integration
def test_the_dashboard_is_told_the_mqtt_websockets_listener(
    project: Path, mosquitto: Mosquitto
) -> None:
    port = free_port()
    process = coordinator(
        project,
        "--broker",
        mosquitto.url,
        "--port",
        str(port),
        "--mqtt-websockets",
        "ws://web:pass%20word@127.0.0.1:9001/",
    )
    try:
        answer = _get_json(f"http://127.0.0.1:{port}/api/mqtt")
    finally:
        out = stop(process)
    assert f"msgflo: dashboard at http://127.0.0.1:{port}/" in out
    assert answer["url"] == "ws://127.0.0.1:9001/"
    assert (answer["username"], answer["password"]) == ("web", "pass word")
    assert re.fullmatch(r"web-[0-9a-f]{8}", answer["prefix"])


def test_a_bad_mqtt_websockets_url_is_one_line(project: Path) -> None:
    # Refused before any broker is reached: the one given here is never connected to.
    process = coordinator(
        project, "--broker", "mqtt://127.0.0.1:1", "--mqtt-websockets", "http://127.0.0.1:9001/"
    )
    out, _ = process.communicate(timeout=30)
    assert process.returncode != 0
    assert "MQTT over WebSockets URL 'http://127.0.0.1:9001/': expected ws://" in out
    assert "Traceback" not in out


def _get_json(url: str) -> Any:
    """GET ``url`` once the server answers (it starts with the coordinator)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except (ConnectionError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # polling for the server to come up, bounded above
