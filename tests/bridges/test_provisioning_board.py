"""Provisioning over USB end to end on the host: the firmware library's Provisioning compiled
into ``provision_board`` (firmware/test), on a pty the real serial bridge watches, with its
credentials in a file. The bridge probes the silent port, creates credentials through the
issuer it was given and hands them over; the board stores them, and reading the file back
shows what the gateway sent. A serial-link board on the same bridge is never probed."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tty
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from gateway.bridges.serial.bridge import BridgeConfig, SerialBridge
from gateway.bridges.serial.fake_device import PtyDevice
from gateway.bridges.serial.provisioning import DeviceCredentials, IssueCredentials
from gateway.broker import parse_broker_url
from gateway.transport import open_transport
from tests.bridges.test_serial_bridge import BY_ID, fast_config, link_session
from tests.support.firmware import Program, build_programs, running_program
from tests.support.tasks import background
from tests.support.wait import until

ESP_LINK = "usb-Espressif_USB_JTAG_serial_debug_unit_{serial}-if00"


@dataclass
class Issuer:
    """Hands out fixed credentials for a role (test data, as the appliance's
    gateway.appliance.devices would make them), and remembers who asked."""

    roles: list[str] = field(default_factory=list)
    refuse: str | None = None

    def __call__(self, role: str) -> DeviceCredentials:
        self.roles.append(role)
        if self.refuse is not None:
            raise RuntimeError(self.refuse)
        return DeviceCredentials(
            ssid="msgflo-kit",
            passphrase="kit-passphrase-1",
            broker_host="192.168.4.1",
            broker_port=1883,
            user=f"device-{role}",
            password=f"pw-for-{role}",
            role=role,
        )


@pytest.fixture(scope="module")
def board_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``provision_board``, built once for this module."""
    build = tmp_path_factory.mktemp("provision") / "build"
    return build_programs(build, "provision_board") / "provision_board"


@dataclass
class Board:
    """The running program: its pty's slave path, its store and what it printed."""

    path: str
    store: Path
    program: Program

    @property
    def lines(self) -> list[str]:
        return self.program.lines

    def said(self, start: str) -> bool:
        return self.program.said(start)


@contextlib.contextmanager
def pty_pair() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    tty.setraw(slave)  # bytes go through as they are
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)  # held open meanwhile: the tty outlives the bridge closing its file


@contextlib.asynccontextmanager
async def running_board(
    program: Path, store: Path, *, fail_join: bool = False
) -> AsyncIterator[Board]:
    with pty_pair() as (master, slave):
        extra = ["--fail-join"] if fail_join else []
        async with running_program(
            program,
            *["--fd", str(master), "--store", str(store), *extra],
            asan="detect_leaks=0",
            pass_fds=(master,),
        ) as running:
            board = Board(os.ttyname(slave), store, running)
            await until(lambda: board.said("started"), what="the board to start")
            yield board


