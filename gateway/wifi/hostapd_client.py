"""An asyncio client for hostapd's control interface: the I/O around :mod:`hostapd_ctrl`.

    async with HostapdClient.connect("/run/hostapd/wlan0", timeout=5) as hostapd:
        status = await hostapd.status()
        async for event in hostapd.events():
            ...

Like wpa_cli and hostapd_cli, the client uses two sockets: one for requests and one, attached
with ``ATTACH`` on first use of :meth:`HostapdClient.events`, for events. hostapd only sends
events to attached sockets, so replies and events never share a socket. The request side still
sets aside anything that starts with ``<``: hostapd remembers monitors by address, so an
address that was attached before (by a client that died) keeps receiving events.

Each socket is bound to a fresh name in Linux's abstract namespace, not to a file: hostapd
answers with ``sendto`` to the address it received from, and a file would have to be somewhere
hostapd may write. On the kit it may not: it runs as root without ``CAP_DAC_OVERRIDE``, and the
health participant's unit (another user, with its own ``/tmp``) and the self-test (its own
``/tmp``) have no directory hostapd could reach. An abstract name needs no directory and leaves
nothing behind; it is freed when the socket closes. It is visible to the whole network
namespace, but each socket is connected to hostapd's, and the kernel refuses datagrams to a
connected datagram socket from any other sender, so nobody else can answer in hostapd's name.
Who may send requests is decided by hostapd's socket file: its group (``ctrl_interface_group``).

hostapd detaches a monitor it could not send to more than ten times in a row, so a reader that
stops reading loses events rather than stalling hostapd.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator

from gateway.errors import HostapdError
from gateway.wifi.hostapd_ctrl import (
    ApStatus,
    Command,
    Event,
    MacAddress,
    Reply,
    Station,
    Terminating,
    encode_command,
    expect_word,
    is_event,
    parse_event,
    parse_station,
    parse_status,
    station_command,
)

log = logging.getLogger(__name__)

# Where the appliance's access point (msgflo-ap.service, gateway-run ap) puts its socket.
DEFAULT_CTRL = "/run/msgflo-gateway/ap/ctrl/wlan0"
# hostapd builds replies in a 4096-byte buffer (ctrl_iface.c); more room costs nothing.
MAX_DATAGRAM = 16384
DETACH_TIMEOUT = 1.0  # seconds to wait for DETACH's OK when closing; hostapd also detaches us
# on its own once sending to our closed socket keeps failing


class _Endpoint:
    """One client socket, bound to a fresh abstract name and connected to hostapd's socket."""

    def __init__(self, server: str) -> None:
        self.address = abstract_address()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.bind(self.address)
            self.sock.connect(server)
        except OSError as exc:
            self.close()
            raise HostapdError(f"cannot reach the control socket: {exc.strerror}") from None

    async def send(self, datagram: bytes) -> None:
        try:
            await asyncio.get_running_loop().sock_sendall(self.sock, datagram)
        except OSError as exc:
            # ECONNREFUSED: the socket file is there but hostapd is not (it died or restarted).
            raise HostapdError(f"cannot send: {exc.strerror}") from None

    async def recv(self) -> bytes:
        return await asyncio.get_running_loop().sock_recv(self.sock, MAX_DATAGRAM)

    def drain(self) -> list[bytes]:
        """Whatever is already queued: late replies to requests that timed out, stray events."""
        stale: list[bytes] = []
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:
                stale.append(self.sock.recv(MAX_DATAGRAM))
        return stale

    def close(self) -> None:
        self.sock.close()


def abstract_address() -> str:
    """A fresh name in the abstract namespace (the leading NUL): the process id, for ``ss -x``,
    and 64 random bits, so a name is never one hostapd still remembers as a monitor's."""
    return f"\0msgflo-gateway-hostapd-{os.getpid()}-{secrets.token_hex(8)}"


