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
- ``chain`` (a measurement, after ``result``): ``systemd-analyze time`` and the critical
  chains of the broker and the coordinator, what the gateway's readiness waited on;
- ``wakeups`` (a measurement, never a failure; after ``result``): how often the gateway's
  own processes wake up when idle, per unit and in total, against the OS alone (see
  :func:`check_wakeups`).

Exits 1 if any check failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
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


# What the gateway's readiness waited on this boot: a measurement, never a failure.
CHAIN_UNITS = ("msgflo-coordinator.service", "msgflo-broker.service")
BLAME_LINES = 12
JOURNAL_LINES = 12  # the first of each unit's this boot: its start-up


def report_boot_chain() -> None:
    """``chain: ...`` lines: ``systemd-analyze time``, the critical chain of the units the
    host's "ready" waits for (the broker, the coordinator), with when each unit in it became
    active and how long it took to start, the slowest units (``blame``), and the first lines
    each of those units logged this boot, on the boot's clock (what their start-up did when)."""
    # systemd-analyze reports only once the boot has finished (every start job done).
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            ["systemctl", "is-system-running", "--wait"],
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip
    everything = None
    commands: list[tuple[list[str], int | None]] = [(["systemd-analyze", "time"], everything)]
    commands += [(["systemd-analyze", "critical-chain", "--no-pager", unit], everything)
                 for unit in CHAIN_UNITS]  # fmt: skip
    # The slowest units to start, oneshots included (critical-chain shows only active units).
    commands.append((["systemd-analyze", "blame", "--no-pager"], BLAME_LINES))
    commands += [(["journalctl", "-b", "-o", "short-monotonic", "--no-pager", "-u", unit],
                  JOURNAL_LINES) for unit in CHAIN_UNITS]  # fmt: skip
    for argv, limit in commands:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        lines = [line for line in (done.stdout or done.stderr).splitlines() if line.strip()]
        for line in lines[:limit]:
            if not line.startswith("The time"):
                print(f"{PREFIX} chain: {line.rstrip()}", flush=True)


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
    report_boot_chain()
    # After the result: the host's tests that wait for it are not kept waiting, and the
    # gateway is idle by now (the radios' stations are gone).
    check_wakeups(Path("/proc"))
    return 0 if all(results) else 1


# --- Idle wakeups ------------------------------------------------------------------------
#
# A CPU that sleeps saves power; every time a task is woken the core leaves its idle state.
# The kernel counts, per task (thread), how often it was switched out: voluntarily (it blocked,
# i.e. went to sleep and was later woken) and involuntarily (it was preempted while running).
# Each switch out is followed by one switch in, so their sum is the number of times the task
# was put on a CPU: the wakeups it caused, plus the preemptions of a busy task, which an idle
# system hardly has. /proc/<pid>/task/<tid>/schedstat's third field counts the same "times
# scheduled in", but only with CONFIG_SCHED_INFO; the status file's two counters are in every
# kernel, so they are what is read. Counters taken at the start and end of a window give the
# rate; what they cannot see: ticks that wake a core without waking a task (the machine's
# interrupt rate is reported beside, as an upper bound), and tasks that exit within the window
# (counted and reported, their last switches are lost).

WAKEUP_WINDOW = 30.0  # seconds per window
WAKEUP_WINDOWS = 3  # the quietest counts: the host may still be talking to the kit in one
WAKEUP_SETTLE = 10.0  # seconds after the other checks before the first window
WAKEUP_GOAL = 5.0  # wakeups per second, all the gateway's own processes together
KERNEL = "kernel"
OS = "os"
PARTICIPANTS = "participants"
# The coordinator's children are the graph's participants (the demo's simulated devices on
# the kit): the user's processes, not the gateway's, so they are reported on their own.
PARTICIPANT_UNITS = frozenset({"msgflo-coordinator.service"})
MEASURER_UNIT = "msgflo-selftest.service"
# A template's instances sit in a slice of their own under system.slice:
# /system.slice/system-msgflo\x2dbridge.slice/msgflo-bridge@serial.service.
_UNIT = re.compile(r"^/system\.slice/(?:[^/]+\.slice/)*(msgflo-[^/]+\.service)(?:/|$)")


