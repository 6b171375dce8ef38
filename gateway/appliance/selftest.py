"""``gateway-run selftest``: check, from inside the gateway, what only the device can see.

Run by ``msgflo-selftest.service`` (not enabled; boot with ``systemd.wants=`` it, as the QEMU
boot test does, or ``systemctl start`` it on a kit). Prints one ``msgflo-selftest: key=value``
line per finding, on the console:

- ``root``: the root filesystem's type (``overlay`` with overlayroot) and whether its lower,
  real filesystem is mounted read-only;
- ``security``: ``systemd-analyze security``'s exposure of each gateway unit as loaded (below
  5.0, "OK" or better, passes);
- ``secret``: mode, owner and group of each secrets file (see ``SECRET_FILES``);
- ``journal_secrets``: that the WiFi passphrase, the runtime secret and the admin password
  appear nowhere in this boot's journal;
- ``wifi``: a second radio (a USB WiFi stick, or ``mac80211_hwsim`` in QEMU) first tries the
  access point with a wrong passphrase (must not be let in), then with the right one (must
  be authorized by hostapd), then asks dnsmasq for an address and the gateway's name;
- ``wifi_room``: with :data:`ROOM` more radios (QEMU's ``mac80211_hwsim.radios=``), that many
  stations associate at once with WPA2 and each gets its own lease (a kit with fewer radios
  reports how many it has and passes).

Exits 1 if any check failed.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.appliance.credentials import group_name, user_name
from gateway.appliance.secrets import Secrets, SecretsLayout, passphrase, runtime_secret, ssid
from gateway.config import BridgesConfig, GatewayConfig
from gateway.errors import GatewayError
from gateway.wifi.hostapd_client import DEFAULT_CTRL, HostapdClient

PREFIX = "msgflo-selftest:"
ROOM = 5  # stations the room check connects at once, when the machine has that many radios
AP_CTRL = Path(DEFAULT_CTRL).parent
# Long-running units that must be up (first boot is a oneshot that exits).
UNITS = (
    "msgflo-broker",
    "msgflo-coordinator",
    "msgflo-dashboard.socket",
    "msgflo-bridge@serial",
    "msgflo-bridge@health",
    "msgflo-ap",
    "msgflo-dhcp",
)
# Every gateway unit that runs a process, as systemd-analyze security rates it.
SECURITY_UNITS = (
    "msgflo-broker.service",
    "msgflo-coordinator.service",
    "msgflo-bridge@serial.service",
    "msgflo-bridge@ble.service",
    "msgflo-bridge@rf433.service",
    "msgflo-bridge@health.service",
    "msgflo-bridge@gpio.service",
    "msgflo-users.service",
    "msgflo-adopt.service",
    "msgflo-devices.service",
    "msgflo-poweroff.service",
    "msgflo-ap.service",
    "msgflo-dhcp.service",
    "msgflo-clock.service",
    "msgflo-clock-save.service",
    "msgflo-firstboot.service",
    "msgflo-selftest.service",
)
MAX_EXPOSURE = 5.0  # systemd 252: below 5.0 is "OK" (below 1.0 "SAFE"), from 5.0 "MEDIUM"
# Mode, owner and group of each file under <data_dir>/secrets on the appliance.
SECRET_FILES = {
    "secrets.json": (0o600, "root", "root"),
    "ca.key": (0o600, "root", "root"),
    "mosquitto.passwd": (0o640, "root", "mosquitto"),
    "mosquitto.acl": (0o640, "root", "mosquitto"),
    "server.key": (0o640, "root", "mosquitto"),
    "coordinator.json": (0o640, "root", "msgflo-coordinator"),
    # every bridge the config knows has its user, enabled or not (it may be enabled later)
    **{f"bridge-{name}.json": (0o640, "root", "msgflo-bridge") for name in BridgesConfig.names()},
    "ca.crt": (0o644, "root", "root"),
    "server.crt": (0o644, "root", "root"),
}
SECRETS_DIR_MODE = 0o751


def report(key: str, value: str) -> None:
    print(f"{PREFIX} {key}={value}", flush=True)


def mounts() -> list[tuple[str, str, str, str]]:
    """(device, mount point, type, options) from /proc/self/mounts, in mount order."""
    rows = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    return [tuple(row.split()[:4]) for row in rows if len(row.split()) >= 4]  # type: ignore[misc]


def check_root() -> bool:
    table = mounts()
    root = [m for m in table if m[1] == "/"][-1]
    lower = [m for m in table if m[1] == "/media/root-ro"]
    lower_ro = bool(lower) and "ro" in lower[-1][3].split(",")
    report("root_fstype", root[2])
    report("root_lower", "ro" if lower_ro else "missing-or-rw")
    if not lower_ro:
        report("mounts", ";".join(f"{m[1]}:{m[2]}:{m[3].split(',')[0]}" for m in table))
    return root[2] == "overlay" and lower_ro


def client_interface(ap_interface: str) -> str | None:
    names = sorted(os.listdir("/sys/class/net"))
    return next((n for n in names if n.startswith("wlan") and n != ap_interface), None)


def supplicant_conf(network_ssid: str, psk: str) -> str:
    """wpa_supplicant's configuration for joining the AP with WPA2 (RSN, CCMP) only."""
    escaped = psk.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'network={{\n  ssid="{network_ssid}"\n  psk="{escaped}"\n'
        "  key_mgmt=WPA-PSK\n  proto=RSN\n  pairwise=CCMP\n}\n"
    )


