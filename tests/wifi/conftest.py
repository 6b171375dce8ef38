"""A real hostapd with ``driver=none`` per test, and a scripted fake for what hostapd won't do.

``driver=none`` (hostapd.conf: "for a standalone RADIUS server that does not control any
wireless/wired driver") runs the whole control interface without a radio: the interface name
is just a name, nothing is created or touched, STATUS reports the configured SSID and channel
with ``freq=0``, an empty ``phy`` and ``bssid[0]=00:00:00:00:00:00``, and there are never any
stations. ``DISABLE``/``ENABLE`` still emit AP-DISABLED/AP-ENABLED.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from gateway.processes import stop_process, with_parent_death_signal

HOSTAPD = Path("/usr/sbin/hostapd")
START_TIMEOUT = 10.0


class Hostapd:
    """``hostapd`` on a throwaway config; ``ctrl`` is its control socket."""

    def __init__(
        self,
        ssid: str = "gw-test",
        channel: int = 6,
        ifname: str = "gwtest0",
        *,
        wrapper: Sequence[str] = (),
        umask: int = -1,
    ) -> None:
        """``wrapper`` (e.g. setpriv and its options) runs hostapd, under ``umask`` if given."""
        self.ssid = ssid
        self.channel = channel
        self.ifname = ifname
        self.wrapper = list(wrapper)
        self.umask = umask
        # Not pytest's tmp_path: a UNIX socket path must fit in 108 bytes.
        self.workdir = Path(tempfile.mkdtemp(prefix="gw-hostapd-"))
        self.ctrl = self.workdir / "ctrl" / ifname
        self.log = self.workdir / "hostapd.log"
        self._process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        return "\n".join(
            [
                f"interface={self.ifname}",
                "driver=none",
                f"ctrl_interface={self.ctrl.parent}",
                f"ssid={self.ssid}",
                "hw_mode=g",
                f"channel={self.channel}",
                "",
            ]
        )

    def start(self) -> None:
        conf = self.workdir / "hostapd.conf"
        conf.write_text(self.config())
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                with_parent_death_signal([*self.wrapper, str(HOSTAPD), str(conf)]),
                stdin=subprocess.DEVNULL,
                umask=self.umask,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ctrl.is_socket():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hostapd did not start: {self.log.read_text()[-500:]}")
            time.sleep(0.02)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        stop_process(self._process, sig)
        self._process = None

    def cleanup(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def hostapd() -> Iterator[Hostapd]:
    if not HOSTAPD.exists():
        pytest.skip(f"{HOSTAPD} is absent (./bootstrap.sh setup installs Debian's hostapd)")
    server = Hostapd()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


Script = Callable[[bytes], list[bytes]]


class FakeHostapd:
    """A datagram socket at ``path`` that answers each request with what ``script`` returns
    (nothing, for a hostapd that hangs), after ``delay`` seconds. ``senders`` are the client
    sockets' addresses seen (abstract names come as bytes), to check they are released."""

    def __init__(self, path: Path, script: Script, delay: float = 0.0) -> None:
        self.path = path
        self.script = script
        self.delay = delay
        self.senders: list[str | bytes] = []
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(str(path))

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            request, sender = await loop.sock_recvfrom(self.sock, 4096)
            self.requests.append(request)
            self.senders.append(sender)
            replies = self.script(request)
            if replies and self.delay:
                await asyncio.sleep(self.delay)
            for reply in replies:
                await loop.sock_sendto(self.sock, reply, sender)


@pytest.fixture
async def fake_hostapd() -> AsyncIterator[Callable[..., FakeHostapd]]:
    """``fake_hostapd(script, delay=0)`` -> a running FakeHostapd, stopped after the test."""
    workdir = Path(tempfile.mkdtemp(prefix="gw-fake-hostapd-"))
    tasks: list[asyncio.Task[None]] = []
    fakes: list[FakeHostapd] = []

    def start(script: Script, delay: float = 0.0) -> FakeHostapd:
        fake = FakeHostapd(workdir / f"wlan{len(fakes)}", script, delay)
        fakes.append(fake)
        tasks.append(asyncio.create_task(fake.serve()))
        return fake

    try:
        yield start
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for fake in fakes:
            fake.sock.close()
        shutil.rmtree(workdir, ignore_errors=True)
