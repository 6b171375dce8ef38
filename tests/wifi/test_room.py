"""A room of boards on the gateway's network: the rendered dnsmasq.conf and mosquitto.conf,
run by the real dnsmasq and mosquitto in the gateway's network namespace, give every one of
``max_stations`` stations a lease and an MQTT connection, and refuse the one too many.

The stations are namespaces on a bridge (``room.py``): the IP side of WiFi stations. The radio
side, hostapd letting WPA2 stations associate, needs ``mac80211_hwsim``; where the kernel has
it this file runs that too (``test_wpa2_stations_associate_lease_and_connect``), and the image's
boot test, under QEMU with Debian's kernel, covers it in CI.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from gateway.appliance.render import dnsmasq_conf, mosquitto_conf
from gateway.appliance.secrets import Secrets, secrets_dir
from gateway.config.model import AccessPointConfig, BrokerConfig, CoordinatorConfig, GatewayConfig
from gateway.mosquitto import find_mosquitto
from gateway.processes import stop_process, with_parent_death_signal
from tests.appliance.conftest import provision
from tests.wifi.room import DhcpRefusedError, Lease, Room, inside, lease, mqtt_connect, netns_usable

pytestmark = pytest.mark.integration

DNSMASQ = Path("/usr/sbin/dnsmasq")
STATIONS = 32  # a room of boards: the issue asks for at least 30
GATEWAY = IPv4Interface("192.168.4.1/24")
START_TIMEOUT = 15.0


def room_config(data_dir: Path, stations: int) -> GatewayConfig:
    """Exactly ``stations`` addresses, stations and AP connections: one more of each is refused."""
    first = IPv4Address("192.168.4.10")
    return GatewayConfig(
        data_dir=data_dir,
        broker=BrokerConfig(
            max_connections=stations, roles=tuple(board(i) for i in range(stations))
        ),
        coordinator=CoordinatorConfig(graph=data_dir / "graph.fbp"),
        access_point=AccessPointConfig(
            interface="ap0",
            address=GATEWAY,
            dhcp_start=first,
            dhcp_end=first + stations - 1,
            max_stations=stations,
        ),
    )


def board(index: int) -> str:
    return f"board{index}"


class Gateway:
    """dnsmasq and mosquitto with the rendered configs in the room's gateway namespace."""

    def __init__(self, room: Room, config: GatewayConfig, secrets: Secrets, workdir: Path) -> None:
        self.room, self.config, self.secrets, self.workdir = room, config, secrets, workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.dnsmasq_log = workdir / "dnsmasq.log"
        self.mosquitto_log = workdir / "mosquitto.log"

    def start(self) -> None:
        run = self.workdir / "dhcp"
        run.mkdir()
        conf = self.workdir / "dnsmasq.conf"
        conf.write_text(dnsmasq_conf(self.config, run))
        # --user=root: the lease file is in the test's own directory; the appliance's unit
        # runs dnsmasq as its own user in its runtime directory instead.
        self._spawn(
            [str(DNSMASQ), "--keep-in-foreground", "--log-facility=-", "--log-dhcp",
             "--user=root", f"--conf-file={conf}"],
            self.dnsmasq_log,
        )  # fmt: skip
        persist = self.workdir / "persist"
        persist.mkdir()
        broker = self.workdir / "mosquitto.conf"
        secrets = secrets_dir(self.config.data_dir)
        broker.write_text(mosquitto_conf(self.config, secrets, persist, run_as="root"))
        self._spawn([find_mosquitto(), "-c", str(broker)], self.mosquitto_log)
        self._wait_listening()

    def _spawn(self, argv: list[str], log: Path) -> None:
        with log.open("ab") as out:
            argv = with_parent_death_signal(self.room.exec(self.room.gateway, argv))
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append(process)

    def _wait_listening(self) -> None:
        """Until mosquitto accepts and dnsmasq has bound its DHCP port. Mosquitto binds every
        listener before it accepts on any; the probe goes to loopback's, because in Mosquitto
        2.0.11 each connection closed before its CONNECT raises its listener's effective
        max_connections by one (eclipse-mosquitto#1460; docs/wifi.md), and the AP listener's
        limit is what this file tests."""
        deadline = time.monotonic() + START_TIMEOUT
        address = ("127.0.0.1", self.config.broker.port)
        while time.monotonic() < deadline:
            for process, log in zip(
                self.processes, (self.dnsmasq_log, self.mosquitto_log), strict=True
            ):
                assert process.poll() is None, log.read_text()
            dhcp_ready = "DHCP, IP range" in self.dnsmasq_log.read_text()
            with inside(self.room.gateway):
                probe = socket.socket()
            with probe:
                probe.settimeout(0.2)
                if dhcp_ready and probe.connect_ex(address) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError(
            f"not ready: {self.dnsmasq_log.read_text()}{self.mosquitto_log.read_text()}"
        )

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)


