"""The persistence guard, on databases the real mosquitto wrote and on power-cut leftovers."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from gateway.appliance.broker_guard import MAGIC, database_problem, guard_persistence
from gateway.appliance.secrets import Secrets
from gateway.config.model import GatewayConfig
from tests.appliance.conftest import Broker, Client

WHEN = datetime.datetime(2026, 5, 1, 12, 30, 5, tzinfo=datetime.UTC)


def fixed_clock() -> datetime.datetime:
    return WHEN


def test_no_database_yet_and_an_empty_one_are_left_alone(tmp_path: Path) -> None:
    assert guard_persistence(tmp_path / "mosquitto.db") is None
    (tmp_path / "mosquitto.db").write_bytes(b"")  # mosquitto starts empty on it
    assert guard_persistence(tmp_path / "mosquitto.db") is None
    assert [p.name for p in tmp_path.iterdir()] == ["mosquitto.db"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (bytes(4096), "all zero bytes"),
        (MAGIC[:10], "truncated header"),
        (b"garbage" * 10, "no mosquitto db header"),
        (MAGIC + bytes(4) + (99).to_bytes(4, "big"), "unsupported format version 99"),
        (MAGIC + bytes(4) + (6).to_bytes(4, "big") + bytes(3), "truncated chunk header"),
        (MAGIC + bytes(7) + b"\x06" + b"\0\0\0\x01\0\0\0\x10" + bytes(4), "runs past the end"),
        (MAGIC + bytes(7) + b"\x06" + b"\0\0\0\x63\0\0\0\x00", "unknown chunk type 99"),
    ],
)
def test_bad_databases_are_moved_aside(tmp_path: Path, data: bytes, problem: str) -> None:
    db = tmp_path / "mosquitto.db"
    db.write_bytes(data)
    message = guard_persistence(db, now=fixed_clock)
    assert message is not None and problem in message and "\n" not in message
    assert not db.exists()
    aside = tmp_path / "mosquitto.db.corrupt-20260501T123005Z"
    assert aside.read_bytes() == data
    db.write_bytes(data)
    guard_persistence(db, now=fixed_clock)  # never overwrites an earlier one
    assert (tmp_path / "mosquitto.db.corrupt-20260501T123005Z-2").read_bytes() == data


def admin(broker: Broker, secrets: Secrets, clients: list[Client]) -> Client:
    port = broker.config.broker.port
    client = Client("127.0.0.1", port, "admin", secrets.mqtt_passwords["admin"])
    clients.append(client)
    assert client.connect()
    return client


@pytest.mark.integration
def test_a_database_written_by_mosquitto_is_kept_and_restored(
    appliance: tuple[GatewayConfig, Secrets], tmp_path: Path, clients: list[Client]
) -> None:
    config, secrets = appliance
    broker = Broker(config, tmp_path)
    broker.start()
    try:
        admin(broker, secrets, clients).publish("keep/x", b"retained", retain=True)
        broker.stop()  # SIGTERM: mosquitto saves its database
        db = broker.persistence / "mosquitto.db"
        assert database_problem(db.read_bytes()) is None
        assert guard_persistence(db) is None
        broker.start()
        reader = admin(broker, secrets, clients)
        reader.subscribe("keep/x")
        assert reader.wait_for("keep/x") == b"retained"
    finally:
        broker.stop()


@pytest.mark.integration
def test_after_the_guard_the_broker_starts_on_a_zeroed_database(
    appliance: tuple[GatewayConfig, Secrets], tmp_path: Path, clients: list[Client]
) -> None:
    config, secrets = appliance
    broker = Broker(config, tmp_path)
    broker.persistence.mkdir()
    db = broker.persistence / "mosquitto.db"
    db.write_bytes(bytes(8192))  # what a power cut left on the Pis of mosquitto#2639
    # Unguarded, mosquitto 2.0.11 refuses to start: the failure the guard exists for.
    broker.start(wait=False)
    assert broker.process is not None
    assert broker.process.wait(10) != 0
    assert "Unrecognised file format" in broker.log.read_text()
    broker.stop()
    message = guard_persistence(db)
    assert message is not None and "all zero bytes" in message
    broker.start()
    try:
        client = admin(broker, secrets, clients)
        client.subscribe("t")
        client.publish("t", b"up")
        assert client.wait_for("t") == b"up"
    finally:
        broker.stop()
    assert len(list(broker.persistence.glob("mosquitto.db.corrupt-*"))) == 1