@dataclass(frozen=True)
class TaskCount:
    """One thread's switch counters, with what its process says about where it belongs."""

    pid: int
    tid: int
    ppid: int
    switches: int  # voluntary_ctxt_switches + nonvoluntary_ctxt_switches
    kernel: bool  # a kernel thread
    cgroup: str  # the process's cgroup v2 path, "/system.slice/x.service"


@dataclass(frozen=True)
class WakeupRates:
    """Wakeups per second of each group over one window."""

    seconds: float
    per_group: Mapping[str, float]
    tasks_gone: int  # tasks that exited in the window: their last switches are not counted

    def total(self, groups: Iterable[str]) -> float:
        return sum(self.per_group.get(group, 0.0) for group in groups)


def status_fields(text: str) -> dict[str, str]:
    """``Key:\tvalue`` lines of a /proc status file."""
    return {
        key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())
    }


def cgroup_path(text: str) -> str:
    """The cgroup v2 path of /proc/<pid>/cgroup (``0::/path``), or the systemd v1 one."""
    lines = text.splitlines()
    unified = [line[3:] for line in lines if line.startswith("0::")]
    named = [line.split(":", 2)[2] for line in lines if ":name=systemd:" in line]
    return (unified or named or [""])[0]


def read_process(proc: Path, pid: int) -> list[TaskCount]:
    """The counters of every thread of ``pid``; empty when it exited while being read."""
    try:
        cgroup = cgroup_path((proc / str(pid) / "cgroup").read_text(encoding="utf-8"))
        leader = status_fields((proc / str(pid) / "status").read_text(encoding="utf-8"))
        tids = [int(name) for name in os.listdir(proc / str(pid) / "task") if name.isdigit()]
    except (OSError, ValueError):
        return []
    ppid = int(leader.get("PPid", "0") or 0)
    kernel = leader.get("Kthread") == "1" or pid == 2 or ppid == 2
    tasks = []
    for tid in tids:
        try:
            fields = status_fields((proc / str(pid) / "task" / str(tid) / "status").read_text())
            switches = int(fields["voluntary_ctxt_switches"]) + int(
                fields["nonvoluntary_ctxt_switches"]
            )
        except (OSError, KeyError, ValueError):
            continue  # the thread exited between the listing and the read
        tasks.append(TaskCount(pid, tid, ppid, switches, kernel, cgroup))
    return tasks


def snapshot(proc: Path, skip: frozenset[int] = frozenset()) -> dict[int, TaskCount]:
    """Every thread of every process under ``proc`` but those in ``skip``, by thread id."""
    pids = [int(name) for name in os.listdir(proc) if name.isdigit()]
    return {task.tid: task for pid in pids if pid not in skip for task in read_process(proc, pid)}


def unit_of(cgroup: str) -> str | None:
    found = _UNIT.search(cgroup)
    return found.group(1) if found and found.group(1) != MEASURER_UNIT else None


def unit_groups(tasks: Mapping[int, TaskCount]) -> dict[int, str]:
    """Each process's group: its gateway unit, ``participants`` for the coordinator's
    children, ``kernel`` for kernel threads, else ``os``."""
    units = {task.pid: unit_of(task.cgroup) for task in tasks.values()}
    groups = {}
    for task in tasks.values():
        unit = units[task.pid]
        if unit is None:
            groups[task.pid] = KERNEL if task.kernel else OS
        elif unit in PARTICIPANT_UNITS and units.get(task.ppid) == unit:
            groups[task.pid] = PARTICIPANTS
        else:
            groups[task.pid] = unit
    return groups