@pytest.fixture
def room() -> Iterator[Room]:
    why = netns_usable()
    if why is not None:
        pytest.skip(why)
    for tool in (DNSMASQ, Path(find_mosquitto())):
        if not tool.exists():
            pytest.skip(f"{tool} is absent")
    made = Room(f"gw{os.getpid()}", "ap0", str(GATEWAY))
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
async def gateway(room: Room) -> AsyncIterator[Gateway]:
    # Not pytest's tmp_path: first boot's files and the logs, kept short and private.
    workdir = Path(tempfile.mkdtemp(prefix="gw-room-"))
    config = room_config(workdir / "data", STATIONS)
    running = Gateway(room, config, provision(config, workdir), workdir)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def test_a_room_of_boards_get_leases_and_broker_connections(
    room: Room, gateway: Gateway
) -> None:
    stations = [room.add_station() for _ in range(STATIONS + 1)]
    boards, one_too_many = stations[:-1], stations[-1]
    # All at once, as a room of boards powered up together.
    leases: list[Lease] = await asyncio.gather(*(lease(ns) for ns in boards))
    addresses = {granted.address for granted in leases}
    ap = gateway.config.access_point
    assert len(addresses) == STATIONS
    assert all(ap.dhcp_start <= a <= ap.dhcp_end for a in addresses)
    assert {(g.server, g.netmask) for g in leases} == {(GATEWAY.ip, GATEWAY.netmask)}
    with pytest.raises(DhcpRefusedError):
        await lease(one_too_many, tries=2, wait=1.5)
    assert "no address available" in gateway.dnsmasq_log.read_text()

    for ns, granted in zip(boards, leases, strict=True):
        room.set_address(ns, f"{granted.address}/{GATEWAY.network.prefixlen}")
    passwords = gateway.secrets.mqtt_passwords
    host, port = str(GATEWAY.ip), gateway.config.broker.port
    opened: list[socket.socket] = []
    try:
        codes = []
        for index, ns in enumerate(boards):
            sock, code = await mqtt_connect(
                ns, host, port, user=board(index), password=passwords[board(index)],
                client_id=f"board-{index}",
            )  # fmt: skip
            opened.append(sock)
            codes.append(code)
        assert codes == [0] * STATIONS
        # One connection more on the AP's listener: mosquitto closes it without a CONNACK.
        sock, code = await mqtt_connect(
            boards[0], host, port, user=board(0), password=passwords[board(0)],
            client_id="board-0-again",
        )  # fmt: skip
        opened.append(sock)
        assert code is None, gateway.mosquitto_log.read_text()
        # The gateway's own daemons, on loopback, are not limited.
        sock, code = await mqtt_connect(
            room.gateway, "127.0.0.1", port, user="coordinator",
            password=passwords["coordinator"], client_id="coordinator-check",
        )  # fmt: skip
        opened.append(sock)
        assert code == 0
    finally:
        for sock in opened:
            sock.close()