class HostapdClient:
    """A connection to one hostapd control socket; make it with :meth:`connect`."""

    def __init__(self, path: str, requests: _Endpoint, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.dropped_events = 0  # event datagrams that could not be parsed, logged and dropped
        self._requests = requests
        self._monitor: _Endpoint | None = None
        self._lock = asyncio.Lock()
        self._attach_lock = asyncio.Lock()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - bounds each request, not the whole block
    ) -> AsyncIterator[HostapdClient]:
        """Open the request socket and check that hostapd answers PING within ``timeout``
        seconds, the limit every later request gets too."""
        server = os.fspath(path)
        with _located(server):
            client = cls(server, _Endpoint(server), timeout)
        try:
            await client.ping()
            yield client
        finally:
            await client._close()

    @property
    def local_addresses(self) -> tuple[str, ...]:
        """Our own sockets' abstract names (request, then monitor once attached)."""
        monitor = (self._monitor.address,) if self._monitor else ()
        return (self._requests.address, *monitor)

    async def request(self, command: Command, *args: str) -> bytes:
        """Send one command and return its reply datagram, unparsed (FAIL is not checked)."""
        text = " ".join([command.value, *args])
        with _located(self.path, text):
            async with self._lock:
                return await self._exchange(self._requests, encode_command(command, *args), text)

    async def ping(self) -> None:
        reply = await self.request(Command.PING)
        with _located(self.path):
            expect_word(Command.PING, reply, Reply.PONG)

    async def status(self) -> ApStatus:
        reply = await self.request(Command.STATUS)
        with _located(self.path):
            return parse_status(reply)

    async def stations(self) -> list[Station]:
        """Every associated station, walked with STA-FIRST and STA-NEXT."""
        found: list[Station] = []
        seen: set[MacAddress] = set()
        previous: MacAddress | None = None
        while True:
            command, args = station_command(previous)
            reply = await self.request(command, *args)
            with _located(self.path):
                station = parse_station(" ".join([command, *args]), reply)
            # A station seen twice means the list changed under the walk: stop, do not loop.
            if station is None or station.mac in seen:
                return found
            found.append(station)
            seen.add(station.mac)
            previous = station.mac

    async def events(self, *, ping_every: float = 10.0) -> AsyncIterator[Event]:
        """hostapd's events as they come, attaching a monitor socket on first use.

        Ends after :class:`Terminating` (hostapd is exiting). A silence longer than
        ``ping_every`` seconds is checked with a PING, so a hostapd that was killed outright
        raises HostapdError instead of leaving the iterator waiting forever. Unparsable event
        datagrams are logged, counted in ``dropped_events`` and skipped. One reader at a time.
        """
        monitor = await self._attached()
        while True:
            try:
                async with asyncio.timeout(ping_every):
                    datagram = await monitor.recv()
            except TimeoutError:
                await self.ping()
                continue
            event = self._event(datagram)
            if event is not None:
                yield event
            if isinstance(event, Terminating):
                return

    def _event(self, datagram: bytes) -> Event | None:
        if not is_event(datagram):
            log.debug("hostapd %s: ignored a reply on the monitor socket: %r", self.path, datagram)
            return None
        try:
            return parse_event(datagram)
        except HostapdError as exc:
            self.dropped_events += 1
            log.warning("hostapd %s: dropped an event: %s", self.path, exc.problem)
            return None

    async def attach(self) -> None:
        """Attach the monitor socket now (idempotent): events from here on wait in it for
        :meth:`events`, which otherwise attaches on its first iteration and misses earlier ones.
        """
        await self._attached()

    async def _attached(self) -> _Endpoint:
        async with self._attach_lock:
            if self._monitor is None:
                with _located(self.path, Command.ATTACH):
                    monitor = _Endpoint(self.path)
                    try:
                        reply = await self._exchange(monitor, encode_command(Command.ATTACH))
                        expect_word(Command.ATTACH, reply, Reply.OK)
                    except BaseException:
                        monitor.close()
                        raise
                self._monitor = monitor
            return self._monitor

    async def _exchange(self, endpoint: _Endpoint, datagram: bytes, text: str = "") -> bytes:
        """Send one request and wait for its reply, setting aside events and stale datagrams."""
        for stale in endpoint.drain():
            log.debug("hostapd %s: discarded a stale datagram: %r", self.path, stale[:80])
        await endpoint.send(datagram)
        try:
            async with asyncio.timeout(self.timeout):
                while is_event(reply := await endpoint.recv()):
                    log.debug("hostapd %s: event on a request socket: %r", self.path, reply)
        except TimeoutError:
            raise HostapdError(f"no reply within {self.timeout:g} s", command=text) from None
        return reply

    async def _close(self) -> None:
        try:
            if self._monitor is not None:
                with contextlib.suppress(HostapdError, TimeoutError):
                    async with asyncio.timeout(DETACH_TIMEOUT):
                        await self._exchange(self._monitor, encode_command(Command.DETACH))
        finally:
            if self._monitor is not None:
                self._monitor.close()
            self._requests.close()


@contextlib.contextmanager
def _located(path: str, command: str = "") -> Iterator[None]:
    """Name the control socket (and the command, if the error lacks one) in a HostapdError."""
    try:
        yield
    except HostapdError as exc:
        if exc.path:
            raise
        raise HostapdError(exc.problem, command=exc.command or command, path=path) from None