def wakeup_rates(
    before: Mapping[int, TaskCount],
    after: Mapping[int, TaskCount],
    group_of: Mapping[int, str],
    seconds: float,
) -> WakeupRates:
    """Counters at the start and end of a window -> wakeups per second of each group.

    A thread seen only at the end started in the window: all its switches count. A thread id
    that now belongs to another process, or whose counter went down, was reused: the same.
    A thread seen only at the start exited: counted in ``tasks_gone``. A process with no
    group in ``group_of`` is left out (it is not being measured).
    """
    counts: dict[str, int] = {}
    for tid, end in after.items():
        group = group_of.get(end.pid)
        if group is None:
            continue
        start = before.get(tid)
        same = start is not None and start.pid == end.pid and start.switches <= end.switches
        delta = end.switches - start.switches if same and start is not None else end.switches
        counts[group] = counts.get(group, 0) + delta
    gone = sum(1 for tid, start in before.items() if tid not in after and start.pid in group_of)
    rates = {group: count / seconds for group, count in sorted(counts.items())}
    return WakeupRates(seconds, rates, gone)


def interrupts(proc: Path) -> int:
    """The machine's interrupts since boot (/proc/stat's ``intr`` total)."""
    for line in (proc / "stat").read_text(encoding="utf-8").splitlines():
        if line.startswith("intr "):
            return int(line.split()[1])
    return 0


def measure_window(
    proc: Path,
    seconds: float,
    grouping: Callable[[Mapping[int, TaskCount]], Mapping[int, str]] = unit_groups,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[WakeupRates, float]:
    """One window's rates (threads grouped at its end) and the interrupts per second.

    The time is taken in the middle of each snapshot: reading a few hundred status files
    takes a while on a slow board."""
    skip = frozenset({os.getpid()})
    started = clock()
    irq_before = interrupts(proc)
    before = snapshot(proc, skip)
    start = (started + clock()) / 2
    sleep(seconds)
    ending = clock()
    after = snapshot(proc, skip)
    irq_after = interrupts(proc)
    elapsed = (ending + clock()) / 2 - start
    rates = wakeup_rates(before, after, grouping(after), elapsed)
    return rates, (irq_after - irq_before) / elapsed


def gateway_groups(rates: WakeupRates) -> list[str]:
    return [group for group in rates.per_group if group.startswith("msgflo-")]


def check_wakeups(
    proc: Path,
    windows: int = WAKEUP_WINDOWS,
    seconds: float = WAKEUP_WINDOW,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Report the quietest of ``windows`` windows (lowest gateway total); never fails."""
    try:
        sleep(WAKEUP_SETTLE)
        measured = [measure_window(proc, seconds, sleep=sleep, clock=clock) for _ in range(windows)]
    except OSError as error:  # a measurement: say why there is none, and carry on
        report("wakeups", f"unmeasured:{type(error).__name__}")
        return
    totals = [rates.total(gateway_groups(rates)) for rates, _ in measured]
    rates, irq = measured[totals.index(min(totals))]
    report("wakeups_counter", "ctxt_switches")
    report("wakeups_window", f"{rates.seconds:.1f}")
    report("wakeups_windows", ",".join(f"{total:.2f}" for total in totals))
    for unit in gateway_groups(rates):
        report(f"wakeups[{unit}]", f"{rates.per_group[unit]:.2f}")
    gateway = rates.total(gateway_groups(rates))
    report("wakeups_gateway_total", f"{gateway:.2f}")
    report("wakeups_participants", f"{rates.per_group.get(PARTICIPANTS, 0.0):.2f}")
    report("wakeups_os", f"{rates.total((OS, KERNEL)):.2f}")
    report("wakeups_kernel", f"{rates.per_group.get(KERNEL, 0.0):.2f}")
    report("wakeups_interrupts", f"{irq:.2f}")
    report("wakeups_tasks_gone", str(rates.tasks_gone))
    report("wakeups_goal", "met" if gateway < WAKEUP_GOAL else "missed")