def supplicant(
    interface: str, network_ssid: str, psk: str, run_dir: Path
) -> subprocess.Popen[bytes]:
    conf = run_dir / f"selftest-{interface}.conf"
    conf.write_text(supplicant_conf(network_ssid, psk), encoding="utf-8")
    conf.chmod(0o600)
    return subprocess.Popen(
        ["wpa_supplicant", "-i", interface, "-D", "nl80211", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def authorized_stations(ctrl: Path, count: int, wait: float) -> set[str]:
    """The MACs hostapd authorized, once there are ``count`` of them or ``wait`` s passed."""
    deadline = time.monotonic() + wait
    async with HostapdClient.connect(str(ctrl), timeout=5) as hostapd:
        while True:
            macs = {str(s.mac) for s in await hostapd.stations() if s.authorized}
            if len(macs) >= count or time.monotonic() > deadline:
                return macs
            await asyncio.sleep(0.5)


async def authorized_station(ctrl: Path, wait: float) -> str | None:
    macs = await authorized_stations(ctrl, 1, wait)
    return min(macs) if macs else None


async def wait_for_ap(ctrl: Path, wait: float) -> str:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if os.path.exists(ctrl):  # noqa: ASYNC240 (a stat in a once-a-second poll)
            try:
                async with HostapdClient.connect(str(ctrl), timeout=2) as hostapd:
                    status = await hostapd.status()
                    if status.state.value == "ENABLED":
                        return status.ssid or ""
            except GatewayError:
                pass
        await asyncio.sleep(1)
    raise GatewayError(f"the access point's control socket {ctrl} did not answer in {wait:.0f} s")


@dataclass(frozen=True)
class Radio:
    """The second radio, as a client of the gateway's own access point."""

    interface: str
    network: str
    ctrl: Path
    run_dir: Path

    def attempt(self, psk: str, wait: float) -> str | None:
        """The MAC hostapd authorized with this passphrase, or None after ``wait`` s."""
        process = supplicant(self.interface, self.network, psk, self.run_dir)
        try:
            return asyncio.run(authorized_station(self.ctrl, wait))
        finally:
            process.terminate()
            process.wait(10)


def lease(interface: str) -> str | None:
    """The address dnsmasq offers ``interface`` (not configured on it), or None."""
    done = subprocess.run(
        ["busybox", "udhcpc", "-i", interface, "-n", "-q", "-f", "-t", "8", "-s", "/bin/true"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    found = re.search(r"lease of (\S+) obtained", done.stdout + done.stderr)
    return found.group(1) if found else None


def dhcp_and_name(config: GatewayConfig, radio: Radio, psk: str) -> bool:
    interface = radio.interface
    process = supplicant(interface, radio.network, psk, radio.run_dir)
    try:
        asyncio.run(authorized_station(radio.ctrl, 30))
        found = lease(interface)
        report("wifi_dhcp_lease", found or "none")
        gateway_ip = str(config.access_point.address.ip)
        lookup = subprocess.run(
            ["busybox", "nslookup", config.access_point.hostname, gateway_ip],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        resolved = gateway_ip in lookup.stdout.split("Name:")[-1]
        report("wifi_name", f"{config.access_point.hostname}->{gateway_ip if resolved else 'none'}")
        return bool(found) and resolved
    finally:
        process.terminate()
        process.wait(10)


def check_wifi(config: GatewayConfig, secrets: Secrets, run_dir: Path) -> bool:
    ap = config.access_point
    if not ap.enabled:
        report("wifi", "access-point-disabled")
        return True
    interface = client_interface(ap.interface)
    if interface is None:
        report("wifi", "no-second-radio")
        return False
    radio = Radio(interface, ssid(ap, secrets), AP_CTRL / ap.interface, run_dir)
    report("wifi_ap_ssid", asyncio.run(wait_for_ap(radio.ctrl, 90)))
    wrong = radio.attempt("not-the-passphrase-" + secrets.device_id[:8], 12)
    report("wifi_wrong_passphrase", "refused" if wrong is None else f"authorized:{wrong}")
    psk = passphrase(ap, secrets)
    right = radio.attempt(psk, 45)
    report("wifi_client", f"authorized:{right}" if right else "refused")
    named = dhcp_and_name(config, radio, psk) if right else False
    room = check_room(radio, ap.interface, psk) if named else False
    return wrong is None and right is not None and named and room


def check_room(radio: Radio, ap_interface: str, psk: str) -> bool:
    """:data:`ROOM` stations at once, each authorized and given its own address."""
    names = sorted(
        n for n in os.listdir("/sys/class/net") if n.startswith("wlan") and n != ap_interface
    )[:ROOM]
    if len(names) < ROOM:
        report("wifi_room", f"radios:{len(names)}")
        return True
    processes = [supplicant(name, radio.network, psk, radio.run_dir) for name in names]
    try:
        macs = asyncio.run(authorized_stations(radio.ctrl, ROOM, 60))
        report("wifi_room_authorized", str(len(macs)))
        leases = {found for found in map(lease, names) if found}
        report("wifi_room_leases", str(len(leases)))
        return len(macs) == ROOM and len(leases) == ROOM
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


def exposure(output: str) -> tuple[float, str] | None:
    """(exposure, rating) from ``systemd-analyze security UNIT``'s last line."""
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", output)
    return (float(found.group(1)), found.group(2)) if found else None


def check_security() -> bool:
    healthy = True
    for unit in SECURITY_UNITS:
        result = subprocess.run(
            ["systemd-analyze", "security", "--no-pager", unit],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        rated = exposure(result.stdout)
        report(f"security[{unit}]", f"{rated[0]}:{rated[1]}" if rated else "unknown")
        healthy = healthy and rated is not None and rated[0] < MAX_EXPOSURE
    return healthy


def file_state(path: Path) -> str:
    """``0640:root:mosquitto``."""
    info = path.stat()
    return f"{stat.S_IMODE(info.st_mode):04o}:{user_name(info.st_uid)}:{group_name(info.st_gid)}"


def check_secret_files(config: GatewayConfig) -> bool:
    """Each secrets file as ``SECRET_FILES`` says, and no other file readable by others."""
    directory = SecretsLayout.at(config.data_dir).directory
    healthy = stat.S_IMODE(directory.stat().st_mode) == SECRETS_DIR_MODE
    report("secret_dir", file_state(directory))
    for path in sorted(directory.iterdir()):
        state = file_state(path)
        wanted = SECRET_FILES.get(path.name)
        if wanted is None:
            ok = not stat.S_IMODE(path.stat().st_mode) & 0o077
        else:
            ok = state == f"{wanted[0]:04o}:{wanted[1]}:{wanted[2]}"
        report(f"secret[{path.name}]", state if ok else f"{state}:wrong")
        healthy = healthy and ok
    missing = [name for name in SECRET_FILES if not (directory / name).exists()]
    if missing:
        report("secret_missing", ",".join(missing))
    return healthy and not missing


def check_journal(config: GatewayConfig, secrets: Secrets) -> bool:
    """None of the secrets a human is given appears in this boot's journal."""
    journal = subprocess.run(
        ["journalctl", "-b", "--no-pager", "-o", "cat"],
        capture_output=True, text=True, timeout=120, check=False,
    ).stdout  # fmt: skip
    values = {
        "wifi_passphrase": passphrase(config.access_point, secrets),
        "runtime_secret": runtime_secret(config.runtime, secrets),
        "admin_password": secrets.mqtt_passwords.get("admin", ""),
    }
    found = [name for name, value in values.items() if value and value in journal]
    report("journal_lines", str(journal.count("\n")))
    report("journal_secrets", "absent" if not found else "present:" + ",".join(found))
    return not found


def print_journal(unit: str, lines: int) -> None:
    journal = subprocess.run(
        ["journalctl", "--no-pager", "-o", "cat", "-n", str(lines), "-u", unit],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    for line in journal.stdout.splitlines():
        print(f"{PREFIX} journal[{unit}]: {line}", flush=True)


def check_units() -> bool:
    """Each gateway unit's state; the journal's last lines of any that is not running, and
    always the coordinator's (what it started, and how that went) and its processes."""
    healthy = True
    for unit in UNITS:
        state = subprocess.run(
            ["systemctl", "is-active", unit], capture_output=True, text=True, check=False
        ).stdout.strip()
        report(f"unit[{unit}]", state)
        if state != "active":
            healthy = False
            print_journal(unit, 20)
    print_journal("msgflo-coordinator", 30)
    print_journal("msgflo-users", 5)
    status = subprocess.run(
        ["systemctl", "status", "--no-pager", "-n", "0", "msgflo-coordinator"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    for line in status.stdout.splitlines():
        print(f"{PREFIX} status[msgflo-coordinator]: {line}", flush=True)
    return healthy


def run_selftest(config: GatewayConfig, secrets: Secrets, run_dir: Path) -> int:
    # The hostapd client's reply socket goes here, not in /tmp: hostapd's /tmp is its own.
    tempfile.tempdir = str(run_dir)
    results = [
        check_units(),
        check_security(),
        check_secret_files(config),
        check_journal(config, secrets),
        check_root(),
        check_wifi(config, secrets, run_dir),
    ]
    report("result", "pass" if all(results) else "fail")
    return 0 if all(results) else 1
