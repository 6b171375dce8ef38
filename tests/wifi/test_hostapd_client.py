"""The asyncio client against a real hostapd (driver=none) and against scripted fakes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.errors import HostapdError
from gateway.wifi.hostapd_client import HostapdClient, abstract_address
from gateway.wifi.hostapd_ctrl import (
    ApDisabled,
    ApEnabled,
    ApState,
    Command,
    MacAddress,
    Terminating,
    reply_text,
)
from tests.wifi.conftest import FakeHostapd, Hostapd

FakeFactory = Callable[..., FakeHostapd]

pytestmark = pytest.mark.integration


def released(address: str | bytes) -> bool:
    """Whether a client's abstract name is free again (its socket closed): it can be bound."""
    name = address.encode() if isinstance(address, str) else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(name)
        except OSError:
            return False
    return True


async def test_ping_and_status_report_the_configured_ap(hostapd: Hostapd) -> None:
    async with HostapdClient.connect(hostapd.ctrl, timeout=2) as client:
        await client.ping()
        status = await client.status()
    assert status.state is ApState.ENABLED
    assert (status.ssid, status.channel) == (hostapd.ssid, hostapd.channel)
    # What driver=none reports: no radio, so no frequency, no phy and an all-zero BSSID.
    assert (status.freq, status.extra["phy"]) == (0, "")
    assert status.bssid == MacAddress("00:00:00:00:00:00")
    assert status.bss[0].ifname == hostapd.ifname
    assert status.num_sta == 0


async def test_driver_none_has_no_stations(hostapd: Hostapd) -> None:
    async with HostapdClient.connect(hostapd.ctrl) as client:
        assert await client.stations() == []


async def test_disable_and_enable_arrive_as_events(hostapd: Hostapd) -> None:
    async with HostapdClient.connect(hostapd.ctrl, timeout=2) as client:
        await client.attach()
        assert reply_text("DISABLE", await client.request(Command.DISABLE)).strip() == "OK"
        assert (await client.status()).state is ApState.DISABLED
        await client.request(Command.ENABLE)
        events = client.events()
        async with asyncio.timeout(5):
            assert [await anext(events), await anext(events)] == [ApDisabled(), ApEnabled()]
        assert (await client.status()).state is ApState.ENABLED


async def test_a_fail_reply_from_hostapd_is_a_hostapd_error(hostapd: Hostapd) -> None:
    async with HostapdClient.connect(hostapd.ctrl) as client:
        reply = await client.request(Command.ENABLE)  # it is enabled already
    with pytest.raises(HostapdError, match="ENABLE: answered FAIL"):
        reply_text("ENABLE", reply)


async def test_events_end_when_hostapd_terminates(hostapd: Hostapd) -> None:
    async with HostapdClient.connect(hostapd.ctrl) as client:
        await client.attach()
        await asyncio.to_thread(hostapd.stop)  # SIGTERM, and wait for it to exit
        async with asyncio.timeout(5):
            seen = [event async for event in client.events()]
    assert seen == [ApDisabled(), Terminating()]


async def test_events_raise_when_hostapd_is_killed(hostapd: Hostapd) -> None:
    async with HostapdClient.connect(hostapd.ctrl, timeout=0.5) as client:
        await client.attach()
        await asyncio.to_thread(hostapd.stop, signal.SIGKILL)
        with pytest.raises(HostapdError, match=f"hostapd at {hostapd.ctrl}: PING"):
            async with asyncio.timeout(5):
                async for _ in client.events(ping_every=0.2):
                    pass


async def test_client_sockets_are_abstract_and_released_on_close(hostapd: Hostapd) -> None:
    # No file anywhere: hostapd on the kit could not reach one in the health unit's or the
    # self-test's own /tmp (hostapd_client's docstring).
    async with HostapdClient.connect(hostapd.ctrl) as client:
        await client.attach()
        addresses = client.local_addresses
        assert len(set(addresses)) == 2
        assert all(a.startswith("\0msgflo-gateway-hostapd-") for a in addresses)
        assert not any(released(a) for a in addresses)
    assert all(released(a) for a in addresses)


def test_each_socket_gets_a_fresh_abstract_name() -> None:
    names = {abstract_address() for _ in range(100)}
    assert len(names) == 100
    assert all(n.startswith(f"\0msgflo-gateway-hostapd-{os.getpid()}-") for n in names)


async def test_nobody_but_hostapd_can_answer_the_client(hostapd: Hostapd) -> None:
    # The abstract name is visible to every process; the connected socket takes datagrams
    # from hostapd's socket only.
    async with HostapdClient.connect(hostapd.ctrl) as client:
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as intruder,
            pytest.raises(PermissionError),
        ):
            intruder.sendto(b"PONG\n", client.local_addresses[0].encode())
        await client.ping()


