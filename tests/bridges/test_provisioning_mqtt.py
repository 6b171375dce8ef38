"""Provisioning over USB, the whole way: the appliance's broker (first boot's rendered
mosquitto, its password file and ACL), the real serial bridge with the issuer
``gateway-run bridge serial`` gives it (``gateway.appliance.device_requests.provision_issuer``:
in-process as on a laptop, and by request as on the appliance, where this test stands in for
root's ``msgflo-devices.service``), ``provision_board`` on a pty, and then the board's MQTT
side (``mqtt_participant``, the same library with the MQTT transport) logging in with exactly
what the board stored, announcing itself, and being wired by the coordinator, whose IIP reaches
its inport.

A sketch does both in one program (provision, then join the WiFi and connect); on the host
they are two programs of the same library, the second started with the first's stored
credentials, as the sketch reads them from its CredentialStore after the join."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from gateway.appliance.credentials import load_service_credentials
from gateway.appliance.device_requests import (
    PROVISION_REQUESTS,
    PROVISION_RESULTS,
    apply_provision_requests,
    provision_issuer,
)
from gateway.appliance.devices import Reload, list_devices, reload_pid
from gateway.broker import BrokerUrl
from gateway.config import GatewayConfig
from gateway.graph import parse_fbp
from tests.appliance.conftest import AP_ADDRESS, Broker, appliance_config, provision
from tests.bridges.test_provisioning_board import (
    ESP_LINK,
    bridging,
    provisioning_config,
    running_board,
    show,
)
from tests.support.coordinating import coordinating
from tests.support.firmware import Program, build_programs, running_program
from tests.support.tasks import background
from tests.support.wait import until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``provision_board`` and ``mqtt_participant``, built once for this module."""
    build = tmp_path_factory.mktemp("provision-mqtt") / "build"
    build_programs(build, "provision_board", "mqtt_participant")
    return build / "provision_board", build / "mqtt_participant"


def mqtt_side(program: Path, stored: dict[str, str]) -> AbstractAsyncContextManager[Program]:
    """The board's MQTT side, with the credentials it stored."""
    return running_program(
        program,
        *["--host", stored["host"], "--port", stored["port"], "--role", stored["role"]],
        env={"MSGFLO_MQTT_USER": stored["user"], "MSGFLO_MQTT_PASSWORD": stored["password"]},
        asan="detect_leaks=0",
    )


async def root(config: GatewayConfig, reload: Reload) -> None:
    """What msgflo-devices.path and msgflo-devices.service do for the bridge's requests: each
    time the request file exists, carry it out (gateway-run devices), until cancelled."""
    path = config.data_dir / PROVISION_REQUESTS
    while True:
        await until(path.exists, timeout=60, what="the bridge's request")
        await asyncio.to_thread(apply_provision_requests, config, reload)


@pytest.mark.parametrize("by_request", [False, True], ids=["in-process", "by-request"])
async def test_a_provisioned_board_logs_in_with_what_it_stored_and_is_wired(
    programs: tuple[Path, Path], memory_url: str, tmp_path: Path, by_request: bool
) -> None:
    board_program, participant_program = programs
    config = appliance_config(tmp_path)
    provision(config, tmp_path)
    broker = Broker(config, tmp_path)
    broker.start()
    try:
        assert broker.process is not None
        reload = reload_pid(broker.process.pid)
        issuer = provision_issuer(config, by_request=by_request, reload=reload)
        # By request nothing but "root" makes the user: the issuer only writes and waits.
        answering = root(config, reload) if by_request else asyncio.sleep(3600)

        watched = tmp_path / "dev"
        watched.mkdir()
        store = tmp_path / "board.bin"
        async with (
            running_board(board_program, store) as board,
            background(answering),
            bridging(memory_url, provisioning_config(watched), issuer),
        ):
            (watched / ESP_LINK.format(serial="ESP0042")).symlink_to(board.path)
            await until(lambda: board.said("provisioned"), timeout=30, what="provisioned")
        assert list_devices(config.data_dir) == ("ESP0042", "sensor")
        # The answer, which holds the passphrase and the password, is gone once read.
        assert list((config.data_dir / PROVISION_RESULTS).iterdir()) == []
        assert not (config.data_dir / PROVISION_REQUESTS).exists()
        stored = show(board_program, store)
        assert (stored["role"], stored["host"]) == ("ESP0042", AP_ADDRESS)
        assert stored["port"] == str(config.broker.port)

        own = load_service_credentials(config.data_dir, "coordinator")
        url = BrokerUrl("mqtt", "127.0.0.1", config.broker.port, own.user, own.password)
        fbp = "'hello' -> IN ESP0042(HostDevice)"
        async with (
            coordinating(url, parse_fbp(fbp, file="t.fbp")),
            mqtt_side(participant_program, stored) as board_side,
        ):
            await board_side.wait(lambda: board_side.said("state connected"), "connected", 15)
            await board_side.wait(
                lambda: board_side.has("received in .*hello"), "the coordinator's IIP", 15
            )
    finally:
        broker.stop()
