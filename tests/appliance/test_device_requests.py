"""The dashboard's device requests carried out by root (``gateway.appliance.device_requests``,
``gateway-run devices``): real files of a provisioned gateway, a real mosquitto reloaded, and
the secrets.h left for the dashboard working as a board's login."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.appliance.device_requests import (
    DOWNLOADS,
    REQUESTS,
    apply_device_requests,
    outcome,
    pending,
    request_device,
)
from gateway.appliance.devices import device_secrets, list_devices, reload_pid, render_secrets_h
from gateway.config import GatewayConfig, load_config
from gateway.errors import ApplianceError, GatewayError
from tests.appliance.conftest import AP_ADDRESS, Broker, Client, provision
from tests.appliance.test_devices import defined, write_config
from tests.support.cli import run_script
from tests.support.wait import until

Reloads = list[str]


@pytest.fixture
def kit(tmp_path: Path) -> tuple[Path, GatewayConfig]:
    """A provisioned gateway (as in test_devices): its config file and config."""
    path = write_config(tmp_path)
    config = load_config(path)
    provision(config, tmp_path)
    return path, config


@pytest.fixture
def running(kit: tuple[Path, GatewayConfig], tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(kit[1], tmp_path)
    broker.start()
    yield broker
    broker.stop()


def test_a_request_is_checked_before_it_is_written(kit: tuple[Path, GatewayConfig]) -> None:
    data_dir = kit[1].data_dir
    with pytest.raises(GatewayError, match="wildcard"):
        request_device(data_dir, "add", "lamp/#")
    with pytest.raises(GatewayError, match="reserved for the gateway"):
        request_device(data_dir, "add", "coordinator")
    with pytest.raises(GatewayError, match="unknown device action 'rename'"):
        request_device(data_dir, "rename", "lamp")
    assert not (data_dir / REQUESTS).exists()
    request_device(data_dir, "add", "lamp")
    request_device(data_dir, "add", "button")
    request_device(data_dir, "remove", "lamp")  # a newer request for the same role replaces
    assert pending(data_dir) == {"button": "add", "lamp": "remove"}
    assert stat.S_IMODE((data_dir / REQUESTS).stat().st_mode) == 0o644  # root reads it


def test_add_leaves_the_secrets_h_and_remove_takes_it_away(
    kit: tuple[Path, GatewayConfig],
) -> None:
    config = kit[1]
    data_dir = config.data_dir
    reloads: Reloads = []
    request_device(data_dir, "add", "lamp")
    assert apply_device_requests(config, lambda: reloads.append("reload")) == 1
    assert reloads == ["reload"]
    assert not (data_dir / REQUESTS).exists() and pending(data_dir) == {}
    assert "lamp" in list_devices(data_dir)
    done = outcome(data_dir, "lamp")
    assert done.problem is None
    assert done.secrets_h == render_secrets_h(device_secrets(config, "lamp"))
    # Not root: no service groups, so everything is this user's alone.
    downloads = data_dir / DOWNLOADS
    assert stat.S_IMODE(downloads.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in downloads.iterdir()} == {0o600}

    request_device(data_dir, "remove", "lamp")
    assert apply_device_requests(config, lambda: reloads.append("reload")) == 1
    assert reloads == ["reload", "reload"]
    assert outcome(data_dir, "lamp") == outcome(data_dir, "never-added")
    assert outcome(data_dir, "lamp").secrets_h is None
    assert "lamp" not in list_devices(data_dir)
    assert list(downloads.iterdir()) == []


def test_failures_are_left_for_the_dashboard_and_logged(
    kit: tuple[Path, GatewayConfig], caplog: pytest.LogCaptureFixture
) -> None:
    config = kit[1]
    data_dir = config.data_dir
    request_device(data_dir, "add", "lamp")
    apply_device_requests(config, lambda: None)
    first = outcome(data_dir, "lamp").secrets_h
    request_device(data_dir, "add", "lamp")  # exists already: offered again, and why
    request_device(data_dir, "remove", "ghost")
    caplog.set_level(logging.INFO, "gateway.appliance.device_requests")
    assert apply_device_requests(config, lambda: None) == 0
    again = outcome(data_dir, "lamp")
    assert again.secrets_h == first
    assert again.problem is not None and "exists already" in again.problem
    ghost = outcome(data_dir, "ghost")
    assert ghost.secrets_h is None
    assert ghost.problem == "no device 'ghost' (gateway-config device list)\n"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "'lamp': add failed" in errors[0] and "'ghost'" in errors[1]
    # A later request that works clears the problem.
    request_device(data_dir, "show", "lamp")
    assert apply_device_requests(config, lambda: None) == 1
    assert outcome(data_dir, "lamp").problem is None


def test_requests_written_by_someone_else_are_checked_again(
    kit: tuple[Path, GatewayConfig], caplog: pytest.LogCaptureFixture
) -> None:
    """The coordinator's user writes the file: anything in it is one refused line."""
    config = kit[1]
    path = config.data_dir / REQUESTS
    path.parent.mkdir(parents=True, exist_ok=True)
    bad = [42, {"action": "add"}, {"action": "add", "role": "admin"},
           {"action": "chmod", "role": "lamp"}, {"action": "add", "role": "lamp/#"}]  # fmt: skip
    path.write_text(json.dumps(bad))
    reloads: Reloads = []
    assert apply_device_requests(config, lambda: reloads.append("reload")) == 0
    refused = [r for r in caplog.records if r.getMessage().startswith("device request refused")]
    assert len(refused) == len(bad)
    assert reloads == [] and not path.exists()
    path.write_text("{not json")
    assert apply_device_requests(config, lambda: None) == 0
    assert not path.exists()
    assert list_devices(config.data_dir) == ("sensor",)


