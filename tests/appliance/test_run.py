"""``gateway-run`` on a laptop: the same config file and commands the appliance's units use.

First boot, then the broker and the coordinator started as the units start them (their own
processes, real mosquitto), with a laptop config on free loopback ports: the broker refuses
anonymous clients, the coordinator logs in with its generated password and runs the graph,
and the runtime protocol answers only with the generated secret. The coordinator also takes
the dashboard's socket from systemd's socket activation (``systemd-socket-activate`` binds it and
hands it over, as ``msgflo-dashboard.socket`` does port 80 on the appliance).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.appliance.activation import VARIABLES
from gateway.appliance.secrets import load_secrets
from gateway.broker import BrokerUrl, parse_broker_url
from gateway.mosquitto import free_port
from gateway.runtime_protocol.client import RuntimeClient
from tests.appliance.conftest import Client
from tests.support.cli import BIN
from tests.support.wait import until

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


def first_boot(config: Path, tmp: Path) -> None:
    first = subprocess.run(
        [str(BIN / "gateway-firstboot"), "--config", str(config), "--boot-dir", str(tmp),
         "--broker-user", ""],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[dict[str, int]]:
    config, ports = write_config(tmp_path)
    first_boot(config, tmp_path)
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


SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.fixture
def activated(tmp_path: Path) -> Iterator[tuple[dict[str, int], subprocess.Popen[str]]]:
    """The broker, and the coordinator started by ``systemd-socket-activate`` on a socket of
    its own named as the unit names it: like systemd, it binds the socket, waits for a first
    connection and only then starts the coordinator with the socket at descriptor 3."""
    if SOCKET_ACTIVATE is None:
        pytest.skip("systemd-socket-activate not installed (Debian's systemd package)")
    config, ports = write_config(tmp_path)
    ports["dashboard"] = free_port()
    first_boot(config, tmp_path)
    broker = gateway_run(config, tmp_path, "broker")
    log = tmp_path / "activated.log"
    with log.open("w") as output:
        coordinator = subprocess.Popen(
            [SOCKET_ACTIVATE, "--listen", f"127.0.0.1:{ports['dashboard']}", "--fdname=dashboard",
             f"--setenv=PATH={BIN}:{os.environ['PATH']}",
             str(BIN / "gateway-run"), "--config", str(config), "--run-dir",
             str(tmp_path / "run"), "coordinator"],
            stdout=output, stderr=output, text=True,
        )  # fmt: skip
    try:
        # Said once the socket is bound: connections wait in its backlog from then on.
        deadline = time.monotonic() + 10
        while "Listening on" not in log.read_text() and time.monotonic() < deadline:
            assert coordinator.poll() is None, log.read_text()
            time.sleep(0.02)
        assert "Listening on" in log.read_text(), log.read_text()
        yield ports, coordinator
    finally:
        for process in (coordinator, broker):
            process.terminate()
            process.wait(10)


async def fetch(url: str, secret: str | None = None) -> tuple[int, str]:
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
        session.get(url, headers=headers) as response,
    ):
        return response.status, await response.text()


def socket_inode(pid: int, fd: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def inherited(pids: Iterable[int], listener: str) -> dict[int, list[str]]:
    """What of socket activation each of ``pids`` has: the socket, the variables."""
    found = {}
    for pid in pids:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        names = {e.partition(b"=")[0].decode() for e in environ}
        held = ["the socket"] if listener in open_sockets(pid) else []
        held += sorted(names.intersection(VARIABLES))
        if held:
            found[pid] = held
    return found


def open_sockets(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue  # closed meanwhile
    return {link for link in found if link.startswith("socket:")}


async def test_the_coordinator_serves_the_socket_systemd_hands_it(
    activated: tuple[dict[str, int], subprocess.Popen[str]], tmp_path: Path
) -> None:
    ports, coordinator = activated
    secret = load_secrets(tmp_path / "data").runtime_secret
    dashboard = f"http://127.0.0.1:{ports['dashboard']}"
    # This first connection is what starts the coordinator: it is answered once it serves.
    status, page = await fetch(f"{dashboard}/")
    assert status == 200 and "<html" in page.lower()
    assert (await fetch(f"{dashboard}/api/status"))[0] == 401
    assert (await fetch(f"{dashboard}/api/status", secret))[0] == 200
    async with asyncio.timeout(10):
        async with RuntimeClient(f"ws://127.0.0.1:{ports['dashboard']}", secret=secret) as rt:
            reply = await rt.request(
                "runtime", "getruntime", {"secret": secret}, expect=[("runtime", "runtime")]
            )
    assert "protocol:graph" in reply["payload"]["capabilities"]
    assert (await runtime_reply(ports["runtime"], secret))["capabilities"]  # its own port too
    # The participants it started inherited neither the socket nor the variables.
    listener = socket_inode(coordinator.pid, 3)
    assert listener.startswith("socket:"), listener
    await until(
        lambda: len(participant_brokers(ports["mqtt"])) == 2, 30, "the graph's participants"
    )
    assert inherited(participant_brokers(ports["mqtt"]), listener) == {}


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
