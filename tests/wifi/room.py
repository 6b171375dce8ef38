"""A room of stations on the gateway's network, in Linux network namespaces.

The gateway's side is one namespace with a bridge named as the access point's interface and
the access point's address: the rendered dnsmasq.conf and mosquitto.conf run there unchanged.
Each station is a namespace of its own with one ``eth0``, a veth whose other end is a port of
that bridge: what a WiFi station is to the gateway at the IP level (one MAC, one DHCP lease,
its own TCP connections), without a radio. With ``mac80211_hwsim`` (not on every kernel) the
same stations can be radios instead; see ``test_room.py``.

Stations are driven from this process, without a DHCP client or MQTT tool in each namespace:
a socket belongs to the network namespace its creating thread was in, so ``inside(ns)``
switches the calling thread there (``setns``) just long enough to create one, and the
exchanges then run on the ordinary event loop. The DHCP and MQTT exchanges here are the few
packets a board sends, written out (RFC 2131, MQTT 3.1.1), so a refusal is seen as such.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import secrets
import socket
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
PHYS = Path("/sys/class/ieee80211")
SO_BINDTODEVICE = 25
DHCP_SERVER, DHCP_CLIENT = 67, 68
MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
NAK_BACKOFF = 1.0  # seconds, at most
BROADCAST_FLAG = 0x8000  # replies broadcast: the station has no address to unicast to yet

_libc = ctypes.CDLL(None, use_errno=True)


class DhcpRefusedError(Exception):
    """No lease: no offer in time, or NAKs only."""


class NakError(Exception):
    """The server refused the address requested."""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def netns_usable() -> str | None:
    """None if this process may make network namespaces, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    probe = f"gwprobe{os.getpid()}"
    done = subprocess.run(
        ["ip", "netns", "add", probe], check=False, capture_output=True, text=True
    )
    if done.returncode != 0:
        return f"ip netns add failed: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False, capture_output=True)
    return None