def test_a_downloads_link_put_there_by_the_coordinator_is_not_followed(
    kit: tuple[Path, GatewayConfig],
) -> None:
    config = kit[1]
    data_dir = config.data_dir
    elsewhere = data_dir / "elsewhere"
    elsewhere.mkdir()
    (data_dir / DOWNLOADS).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / DOWNLOADS).symlink_to(elsewhere)
    request_device(data_dir, "add", "lamp")
    with pytest.raises(ApplianceError, match="not a directory of user"):
        apply_device_requests(config, lambda: None)
    assert list(elsewhere.iterdir()) == []
    assert pending(data_dir) == {"lamp": "add"}  # kept: the service fails and says why


def test_gateway_run_devices_carries_out_the_requests(kit: tuple[Path, GatewayConfig]) -> None:
    path, config = kit
    request_device(config.data_dir, "add", "lamp")
    done = run_script("gateway-run", "--config", path, "devices", "--systemctl", "true")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "gateway-run: 1 device request(s) carried out\n"
    assert outcome(config.data_dir, "lamp").secrets_h is not None
    nothing = run_script("gateway-run", "--config", path, "devices", "--systemctl", "true")
    assert (nothing.returncode, nothing.stdout) == (0, "")
    request_device(config.data_dir, "remove", "lamp")
    failed = run_script("gateway-run", "--config", path, "devices", "--systemctl", "false")
    assert failed.returncode == 0, failed.stderr  # the failure is the dashboard's to show
    problem = outcome(config.data_dir, "lamp").problem
    assert problem is not None and "msgflo-broker.service was not told to reload" in problem


@pytest.mark.integration
async def test_the_left_secrets_h_logs_a_board_in_and_remove_cuts_it_off(
    kit: tuple[Path, GatewayConfig], running: Broker, clients: list[Client]
) -> None:
    config = kit[1]
    assert running.process is not None
    reload = reload_pid(running.process.pid)
    request_device(config.data_dir, "add", "lamp")
    assert apply_device_requests(config, reload) == 1
    header = outcome(config.data_dir, "lamp").secrets_h
    assert header is not None
    host, port = defined(header, "MSGFLO_MQTT_HOST"), config.broker.port
    assert host == AP_ADDRESS
    user, password = defined(header, "MSGFLO_MQTT_USER"), defined(header, "MSGFLO_MQTT_PASSWORD")
    found: list[Client] = []

    def connects() -> bool:  # the broker reloads asynchronously after the signal
        client = Client(host, port, user, password)
        clients.append(client)
        if client.connect():
            found.append(client)
        return bool(found)

    await until(connects, 10, "the broker to accept the board")
    board = found[0]
    request_device(config.data_dir, "remove", "lamp")
    assert apply_device_requests(config, reload) == 1
    await until(lambda: not board.mqtt.is_connected(), 10, "the removed board to be cut off")
    refused = Client(host, port, user, password)
    clients.append(refused)
    assert not refused.connect()
    assert os.listdir(config.data_dir / DOWNLOADS) == []
