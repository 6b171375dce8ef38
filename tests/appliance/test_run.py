"""``gateway-run`` on a laptop: the same config file and commands the appliance's units use.

First boot, then the broker and the coordinator started as the units start them (their own
processes, real mosquitto), with a laptop config on free loopback ports: the broker refuses
anonymous clients, the coordinator logs in with its generated password and runs the graph,
and the runtime protocol answers only with the generated secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.appliance.secrets import load_secrets
from gateway.broker import BrokerUrl, parse_broker_url
from gateway.mosquitto import free_port
from gateway.runtime_protocol.client import RuntimeClient
from tests.appliance.conftest import Client
from tests.support.cli import BIN

pytestmark = pytest.mark.integration


def write_config(tmp: Path) -> tuple[Path, dict[str, int]]:
    ports = {"mqtt": free_port(), "tls": free_port(), "runtime": free_port()}
    (tmp / "data").mkdir()
    (tmp / "data" / "graph.fbp").write_text("repeat(core/Repeat) OUT -> IN drop(core/Drop)\n")
    config = tmp / "gateway.yaml"
    config.write_text(
        "data_dir: ./data\n"
        f"broker: {{port: {ports['mqtt']}, tls_port: {ports['tls']}}}\n"
        f"runtime: {{host: 127.0.0.1, port: {ports['runtime']}}}\n"
        "access_point: {enabled: false}\n"
        f"bridges: {{serial: {{globs: ['{tmp}/no-such-tty*']}}}}\n",
        encoding="utf-8",
    )
    return config, ports


def gateway_run(config: Path, tmp: Path, *command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(BIN / "gateway-run"),
            "--config",
            str(config),
            "--run-dir",
            str(tmp / "run"),
            *command,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[dict[str, int]]:
    config, ports = write_config(tmp_path)
    first = subprocess.run(
        [str(BIN / "gateway-firstboot"), "--config", str(config), "--boot-dir", str(tmp_path),
         "--broker-user", ""],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    started = [
        gateway_run(config, tmp_path, "broker"),
        gateway_run(config, tmp_path, "coordinator"),
    ]
    yield ports
    for process in started:
        process.terminate()
        process.wait(10)


async def runtime_reply(port: int, secret: str | None) -> dict[str, object]:
    async with asyncio.timeout(10):
        async with RuntimeClient(f"ws://127.0.0.1:{port}", secret=secret) as runtime:
            reply = await runtime.request(
                "runtime", "getruntime", {"secret": secret or ""}, expect=[("runtime", "runtime")]
            )
    payload = reply["payload"]
    assert isinstance(payload, dict)
    return payload


def test_broker_and_coordinator_from_the_config_file(
    laptop: dict[str, int], tmp_path: Path
) -> None:
    ports = laptop
    secrets = load_secrets(tmp_path / "data")
    admin = connected(ports["mqtt"], "admin", secrets.mqtt_passwords["admin"])
    anonymous = Client("127.0.0.1", ports["mqtt"], None, None)
    assert not anonymous.connect(), "anonymous client accepted"
    anonymous.close()
    admin.subscribe("fbp")
    announced = json.loads(admin.wait_for("fbp", timeout=30))
    assert announced["payload"]["role"] in ("repeat", "drop")
    admin.close()
    # Each started participant got a broker user of its own role, and a persistent session.
    brokers = participant_brokers(ports["mqtt"])
    assert {url.username for url in brokers.values()} == {"repeat", "drop"}, brokers
    assert all(url.options.get("sessionExpiry") == "300" for url in brokers.values())
    with_secret = asyncio.run(runtime_reply(ports["runtime"], secrets.runtime_secret))
    assert "protocol:graph" in with_secret["capabilities"]  # type: ignore[operator]
    without = asyncio.run(runtime_reply(ports["runtime"], None))
    assert without["capabilities"] == []


def participant_brokers(port: int) -> dict[int, BrokerUrl]:
    """MSGFLO_BROKER of every participant started with a broker on ``port`` (from /proc)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        url = next((e[14:] for e in environ if e.startswith(b"MSGFLO_BROKER=")), None)
        if url is not None and b"keeper.py" not in cmdline and b"msgflo-python" in cmdline:
            found[int(pid)] = parse_broker_url(url.decode())
    return {pid: url for pid, url in found.items() if url.port == port}


def connected(port: int, user: str, password: str) -> Client:
    """A client once the broker listens (it is started in the background)."""
    for _ in range(100):
        client = Client("127.0.0.1", port, user, password)
        try:
            if client.connect():
                return client
        except (OSError, AssertionError):
            pass
        client.close()
        time.sleep(0.1)
    raise AssertionError(f"the broker on port {port} never accepted {user}")