@contextmanager
def inside(namespace: str) -> Iterator[None]:
    """The calling thread in ``namespace`` until the block ends (sockets made there stay)."""
    with open("/proc/thread-self/ns/net", "rb") as home, open(NETNS_DIR / namespace, "rb") as ns:
        _setns(ns.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@dataclass(frozen=True)
class Radio:
    """A ``mac80211_hwsim`` radio: its wiphy and its network interface."""

    phy: str
    netdev: str


def hwsim_radios() -> list[Radio]:
    """The simulated radios in this namespace, in phy order."""
    found = []
    for phy in sorted(os.listdir(PHYS) if PHYS.is_dir() else []):
        device = PHYS / phy / "device"
        if not os.path.realpath(device / "driver").endswith("/mac80211_hwsim"):
            continue
        netdevs = sorted(os.listdir(device / "net")) if (device / "net").is_dir() else []
        if netdevs:
            found.append(Radio(phy, netdevs[0]))
    return found


@dataclass
class Room:
    """The gateway's namespace ``gateway`` with ``interface`` at ``address``, and stations
    added by ``add_station``, each with ``station_interface``. Without ``radios`` the
    interface is a bridge and each station a veth on it; with them, the first radio is the
    gateway's (hostapd's) and each station takes the next. ``close`` deletes every namespace:
    their veths go with them, radios move back to the first namespace."""

    prefix: str
    interface: str
    address: str  # "192.168.4.1/24"
    radios: tuple[Radio, ...] = ()

    def __post_init__(self) -> None:
        self.gateway = f"{self.prefix}-gw"
        self.stations: list[str] = []
        self.station_interface = "wlan0" if self.radios else "eth0"
        ip("netns", "add", self.gateway)
        ip("-n", self.gateway, "link", "set", "lo", "up")
        if self.radios:
            self._take_radio(self.radios[0], self.gateway, self.interface)
        else:
            ip("-n", self.gateway, "link", "add", self.interface, "type", "bridge")
            ip("-n", self.gateway, "link", "set", self.interface, "up")
        ip("-n", self.gateway, "addr", "add", self.address, "dev", self.interface)

    def add_station(self) -> str:
        """A new station namespace with its interface up; its name."""
        index = len(self.stations)
        name, port = f"{self.prefix}-s{index}", f"port{index}"
        if self.radios and index + 1 >= len(self.radios):
            raise RuntimeError(f"{len(self.radios)} radios: no radio left for station {index}")
        ip("netns", "add", name)
        self.stations.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        if self.radios:
            self._take_radio(self.radios[index + 1], name, self.station_interface)
            return name
        ip("link", "add", "name", port, "netns", self.gateway, "type", "veth",
           "peer", "name", "eth0", "netns", name)  # fmt: skip
        ip("-n", self.gateway, "link", "set", port, "master", self.interface, "up")
        ip("-n", name, "link", "set", "eth0", "up")
        return name

    @staticmethod
    def _take_radio(radio: Radio, namespace: str, interface: str) -> None:
        """The radio's phy (and its interface) into ``namespace``, renamed ``interface``."""
        subprocess.run(
            ["iw", "phy", radio.phy, "set", "netns", "name", namespace],
            check=True, capture_output=True, timeout=10,
        )  # fmt: skip
        ip("-n", namespace, "link", "set", radio.netdev, "name", interface)
        ip("-n", namespace, "link", "set", interface, "up")

    def set_address(self, namespace: str, address: str) -> None:
        """Give the station in ``namespace`` its leased ``address/prefix``."""
        ip("-n", namespace, "addr", "add", address, "dev", self.station_interface)

    def exec(self, namespace: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", namespace, *argv]

    def close(self) -> None:
        for name in [*self.stations, self.gateway]:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@dataclass(frozen=True)
class Lease:
    address: IPv4Address
    server: IPv4Address
    netmask: IPv4Address


def _options(*pairs: tuple[int, bytes]) -> bytes:
    return b"".join(bytes([code, len(value)]) + value for code, value in pairs) + b"\xff"


def dhcp_packet(xid: int, mac: bytes, kind: int, *extra: tuple[int, bytes]) -> bytes:
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, BROADCAST_FLAG,
        b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, mac.ljust(16, b"\0"), b"", b"",
    )  # fmt: skip
    return header + MAGIC + _options((53, bytes([kind])), *extra)


def parse_reply(data: bytes, xid: int) -> tuple[int, IPv4Address, dict[int, bytes]] | None:
    """(message type, your address, options) of a server's reply to ``xid``; None otherwise."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    if struct.unpack("!I", data[4:8])[0] != xid:
        return None
    options: dict[int, bytes] = {}
    at = 240
    while at < len(data) and data[at] != 0xFF:
        if data[at] == 0:
            at += 1
            continue
        if at + 1 >= len(data):
            return None
        size = data[at + 1]
        options[data[at]] = data[at + 2 : at + 2 + size]
        at += 2 + size
    kind = options.get(53, b"\0")[0]
    return kind, IPv4Address(data[16:20]), options


def mac_of(namespace: str, interface: str) -> bytes:
    done = subprocess.run(
        ["ip", "-n", namespace, "-br", "link", "show", interface],
        check=True, capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    return bytes.fromhex(done.stdout.split()[2].replace(":", ""))


async def lease(
    namespace: str,
    interface: str = "eth0",
    *,
    tries: int = 3,
    wait: float = 2.0,
    rounds: int = 10,
) -> Lease:
    """DISCOVER, OFFER, REQUEST, ACK from ``interface`` in ``namespace``. ``DhcpRefusedError`` when
    no offer comes within ``tries`` DISCOVERs ``wait`` s apart, or after ``rounds`` NAKs: the
    server offers a free address to every client that asks until one of them requests it, so
    a room asking at once sees NAKs, and each starts over (RFC 2131 3.1) after a random pause
    of up to a second, as a board's DHCP client does, instead of all asking again at once."""
    mac = mac_of(namespace, interface)
    with inside(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())
        sock.bind(("0.0.0.0", DHCP_CLIENT))
        sock.setblocking(False)
        for _ in range(rounds):
            xid = secrets.randbits(32)
            discover = dhcp_packet(xid, mac, DISCOVER)
            _, address, options = await _exchange(
                sock, discover, xid, OFFER, tries=tries, wait=wait
            )
            server = options[54]
            request = dhcp_packet(xid, mac, REQUEST, (50, address.packed), (54, server))
            try:
                _, address, options = await _exchange(
                    sock, request, xid, ACK, tries=tries, wait=wait
                )
            except NakError:
                await asyncio.sleep(random.uniform(0, NAK_BACKOFF))
                continue
            return Lease(address, IPv4Address(server), IPv4Address(options[1]))
        raise DhcpRefusedError(f"NAK in each of {rounds} rounds")


async def _exchange(
    sock: socket.socket, packet: bytes, xid: int, want: int, *, tries: int, wait: float
) -> tuple[int, IPv4Address, dict[int, bytes]]:
    loop = asyncio.get_running_loop()
    for _ in range(tries):
        await loop.sock_sendto(sock, packet, ("255.255.255.255", DHCP_SERVER))
        try:
            async with asyncio.timeout(wait):
                while True:
                    reply = parse_reply((await loop.sock_recvfrom(sock, 1500))[0], xid)
                    if reply is not None and reply[0] == NAK:
                        raise NakError
                    if reply is not None and reply[0] == want:
                        return reply
        except TimeoutError:
            continue
    raise DhcpRefusedError(f"no reply of type {want} to {tries} requests")


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def mqtt_connect_packet(client_id: str, user: str, password: str, keepalive: int = 60) -> bytes:
    """MQTT 3.1.1 CONNECT: clean session, user name and password."""
    body = _utf8("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keepalive)
    body += _utf8(client_id) + _utf8(user) + _utf8(password)
    size, length = len(body), bytearray()
    while True:
        size, digit = divmod(size, 128)
        length.append(digit | (0x80 if size else 0))
        if not size:
            break
    return bytes([0x10]) + bytes(length) + body


async def mqtt_connect(
    namespace: str, host: str, port: int, *, user: str, password: str, client_id: str
) -> tuple[socket.socket, int | None]:
    """A TCP connection from ``namespace`` and the broker's CONNACK return code (0: accepted),
    or None when the broker closed the connection without one. The socket stays open."""
    with inside(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(10):
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, mqtt_connect_packet(client_id, user, password))
            reply = b""
            while len(reply) < 4:
                chunk = await loop.sock_recv(sock, 4 - len(reply))
                if not chunk:
                    return sock, None
                reply += chunk
    except ConnectionError:
        return sock, None
    except BaseException:
        sock.close()
        raise
    return sock, reply[3] if reply[:2] == b"\x20\x02" else None
