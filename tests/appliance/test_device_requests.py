"""The device requests carried out by root (``gateway.appliance.device_requests``,
``gateway-run devices``): real files of a provisioned gateway, a real mosquitto reloaded, and
the secrets.h left for the dashboard working as a board's login; the serial bridge's requests
for the boards it provisions over USB, answered with credentials, through its issuer both ways
(waiting for root, and carried out in-process)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from gateway.appliance import run
from gateway.appliance.credentials import Owners
from gateway.appliance.device_requests import (
    DOWNLOADS,
    PROVISION_REQUESTS,
    PROVISION_RESULTS,
    REQUESTS,
    apply_device_requests,
    apply_provision_requests,
    credentials_of,
    outcome,
    pending,
    provision_issuer,
    provision_result,
    request_device,
    request_provision,
)
from gateway.appliance.devices import (
    DeviceError,
    device_secrets,
    list_devices,
    reload_pid,
    render_secrets_h,
)
from gateway.bridges.serial.bridge import SerialDevices
from gateway.config import GatewayConfig
from gateway.errors import ApplianceError, GatewayError
from tests.appliance.conftest import AP_ADDRESS, Broker, Client
from tests.appliance.test_devices import defined
from tests.support.cli import run_script
from tests.support.wait import until

Reloads = list[str]


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


# --- the serial bridge's requests (provisioning over USB) -----------------------------------


def answer(config: GatewayConfig, role: str) -> dict[str, object]:
    result = json.loads(provision_result(config.data_dir, role).read_text(encoding="utf-8"))
    assert isinstance(result, dict)
    return result


def test_the_bridge_gets_credentials_and_a_wiped_board_gets_the_same_again(
    kit: tuple[Path, GatewayConfig],
) -> None:
    config = kit[1]
    data_dir = config.data_dir
    reloads: Reloads = []
    with pytest.raises(GatewayError, match="wildcard"):
        request_provision(data_dir, "lamp/#", "r0")
    assert not (data_dir / PROVISION_REQUESTS).exists()
    request_provision(data_dir, "ESP0042", "r1")
    assert stat.S_IMODE((data_dir / PROVISION_REQUESTS).stat().st_mode) == 0o644  # root reads
    assert apply_provision_requests(config, lambda: reloads.append("reload")) == 1
    assert reloads == ["reload"] and not (data_dir / PROVISION_REQUESTS).exists()
    assert "ESP0042" in list_devices(data_dir)
    first = answer(config, "ESP0042")
    made = credentials_of(device_secrets(config, "ESP0042"))
    assert first == {"request": "r1", **asdict(made), "existing": False, "warning": None}
    assert made.broker_host == AP_ADDRESS and made.broker_port == config.broker.port
    # Not root: no service groups, so the answer is this user's alone.
    assert stat.S_IMODE((data_dir / PROVISION_RESULTS).stat().st_mode) == 0o700
    assert stat.S_IMODE(provision_result(data_dir, "ESP0042").stat().st_mode) == 0o600

    # The board wiped and plugged in again: the same credentials, no new user, no reload.
    request_provision(data_dir, "ESP0042", "r2")
    assert apply_provision_requests(config, lambda: reloads.append("reload")) == 1
    assert answer(config, "ESP0042") == {**first, "request": "r2", "existing": True}
    assert reloads == ["reload"]
    # The dashboard's files are untouched.
    assert not (data_dir / REQUESTS).exists() and not (data_dir / DOWNLOADS).exists()


def test_with_the_bridges_group_the_answer_is_ours_and_readable_by_that_group(
    kit: tuple[Path, GatewayConfig],
) -> None:
    """As on the appliance, where root answers: the directory and file get the group of the
    bridges' files (here this process's own group, the one a test may give)."""
    config = kit[1]
    owners = Owners(bridge=(os.getuid(), os.getgid()))
    request_provision(config.data_dir, "sensor", "r1")  # a device of broker.roles
    assert apply_provision_requests(config, lambda: None, owners) == 1
    directory = (config.data_dir / PROVISION_RESULTS).stat()
    assert (stat.S_IMODE(directory.st_mode), directory.st_gid) == (0o770, os.getgid())
    result = provision_result(config.data_dir, "sensor").stat()
    assert (stat.S_IMODE(result.st_mode), result.st_gid) == (0o640, os.getgid())
    assert answer(config, "sensor")["existing"] is True


def test_bridge_requests_are_checked_again_and_failures_answered(
    kit: tuple[Path, GatewayConfig], caplog: pytest.LogCaptureFixture
) -> None:
    config = kit[1]
    path = config.data_dir / PROVISION_REQUESTS
    path.parent.mkdir(parents=True)
    bad = [42, {"action": "add", "role": "lamp", "request": "a"},
           {"action": "provision", "role": "admin", "request": "b"},
           {"action": "provision", "role": "lamp"},
           {"action": "provision", "role": "lamp/#", "request": "c"},
           {"action": "provision", "role": "lamp", "request": "d" * 65}]  # fmt: skip
    path.write_text(json.dumps(bad))
    assert apply_provision_requests(config, lambda: None) == 0
    refused = [r for r in caplog.records if r.getMessage().startswith("provision request refused")]
    assert len(refused) == len(bad) and not path.exists()
    assert list(os.scandir(config.data_dir / PROVISION_RESULTS)) == []
    assert list_devices(config.data_dir) == ("sensor",)

    # Root cannot make credentials (no access point, so no board could reach the broker):
    # the answer says why, and the issuer raises it.
    off = replace(config, access_point=replace(config.access_point, enabled=False))
    issue = provision_issuer(off, by_request=False, reload=lambda: None)
    with pytest.raises(DeviceError, match=r"access_point\.enabled is false"):
        issue("lamp")
    assert not provision_result(config.data_dir, "lamp").exists()  # removed once read
    assert "lamp" not in list_devices(config.data_dir)


def test_the_in_process_issuer_carries_its_request_out_itself(
    kit: tuple[Path, GatewayConfig],
) -> None:
    """Off the appliance (gateway-run bridge serial without --provision-by-request)."""
    config = kit[1]
    reloads: Reloads = []
    issue = provision_issuer(config, by_request=False, reload=lambda: reloads.append("reload"))
    got = issue("ESP0001")
    assert got == credentials_of(device_secrets(config, "ESP0001")) and reloads == ["reload"]
    assert not (config.data_dir / PROVISION_REQUESTS).exists()
    assert list(os.scandir(config.data_dir / PROVISION_RESULTS)) == []
    assert issue("ESP0001") == got and reloads == ["reload"]  # wiped and plugged in again


def test_a_broker_not_reloaded_still_gives_the_board_its_credentials(
    kit: tuple[Path, GatewayConfig], caplog: pytest.LogCaptureFixture
) -> None:
    """The user is written; the broker reads it when it next starts: the board keeps what it
    is given, and the bridge says why it cannot log in yet."""
    config = kit[1]

    def refuse() -> None:
        raise DeviceError("the broker's files are written but it was not told to reload")

    issue = provision_issuer(config, by_request=False, reload=refuse)
    assert issue("ESP0005") == credentials_of(device_secrets(config, "ESP0005"))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        "device 'ESP0005': the broker's files are written but it was not told to reload"
    ]


async def test_the_issuer_by_request_waits_for_root_and_takes_only_its_own_answer(
    kit: tuple[Path, GatewayConfig],
) -> None:
    """On the appliance: the bridge's issuer (a thread of the bridge) writes the request and
    waits; root (here this test, as msgflo-devices.service would) carries it out. An answer
    to another request (an earlier one, given up on) is not taken for it."""
    config = kit[1]
    data_dir = config.data_dir
    issue = provision_issuer(config, by_request=True, reload=lambda: None)
    asking = asyncio.create_task(asyncio.to_thread(issue, "ESP0007"))
    await until(lambda: "ESP0007" in json.dumps(pending_bridge(config)), 10, "the request")
    stale = {**asdict(credentials_of(device_secrets(config, "sensor"))), "role": "ESP0007"}
    (data_dir / PROVISION_RESULTS).mkdir()
    provision_result(data_dir, "ESP0007").write_text(json.dumps({**stale, "request": "old"}))
    assert apply_provision_requests(config, lambda: None) == 1
    got = await asyncio.wait_for(asking, 10)
    assert got == credentials_of(device_secrets(config, "ESP0007"))
    assert got.password != stale["password"]
    assert not provision_result(data_dir, "ESP0007").exists()  # removed once read


def pending_bridge(config: GatewayConfig) -> object:
    path = config.data_dir / PROVISION_REQUESTS
    return json.loads(path.read_text()) if path.exists() else []


def test_without_root_the_issuer_gives_up_in_time(kit: tuple[Path, GatewayConfig]) -> None:
    config = kit[1]
    issue = provision_issuer(config, by_request=True, reload=lambda: None, wait=0.3)
    with pytest.raises(ApplianceError, match=r"no answer from msgflo-devices.service .* 0.3 s"):
        issue("ESP0009")
    # The request stays: root makes the device when it runs, and the board, plugged in again,
    # gets the same credentials then.
    assert [r["role"] for r in pending_bridge(config)] == ["ESP0009"]  # type: ignore[attr-defined]


def test_gateway_run_devices_answers_both_and_one_broken_directory_stops_only_its_own(
    kit: tuple[Path, GatewayConfig],
) -> None:
    path, config = kit
    request_device(config.data_dir, "add", "lamp")
    request_provision(config.data_dir, "ESP0003", "r1")
    done = run_script("gateway-run", "--config", path, "devices", "--systemctl", "true")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "gateway-run: 2 device request(s) carried out\n"
    assert answer(config, "ESP0003")["request"] == "r1"
    # The bridge's user put a link where root answers: not followed, the dashboard served.
    results = config.data_dir / PROVISION_RESULTS
    for entry in results.iterdir():
        entry.unlink()
    results.rmdir()
    elsewhere = config.data_dir / "elsewhere"
    elsewhere.mkdir()
    results.symlink_to(elsewhere)
    request_device(config.data_dir, "show", "lamp")
    request_provision(config.data_dir, "ESP0004", "r2")
    failed = run_script("gateway-run", "--config", path, "devices", "--systemctl", "true")
    assert failed.returncode == 1 and "not a directory of user" in failed.stderr
    assert failed.stdout == "gateway-run: 1 device request(s) carried out\n"
    assert list(elsewhere.iterdir()) == [] and pending(config.data_dir) == {}


def test_gateway_run_gives_the_serial_bridge_its_issuer(kit: tuple[Path, GatewayConfig]) -> None:
    config = kit[1]
    for argv in (["bridge", "serial"], ["bridge", "serial", "--provision-by-request"]):
        side = run.serial_side(run.parser().parse_args(argv), config)
        devices = getattr(side, "__self__", None)
        assert isinstance(devices, SerialDevices) and devices.issuer is not None
    assert run.serial_side(run.parser().parse_args(["bridge", "ble"]), config) is None
    with pytest.raises(GatewayError, match="only the serial bridge provisions"):
        run.serial_side(
            run.parser().parse_args(["bridge", "ble", "--provision-by-request"]), config
        )


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