def show(program: Path, store: Path) -> dict[str, str]:
    """What the board's store holds, read back by the board's own code."""
    result = subprocess.run(
        [str(program), "--show", str(store)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def provisioning_config(directory: Path, provision: tuple[str, ...] = ("*",)) -> BridgeConfig:
    return replace(fast_config(directory), provision=provision)


@contextlib.asynccontextmanager
async def bridging(
    url: str, config: BridgeConfig, issuer: IssueCredentials | None
) -> AsyncIterator[SerialBridge]:
    async with open_transport(parse_broker_url(url), client_id="bridge") as transport:
        bridge = SerialBridge(config, transport, issuer=issuer, monitor=None)
        async with background(bridge.run()):
            yield bridge


async def test_an_unprovisioned_board_is_provisioned_and_keeps_its_credentials(
    board_program: Path, memory_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.bridges.serial")
    watched = tmp_path / "dev"
    watched.mkdir()
    issuer = Issuer()
    config = provisioning_config(watched)
    async with (
        running_board(board_program, tmp_path / "board.bin") as board,
        PtyDevice() as echo,
        bridging(memory_url, config, issuer) as bridge,
    ):
        assert board.said("started unprovisioned")
        link = watched / ESP_LINK.format(serial="ESP0001")
        link.symlink_to(board.path)
        echo.plug(watched, BY_ID.format(serial="ECHO0001"))
        await until(lambda: board.said("provisioned"), timeout=20, what="the board provisioned")
        assert board.lines[1:] == [
            "joining msgflo-kit",
            "provisioned role=ESP0001 host=192.168.4.1 port=1883 user=device-ESP0001",
        ]
        device = bridge.devices[str(link)]
        await until(lambda: device.left_alone is not None, what="the bridge to leave it")
        assert issuer.roles == ["ESP0001"]  # the role it derives for any serial device
        # The serial-link board beside it is announced, and never saw an Improv byte.
        await until(
            lambda: bool(bridge.announced.get(str(watched / BY_ID.format(serial="ECHO0001"))))
        )
        assert echo.core.counters.crc == echo.core.counters.cobs == 0
        assert echo.core.counters.rejected == 0
    assert show(board_program, tmp_path / "board.bin") == {
        "valid": "1",
        "ssid": "msgflo-kit",
        "passphrase": "kit-passphrase-1",
        "host": "192.168.4.1",
        "port": "1883",
        "user": "device-ESP0001",
        "password": "pw-for-ESP0001",
        "role": "ESP0001",
    }
    lines = [r.getMessage() for r in caplog.records if "ESP0001-if00" in r.getMessage()]
    done = [line for line in lines if "provisioned over Improv" in line]
    assert len(done) == 1 and "pw-for" not in done[0] and "kit-passphrase" not in done[0]

    # Plugged in again, the board says it is provisioned: it is left alone with its role.
    caplog.clear()
    async with (
        running_board(board_program, tmp_path / "board.bin") as board,
        bridging(memory_url, config, issuer),
    ):
        assert board.said("started provisioned")
        (watched / ESP_LINK.format(serial="ESP0001")).unlink(missing_ok=True)
        (watched / ESP_LINK.format(serial="ESP0001")).symlink_to(board.path)
        await until(
            lambda: any(
                "already provisioned as role 'ESP0001'" in r.getMessage() for r in caplog.records
            ),
            timeout=20,
        )
        assert issuer.roles == ["ESP0001"]  # no second user


async def test_a_failed_join_and_a_refusing_issuer_are_one_line_each(
    board_program: Path, memory_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.bridges.serial")
    watched = tmp_path / "dev"
    watched.mkdir()
    config = provisioning_config(watched, provision=(BY_ID.format(serial="FAIL0001"), "REFUSE01"))
    refusing = Issuer(refuse="mosquitto is not running")

    def issuer(role: str) -> DeviceCredentials:
        return refusing(role) if role == "REFUSE01" else Issuer()(role)

    async with (
        running_board(board_program, tmp_path / "a.bin", fail_join=True) as failing,
        running_board(board_program, tmp_path / "b.bin") as refused,
        bridging(memory_url, config, issuer) as bridge,
    ):
        (watched / BY_ID.format(serial="FAIL0001")).symlink_to(failing.path)
        (watched / BY_ID.format(serial="REFUSE01")).symlink_to(refused.path)
        paths = [str(watched / BY_ID.format(serial=s)) for s in ("FAIL0001", "REFUSE01")]
        await until(
            lambda: all(p in bridge.devices and bridge.devices[p].left_alone for p in paths),
            timeout=20,
            what="both boards left alone",
        )
        assert failing.said("join failed")
        assert not refused.said("joining")
    failed = [r.getMessage() for r in caplog.records if "provisioning failed" in r.getMessage()]
    assert len(failed) == 2
    assert any("unable_to_connect" in line and "FAIL0001" in line for line in failed)
    assert any("mosquitto is not running" in line and "REFUSE01" in line for line in failed)
    assert show(board_program, tmp_path / "a.bin") == {"valid": "0"}


async def test_without_the_config_key_the_board_is_never_probed(
    board_program: Path, memory_url: str, tmp_path: Path
) -> None:
    watched = tmp_path / "dev"
    watched.mkdir()
    issuer = Issuer()
    async with (
        running_board(board_program, tmp_path / "board.bin") as board,
        bridging(memory_url, fast_config(watched), issuer) as bridge,
    ):
        path = watched / ESP_LINK.format(serial="ESP0002")
        path.symlink_to(board.path)
        await until(lambda: str(path) in bridge.devices)
        device = bridge.devices[str(path)]

        def asked() -> int:
            session = link_session(bridge, str(path))
            return session.stats.describe_requests if session is not None else 0

        await until(lambda: asked() >= 3, what="describe requests")  # the link carries on
        assert device.provisioner is None and issuer.roles == []
        assert board.lines == ["started unprovisioned"]
