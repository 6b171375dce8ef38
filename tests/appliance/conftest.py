"""The appliance's broker as it runs on the device: first boot's files, the rendered config,
the real /usr/sbin/mosquitto on loopback (the access point's address is 127.0.0.2)."""

from __future__ import annotations

import datetime
import getpass
import io
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Literal

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.appliance.firstboot import FirstBoot, run
from gateway.appliance.render import mosquitto_conf
from gateway.appliance.secrets import Secrets, load_secrets, secrets_dir
from gateway.config import load_config
from gateway.config.model import (
    AccessPointConfig,
    BrokerConfig,
    CoordinatorConfig,
    GatewayConfig,
)
from gateway.mosquitto import find_mosquitto, free_port
from gateway.processes import stop_process

AP_ADDRESS = "127.0.0.2"
NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)


def appliance_config(tmp_path: Path, *, roles: tuple[str, ...] = ("sensor",)) -> GatewayConfig:
    return GatewayConfig(
        data_dir=tmp_path / "data",
        broker=BrokerConfig(
            port=free_port(), tls_port=free_port(), websockets_port=free_port(), roles=roles
        ),
        coordinator=CoordinatorConfig(graph=tmp_path / "data" / "graph.fbp"),
        access_point=AccessPointConfig(address=IPv4Interface(f"{AP_ADDRESS}/8")),
    )


def provision(config: GatewayConfig, tmp_path: Path) -> Secrets:
    """Run first boot for ``config`` (no config file: the loader returns ``config``)."""
    boot = tmp_path / "boot"
    boot.mkdir(exist_ok=True)
    job = FirstBoot(tmp_path / "gateway.yaml", boot, None, lambda _: config, lambda: NOW)
    assert run(job, io.StringIO(), io.StringIO()) == 0
    return load_secrets(config.data_dir)


@dataclass
class Broker:
    """The real mosquitto with the appliance's rendered config."""

    config: GatewayConfig
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / "mosquitto.stderr"

    @property
    def persistence(self) -> Path:
        return self.workdir / "persist"

    def start(self, *, wait: bool = True, text: str | None = None) -> None:
        """Start with the rendered config (or ``text``, which must listen on the same port)."""
        self.persistence.mkdir(exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        rendered = text is None
        if text is None:
            text = mosquitto_conf(
                self.config,
                secrets_dir(self.config.data_dir),
                self.persistence,
                run_as=getpass.getuser(),
            )
        conf.write_text(text)
        with self.log.open("ab") as stderr:
            self.process = subprocess.Popen(
                [find_mosquitto(), "-c", str(conf)], stdin=subprocess.DEVNULL, stderr=stderr
            )
        if wait:
            self.wait_listening(every=rendered)

    def wait_listening(self, timeout: float = 10.0, *, every: bool = True) -> None:
        """Until the plain listener accepts, and with ``every`` the others the config has:
        mosquitto opens them one after the other, and the WebSockets one takes a moment."""
        deadline = time.monotonic() + timeout
        assert self.process is not None
        broker, ap = self.config.broker, self.config.access_point
        host = str(ap.address.ip) if ap.enabled else "127.0.0.1"
        others = [p for p in (broker.tls_port, broker.websockets_port) if p is not None and every]
        waiting = [("127.0.0.1", broker.port), *((host, p) for p in others)]
        while waiting and time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                socket.create_connection(waiting[0], 0.2).close()
                waiting.pop(0)
            except OSError:
                time.sleep(0.02)
        if waiting:
            raise AssertionError(f"mosquitto did not listen: {self.log.read_text()}")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


@pytest.fixture
def appliance(tmp_path: Path) -> tuple[GatewayConfig, Secrets]:
    config = appliance_config(tmp_path)
    return config, provision(config, tmp_path)


@pytest.fixture
def broker(appliance: tuple[GatewayConfig, Secrets], tmp_path: Path) -> Iterator[Broker]:
    running = Broker(appliance[0], tmp_path)
    running.start()
    yield running
    running.stop()


def write_config(tmp_path: Path) -> Path:
    """A gateway.yaml with the access point on 127.0.0.2 (loopback: no radio needed)."""
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "broker:\n"
        f"  port: {free_port()}\n"
        f"  tls_port: {free_port()}\n"
        "  websockets_port: null\n"
        "  roles: [sensor]\n"
        "access_point:\n"
        f"  address: {AP_ADDRESS}/8\n"
        "  dhcp_start: 127.0.0.10\n"
        "  dhcp_end: 127.0.0.200\n"
    )
    return path


@pytest.fixture
def kit(tmp_path: Path) -> tuple[Path, GatewayConfig]:
    """A provisioned gateway from ``write_config``: its config file and the config it loads to."""
    path = write_config(tmp_path)
    config = load_config(path)
    provision(config, tmp_path)
    return path, config


@pytest.fixture
def running(kit: tuple[Path, GatewayConfig], tmp_path: Path) -> Iterator[Broker]:
    """The kit's broker, running."""
    broker = Broker(kit[1], tmp_path)
    broker.start()
    yield broker
    broker.stop()


class Client:
    """A synchronous paho client for tests: connect, subscribe, collect, publish."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        ca: Path | None = None,
        *,
        transport: Literal["tcp", "websockets"] = "tcp",
    ) -> None:
        self.host, self.port = host, port
        self.mqtt = paho.Client(
            CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311, transport=transport
        )
        if ca is not None:
            self.mqtt.tls_set(ca_certs=str(ca))
        if user is not None:
            self.mqtt.username_pw_set(user, password)
        self.connack = threading.Event()
        self.refused: bool | None = None
        self.messages: list[tuple[str, bytes]] = []
        self.arrived = threading.Condition()
        self.subscribed = threading.Event()
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_message = self._on_message
        self.mqtt.on_subscribe = lambda *args: self.subscribed.set()

    def _on_connect(self, _c: object, _u: object, _f: object, code: object, _p: object) -> None:
        self.refused = bool(getattr(code, "is_failure", True))
        self.connack.set()

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        with self.arrived:
            self.messages.append((message.topic, bytes(message.payload)))
            self.arrived.notify_all()

    def connect(self) -> bool:
        """True if the broker accepted us."""
        self.mqtt.connect(self.host, self.port)
        self.mqtt.loop_start()
        assert self.connack.wait(5), "no CONNACK"
        return not self.refused

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.mqtt.subscribe(topic, qos=1)
        assert self.subscribed.wait(5)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.mqtt.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def wait_for(self, topic: str, timeout: float = 5.0) -> bytes:
        with self.arrived:
            found = self.arrived.wait_for(lambda: self._find(topic) is not None, timeout)
        assert found, f"nothing on {topic}; got {self.messages}"
        payload = self._find(topic)
        assert payload is not None
        return payload

    def _find(self, topic: str) -> bytes | None:
        return next((p for t, p in self.messages if t == topic), None)

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()