async def test_a_request_on_a_detached_client_gets_no_events(hostapd: Hostapd) -> None:
    # Events go only to the attached monitor socket: requests keep working after DISABLE.
    async with HostapdClient.connect(hostapd.ctrl) as client:
        await client.attach()
        await client.request(Command.DISABLE)
        await client.request(Command.ENABLE)
        await client.ping()
        assert (await client.status()).state is ApState.ENABLED


async def test_no_socket_at_the_path(tmp_path: Path) -> None:
    with pytest.raises(HostapdError) as caught:
        async with HostapdClient.connect(tmp_path / "wlan0"):
            pass
    assert str(caught.value) == (
        f"hostapd at {tmp_path / 'wlan0'}: cannot reach the control socket: "
        "No such file or directory"
    )


async def test_a_socket_that_never_answers_times_out(fake_hostapd: FakeFactory) -> None:
    silent = fake_hostapd(lambda request: [])
    with pytest.raises(HostapdError) as caught:
        async with HostapdClient.connect(silent.path, timeout=0.2):
            pass
    assert str(caught.value) == f"hostapd at {silent.path}: PING: no reply within 0.2 s"
    assert silent.requests == [b"PING"]
    assert released(silent.senders[0])


async def test_a_late_reply_is_not_taken_for_the_next_one(fake_hostapd: FakeFactory) -> None:
    answers = {b"PING": [b"PONG\n"], b"STATUS": [b"state=ENABLED\n"]}
    slow = fake_hostapd(lambda request: answers.get(request, [b"UNKNOWN COMMAND\n"]), delay=0.3)
    async with HostapdClient.connect(slow.path, timeout=1) as client:
        client.timeout = 0.1
        with pytest.raises(HostapdError, match=r"PING: no reply within 0\.1 s"):
            await client.ping()
        await asyncio.sleep(0.4)  # the PONG arrives now, after the client gave up
        client.timeout = 1
        # The stale PONG is discarded; the STATUS reply (no BSS lines) is what gets parsed.
        with pytest.raises(HostapdError, match="STATUS: reply names no BSS"):
            await client.status()


async def test_events_on_the_request_socket_are_set_aside(fake_hostapd: FakeFactory) -> None:
    # hostapd remembers monitors by path; a reused path could get events mid-request.
    fake = fake_hostapd(lambda request: [b"<3>AP-ENABLED ", b"<3>AP-DISABLED ", b"PONG\n"])
    async with HostapdClient.connect(fake.path) as client:
        await client.ping()


async def test_unknown_command_is_reported(fake_hostapd: FakeFactory) -> None:
    answers = {b"PING": [b"PONG\n"]}
    fake = fake_hostapd(lambda request: answers.get(request, [b"UNKNOWN COMMAND\n"]))
    async with HostapdClient.connect(fake.path) as client:
        with pytest.raises(HostapdError) as caught:
            await client.stations()
    assert str(caught.value) == (
        f"hostapd at {fake.path}: STA-FIRST: unknown command (hostapd built without it?)"
    )


async def test_stations_are_walked_with_sta_next(fake_hostapd: FakeFactory) -> None:
    first, second = b"02:00:00:00:01:00", b"02:00:00:00:02:00"
    answers = {
        b"PING": [b"PONG\n"],
        b"STA-FIRST": [first + b"\nflags=[AUTH][ASSOC][AUTHORIZED]\nsignal=-40\n"],
        b"STA-NEXT " + first: [second + b"\nflags=[AUTH]\n"],
        b"STA-NEXT " + second: [b""],
    }
    fake = fake_hostapd(lambda request: answers[request])
    async with HostapdClient.connect(fake.path) as client:
        stations = await client.stations()
    assert [str(s.mac) for s in stations] == [first.decode(), second.decode()]
    assert stations[0].signal == -40 and stations[0].authorized
    assert not stations[1].authorized


async def test_unparsable_events_are_counted_and_skipped(fake_hostapd: FakeFactory) -> None:
    answers = {
        b"PING": [b"PONG\n"],
        b"ATTACH": [b"OK\n", b"<3>AP-STA-CONNECTED nonsense", b"<3>AP-ENABLED "],
    }
    fake = fake_hostapd(lambda request: answers.get(request, [b"OK\n"]))
    async with HostapdClient.connect(fake.path) as client:
        async with asyncio.timeout(5):
            assert await anext(client.events()) == ApEnabled()
        assert client.dropped_events == 1
    assert fake.requests[-1] == b"DETACH"


async def test_a_wrong_answer_to_ping_names_the_socket(fake_hostapd: FakeFactory) -> None:
    fake = fake_hostapd(lambda request: [b"OK\n"])
    with pytest.raises(HostapdError) as caught:
        async with HostapdClient.connect(fake.path):
            pass
    assert str(caught.value) == f"hostapd at {fake.path}: PING: expected PONG, got 'OK'"
