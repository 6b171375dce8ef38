"""The systemd units in services/: valid for systemd, and ordered and restarted as promised."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.appliance.adopt import REQUESTS
from gateway.appliance.device_requests import (
    DOWNLOADS,
    PROVISION_REQUESTS,
    PROVISION_RESULTS,
)
from gateway.appliance.device_requests import REQUESTS as DEVICE_REQUESTS
from gateway.appliance.render import HOSTAPD_CTRL_GROUP
from gateway.appliance.selftest import MAX_EXPOSURE, SECURITY_UNITS, exposure
from gateway.appliance.selftest import UNITS as UNIT_STATES
from gateway.appliance.services import DASHBOARD_SOCKET
from gateway.config import DEFAULT_DATA_DIR

UNITS = Path(__file__).resolve().parents[2] / "services" / "systemd"
LONG_RUNNING = ("msgflo-broker", "msgflo-coordinator", "msgflo-bridge@", "msgflo-ap", "msgflo-dhcp")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def words(name: str, section: str, key: str) -> set[str]:
    return set(unit(name).get(section, key, fallback="").split())


def every(name: str, key: str) -> list[str]:
    """Each value of ``key`` in the file, in order (configparser keeps only the last of a key
    given twice, which systemd adds up, or resets with an empty one)."""
    lines = (UNITS / name).read_text(encoding="utf-8").splitlines()
    return [line.split("=", 1)[1] for line in lines if line.startswith(f"{key}=")]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_every_unit() -> None:
    files = sorted(str(p) for p in UNITS.iterdir() if p.is_file())  # not the drop-in folders
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    # The gateway's commands are installed on the appliance, not on this machine.
    absent = re.compile(r"Command /usr/local/bin/gateway-\S+ is not executable")
    problems = [line for line in result.stderr.splitlines() if line and not absent.search(line)]
    assert problems == []


def enabled_by_install() -> list[str]:
    """The units services/install.sh enables in an image's root."""
    script = (UNITS.parent / "install.sh").read_text(encoding="utf-8")
    found = re.search(r'systemctl --root="\$root" enable (.*?)>/dev/null', script, re.DOTALL)
    assert found is not None
    return found.group(1).replace("\\", " ").split()


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or shutil.which("systemctl") is None,
    reason="systemd not installed",
)
def test_the_boot_as_enabled_has_no_ordering_cycle(tmp_path: Path) -> None:
    """A cycle passes ``verify`` of each file alone, but at boot systemd breaks it by dropping
    one of its jobs, a different one from boot to boot: start multi-user.target, with this
    machine's own systemd units and ours enabled as services/install.sh enables them."""
    units = tmp_path / "etc" / "systemd" / "system"
    shutil.copytree(UNITS, units)
    subprocess.run(
        ["systemctl", f"--root={tmp_path}", "enable", *enabled_by_install()],
        capture_output=True, check=True,
    )  # fmt: skip
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "multi-user.target"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"},  # ":": then the usual ones
    )  # fmt: skip
    assert "msgflo-dashboard.socket" in enabled_by_install()
    assert [line for line in result.stderr.splitlines() if "cycle" in line] == []


def test_broker_and_coordinator_then_bridges() -> None:
    # Started together: the coordinator's start-up overlaps the broker's (boot to ready).
    assert "msgflo-broker.service" not in words("msgflo-coordinator.service", "Unit", "After")
    assert "msgflo-broker.service" in words("msgflo-coordinator.service", "Unit", "Requires")
    bridge_after = words("msgflo-bridge@.service", "Unit", "After")
    assert {"msgflo-broker.service", "msgflo-coordinator.service"} <= bridge_after
    first = words("msgflo-firstboot.service", "Unit", "Before")
    assert {"msgflo-broker.service", "msgflo-coordinator.service", "msgflo-ap.service"} <= first


def test_long_running_units_restart_with_limits() -> None:
    for name in LONG_RUNNING:
        parsed = unit(f"{name}.service")
        assert parsed.get("Service", "Restart") == "on-failure", name
        assert int(parsed.get("Unit", "StartLimitBurst")) > 0, name
        assert int(parsed.get("Unit", "StartLimitIntervalSec")) > 0, name


def test_first_boot_runs_once_and_selftest_is_not_enabled() -> None:
    condition = unit("msgflo-firstboot.service").get("Unit", "ConditionPathExists")
    assert condition == "!/var/lib/msgflo-gateway/provisioned"
    assert not unit("msgflo-selftest.service").has_section("Install")


def test_access_point_follows_its_interface() -> None:
    ap = unit("msgflo-ap.service")
    assert ap.get("Unit", "BindsTo") == "sys-subsystem-net-devices-wlan0.device"
    rules = (UNITS.parent / "udev" / "90-msgflo-ap.rules").read_text(encoding="utf-8")
    assert 'SYSTEMD_WANTS}+="msgflo-ap.service' in rules


RUNS_AS = {
    "msgflo-broker.service": "mosquitto",
    "msgflo-coordinator.service": "msgflo-coordinator",
    "msgflo-bridge@.service": "msgflo-bridge",
    "msgflo-clock.service": "systemd-timesync",
    "msgflo-clock-save.service": "systemd-timesync",
}
# Root, with only these capabilities (what each truly needs).
ROOT_WITH = {
    "msgflo-ap.service": {"CAP_NET_ADMIN", "CAP_NET_RAW"},
    "msgflo-dhcp.service": {
        "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID",
        "CAP_CHOWN",
    },
    "msgflo-firstboot.service": {"CAP_CHOWN", "CAP_FOWNER"},
    "msgflo-users.service": {"CAP_CHOWN"},
    "msgflo-adopt.service": set(),
    "msgflo-devices.service": {"CAP_CHOWN"},
    "msgflo-selftest.service": {"CAP_NET_ADMIN", "CAP_NET_RAW"},
}  # fmt: skip


def test_each_unit_runs_as_its_own_user_or_as_root_with_few_capabilities() -> None:
    for name, user in RUNS_AS.items():
        parsed = unit(name)
        assert parsed.get("Service", "User") == user, name
        assert parsed.get("Service", "CapabilityBoundingSet") == "", name
    for name, capabilities in ROOT_WITH.items():
        parsed = unit(name)
        assert not parsed.has_option("Service", "User"), name
        assert words(name, "Service", "CapabilityBoundingSet") == capabilities, name
    for name in (*RUNS_AS, *ROOT_WITH):
        assert unit(name).get("Service", "NoNewPrivileges") == "yes", name
        assert unit(name).get("Service", "ProtectSystem") == "strict", name
    sysusers = (UNITS.parent / "system" / "sysusers.conf").read_text(encoding="utf-8")
    assert "u msgflo-coordinator " in sysusers and "u msgflo-bridge " in sysusers
    assert "m msgflo-bridge dialout" in sysusers


def test_the_serial_bridge_may_open_usb_serial_devices_only() -> None:
    parsed = unit("msgflo-bridge@.service")
    assert parsed.get("Service", "DevicePolicy") == "closed"
    allowed = [line for line in (UNITS / "msgflo-bridge@.service").read_text().splitlines()
               if line.startswith("DeviceAllow=")]  # fmt: skip
    assert allowed == ["DeviceAllow=char-ttyUSB rw", "DeviceAllow=char-ttyACM rw"]
    assert parsed.get("Service", "SupplementaryGroups") == "dialout"


def test_firstboot_keeps_the_passphrase_out_of_stdout() -> None:
    command = unit("msgflo-firstboot.service").get("Service", "ExecStart")
    assert "--console /dev/console" in command
    assert "--coordinator-user msgflo-coordinator --bridge-user msgflo-bridge" in command


def test_the_bridges_start_once_the_coordinators_runtime_listens() -> None:
    # Type=notify: the coordinator says READY=1 when its runtime protocol listens
    # (gateway.coordinator.run), and the bridges, ordered after it, start only then.
    coordinator = unit("msgflo-coordinator.service")
    assert coordinator.get("Service", "Type") == "notify"
    assert coordinator.get("Service", "NotifyAccess") == "main"
    assert "msgflo-coordinator.service" in words("msgflo-bridge@.service", "Unit", "After")


def test_new_graph_roles_get_broker_users() -> None:
    # Started by the coordinator, once it is ready: boot-to-ready neither waits for it nor
    # shares the CPU with it.
    assert "msgflo-users.service" in words("msgflo-coordinator.service", "Unit", "Wants")
    assert "msgflo-users.service" not in words("msgflo-coordinator.service", "Unit", "After")
    assert "msgflo-coordinator.service" in words("msgflo-users.service", "Unit", "After")
    assert "msgflo-broker.service" in words("msgflo-users.service", "Unit", "After")
    path = unit("msgflo-users.path").get("Path", "PathChanged")
    assert path == "/var/lib/msgflo-gateway/coordinator/graph.fbp"
    assert "msgflo-users.path" in (UNITS.parent / "install.sh").read_text()
    command = unit("msgflo-users.service").get("Service", "ExecStart")
    assert command.endswith("--reload msgflo-broker.service")


def test_adopted_boards_are_applied_by_root_and_restart_the_bridge() -> None:
    """The dashboard's request file (gateway.appliance.adopt), in the coordinator's state
    directory, starts the root service that writes gateway.yaml and restarts the bridge."""
    coordinator = unit("msgflo-coordinator.service")
    assert coordinator.get("Service", "ExecStart").endswith(" coordinator --adopt-by-request")
    state = coordinator.get("Service", "StateDirectory")
    requests = f"/var/lib/{state}/{REQUESTS.name}"
    assert Path(DEFAULT_DATA_DIR, REQUESTS) == Path(requests)
    path = unit("msgflo-adopt.path")
    assert path.get("Path", "PathExists") == requests  # level-triggered: nothing is missed
    assert path.get("Path", "Unit") == "msgflo-adopt.service"
    assert not words("msgflo-adopt.path", "Unit", "After")  # no cycle: see msgflo-users.path
    assert "msgflo-adopt.path" in enabled_by_install()
    service = unit("msgflo-adopt.service")
    assert service.get("Service", "Type") == "oneshot"
    command = service.get("Service", "ExecStart")
    assert command == "/usr/local/bin/gateway-run adopt --restart-bridges"
    # It removes the request from the coordinator's directory through the group, not DAC
    # override; it writes gateway.yaml's directory (the temp file) and nothing of the secrets.
    assert coordinator.get("Service", "StateDirectoryMode") == "0775"
    assert service.get("Service", "SupplementaryGroups") == coordinator.get("Service", "Group")
    assert words("msgflo-adopt.service", "Service", "ReadWritePaths") == {str(DEFAULT_DATA_DIR)}
    hidden = words("msgflo-adopt.service", "Service", "InaccessiblePaths")
    assert hidden == {f"-{DEFAULT_DATA_DIR}/secrets"}


def test_boards_added_on_the_dashboard_are_carried_out_by_root() -> None:
    """The dashboard's device requests (gateway.appliance.device_requests), in the
    coordinator's state directory, start the root service that changes the broker's users,
    reloads the broker and leaves each secrets.h in the coordinator's directory."""
    coordinator = unit("msgflo-coordinator.service")
    state = f"/var/lib/{coordinator.get('Service', 'StateDirectory')}"
    requests = f"{state}/{DEVICE_REQUESTS.name}"
    assert Path(DEFAULT_DATA_DIR, DEVICE_REQUESTS) == Path(requests)
    assert Path(DEFAULT_DATA_DIR, DOWNLOADS).parent == Path(state)
    path = unit("msgflo-devices.path")
    assert requests in every("msgflo-devices.path", "PathExists")
    assert path.get("Path", "Unit") == "msgflo-devices.service"
    assert not words("msgflo-devices.path", "Unit", "After")  # no cycle: see msgflo-users.path
    assert "msgflo-devices.path" in enabled_by_install()
    service = unit("msgflo-devices.service")
    assert service.get("Service", "Type") == "oneshot"
    command = service.get("Service", "ExecStart")
    assert command == "/usr/local/bin/gateway-run devices --reload msgflo-broker.service"
    # The coordinator's group, not DAC override, lets it write in the coordinator's directory.
    groups = words("msgflo-devices.service", "Service", "SupplementaryGroups")
    assert coordinator.get("Service", "Group") in groups
    assert {f"{DEFAULT_DATA_DIR}/secrets", state} <= {
        path for line in every("msgflo-devices.service", "ReadWritePaths") for path in line.split()
    }
    assert words("msgflo-devices.service", "Service", "RestrictAddressFamilies") == {"AF_UNIX"}
    assert "msgflo-devices.service" in SECURITY_UNITS


def test_boards_provisioned_over_usb_get_their_credentials_from_root() -> None:
    """The serial bridge's requests (gateway.appliance.device_requests.SERIAL_BRIDGE) in its
    own state directory, given by its drop-in, start the same root service, which answers in
    that directory through the bridges' group; the bridge asks instead of adding users."""
    drop_in = "msgflo-bridge@serial.service.d/provision.conf"
    bridge = unit(drop_in)
    state = f"/var/lib/{bridge.get('Service', 'StateDirectory')}"
    assert Path(DEFAULT_DATA_DIR, PROVISION_REQUESTS) == Path(state, PROVISION_REQUESTS.name)
    assert Path(DEFAULT_DATA_DIR, PROVISION_RESULTS).parent == Path(state)
    # Group-writable: root removes the request and makes the answers' directory through the
    # group; the template's user and group are the bridges'.
    assert bridge.get("Service", "StateDirectoryMode") == "0770"
    assert unit("msgflo-bridge@.service").get("Service", "Group") == "msgflo-bridge"
    assert str(DEFAULT_DATA_DIR) in bridge.get("Unit", "RequiresMountsFor")
    # ExecStart reset, then the one command, with the switch.
    assert every(drop_in, "ExecStart") == [
        "",
        "/usr/local/bin/gateway-run bridge serial --provision-by-request",
    ]
    assert every("msgflo-devices.path", "PathExists") == [
        f"{DEFAULT_DATA_DIR}/{DEVICE_REQUESTS}",
        f"{state}/{PROVISION_REQUESTS.name}",
    ]
    assert "msgflo-bridge" in words("msgflo-devices.service", "Service", "SupplementaryGroups")
    writable = every("msgflo-devices.service", "ReadWritePaths")
    assert f"-{state}" in writable  # "-": absent until the serial bridge has run


def test_systemd_binds_port_80_and_hands_it_to_the_coordinator() -> None:
    """Socket activation: port 80 without a capability for the coordinator."""
    socket_unit = unit("msgflo-dashboard.socket")
    assert socket_unit.get("Socket", "ListenStream") == "0.0.0.0:80"
    assert socket_unit.get("Socket", "FileDescriptorName") == DASHBOARD_SOCKET
    assert socket_unit.get("Socket", "Service") == "msgflo-coordinator.service"
    assert socket_unit.get("Install", "WantedBy") == "sockets.target"
    coordinator = unit("msgflo-coordinator.service")
    assert coordinator.get("Service", "Sockets") == "msgflo-dashboard.socket"
    assert coordinator.get("Service", "CapabilityBoundingSet") == ""
    assert "msgflo-dashboard.socket" in words("msgflo-coordinator.service", "Unit", "Wants")
    assert "msgflo-dashboard.socket" in words("msgflo-coordinator.service", "Unit", "After")
    install = (UNITS.parent / "install.sh").read_text(encoding="utf-8")
    assert install.count("msgflo-dashboard.socket") == 2  # enabled on / and in an image root
    assert "msgflo-dashboard.socket" in UNIT_STATES  # the self-test reports its state


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("name", SECURITY_UNITS)
def test_systemd_rates_every_unit_ok_or_better(name: str, tmp_path: Path) -> None:
    # As installed (services/install.sh), rated from the files alone: nothing is booted.
    units = tmp_path / "etc" / "systemd" / "system"
    shutil.copytree(UNITS, units)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={tmp_path}", "--no-pager",
         name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    rated = exposure(result.stdout)
    assert rated is not None, result.stdout + result.stderr
    assert rated[0] < MAX_EXPOSURE and rated[1] in ("OK", "SAFE", "PERFECT"), (name, rated)


def test_only_the_ble_bridge_may_reach_bluez_and_only_the_serial_bridge_udev() -> None:
    """Drop-ins widen one instance each: the BLE bridge joins BlueZ's D-Bus policy group, the
    serial bridge may open udev's netlink socket (else it polls); the template gives neither."""
    template = "msgflo-bridge@.service"
    assert "bluetooth" not in words(template, "Service", "SupplementaryGroups")
    assert "AF_NETLINK" not in words(template, "Service", "RestrictAddressFamilies")
    ble = unit("msgflo-bridge@ble.service.d/bluetooth.conf")
    assert ble.get("Service", "SupplementaryGroups") == "bluetooth"
    assert "bluetooth.service" in ble.get("Unit", "After")
    serial = words("msgflo-bridge@serial.service.d/udev.conf", "Service", "RestrictAddressFamilies")
    assert serial == words(template, "Service", "RestrictAddressFamilies") | {"AF_NETLINK"}
    install = (UNITS.parent / "install.sh").read_text(encoding="utf-8")
    assert install.count("msgflo-bridge@ble.service") == 2  # enabled on / and in an image root
    assert install.count("msgflo-bridge@rf433.service") == 2


def test_only_the_rf433_bridge_may_open_usb_devices() -> None:
    """rtl_433's librtlsdr opens the dongle's USB node (udev: group plugdev): only the 433 MHz
    instance gets the group and the USB devices."""
    template = "msgflo-bridge@.service"
    assert "plugdev" not in words(template, "Service", "SupplementaryGroups")
    assert "usb_device" not in (UNITS / template).read_text(encoding="utf-8")
    rf433 = unit("msgflo-bridge@rf433.service.d/usb.conf")
    assert rf433.get("Service", "SupplementaryGroups") == "plugdev"
    assert rf433.get("Service", "DeviceAllow") == "char-usb_device rw"
    bluez = unit("bluetooth.service.d/msgflo-gateway.conf")
    assert "bluetooth-conf" in bluez.get("Service", "ExecStartPre")


def test_only_the_gpio_bridge_may_open_the_gpio_chips() -> None:
    """gpiozero on lgpio opens /dev/gpiochip* (udev: group gpio, which sysusers makes), reads
    the board's revision from /proc and makes a FIFO in its working directory: only the GPIO
    instance gets the group, the devices, all of /proc and a runtime directory to work in."""
    template = "msgflo-bridge@.service"
    assert "gpio" not in words(template, "Service", "SupplementaryGroups")
    assert "gpiochip" not in (UNITS / template).read_text(encoding="utf-8")
    name = "msgflo-bridge@gpio.service.d/gpio.conf"
    assert every(name, "DeviceAllow") == ["", "char-gpiochip rw"]  # no serial devices
    assert every(name, "SupplementaryGroups") == ["", "gpio"]  # no dialout
    gpio = unit(name)
    assert gpio.get("Service", "ProcSubset") == "all"
    assert gpio.get("Service", "WorkingDirectory") == "/run/" + gpio.get(
        "Service", "RuntimeDirectory"
    )
    rules = (UNITS.parent / "udev" / "60-msgflo-gpio.rules").read_text(encoding="utf-8")
    assert 'KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' in rules
    assert "g gpio -" in (UNITS.parent / "system" / "sysusers.conf").read_text(encoding="utf-8")
    install = (UNITS.parent / "install.sh").read_text(encoding="utf-8")
    assert install.count("msgflo-bridge@gpio.service") == 2
    assert "60-msgflo-gpio.rules" in install


def udev_rule_pairs(text: str) -> list[list[tuple[str, str, str]]]:
    """Each rule line's (key, operator, value) triples; a line that is not all such is an error."""
    pair = re.compile(r'\s*([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*')
    rules = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        triples = []
        for part in line.split(","):
            found = pair.fullmatch(part)
            assert found is not None, f"not a udev key: {part!r} in {line!r}"
            triples.append((found[1], found[2], found[3]))
        rules.append(triples)
    return rules


@pytest.mark.parametrize("name", ["60-msgflo-gpio.rules", "60-msgflo-i2c.rules"])
def test_device_group_rules_match_and_assign(name: str) -> None:
    """Matches (==) first, then the group and mode assigned (=): a typo such as a single = in a
    match would assign instead, silently."""
    for rule in udev_rule_pairs((UNITS.parent / "udev" / name).read_text(encoding="utf-8")):
        operators = [op for _, op, _ in rule]
        assert operators == sorted(operators, key=lambda op: op != "==")  # matches first
        assigned = {key: value for key, op, value in rule if op == "="}
        assert set(assigned) == {"GROUP", "MODE"} and assigned["MODE"] == "0660"


def test_only_the_health_participant_may_open_the_i2c_buses_and_reach_hostapd() -> None:
    """The battery monitor's /dev/i2c-* (udev: group i2c) and hostapd's control socket (group
    msgflo-hostapd): the health instance joins both groups, which sysusers makes, so the unit
    starts whether or not a monitor is wired; no other bridge joins them."""
    template = "msgflo-bridge@.service"
    assert not {"i2c", HOSTAPD_CTRL_GROUP} & words(template, "Service", "SupplementaryGroups")
    name = "msgflo-bridge@health.service.d/health.conf"
    assert every(name, "DeviceAllow") == ["", "char-i2c rw"]  # no serial devices
    assert every(name, "SupplementaryGroups") == ["", f"i2c {HOSTAPD_CTRL_GROUP}"]  # no dialout
    for other in UNITS.glob("msgflo-bridge@*.service.d/*.conf"):
        if other.parent.name != "msgflo-bridge@health.service.d":
            groups = " ".join(every(str(other.relative_to(UNITS)), "SupplementaryGroups"))
            assert not {"i2c", HOSTAPD_CTRL_GROUP} & set(groups.split())
    rule = (UNITS.parent / "udev" / "60-msgflo-i2c.rules").read_text(encoding="utf-8")
    assert 'SUBSYSTEM=="i2c-dev", KERNEL=="i2c-[0-9]*", GROUP="i2c", MODE="0660"' in rule
    sysusers = (UNITS.parent / "system" / "sysusers.conf").read_text(encoding="utf-8")
    assert "g i2c -" in sysusers and f"g {HOSTAPD_CTRL_GROUP} -" in sysusers
    assert "60-msgflo-i2c.rules" in (UNITS.parent / "install.sh").read_text(encoding="utf-8")
    image = UNITS.parents[1] / "image" / "rootfs"
    assert "i2c-dev" in (image / "modules-load-msgflo.conf").read_text(encoding="utf-8").split()
    assert "dtparam=i2c_arm=on" in (image / "raspi-firmware-custom").read_text(encoding="utf-8")
    customize = (image / "customize.sh").read_text(encoding="utf-8")
    assert 'modules-load-msgflo.conf" /etc/modules-load.d/' in customize


def test_hostapd_may_give_its_control_socket_to_the_group() -> None:
    """hostapd is root without CAP_CHOWN: it may give its socket to ctrl_interface_group only
    as a member, and the directory it makes is the group's to enter only under umask 0027
    (tests/wifi/test_kit_permissions.py runs it so)."""
    ap = unit("msgflo-ap.service")
    assert "CAP_CHOWN" not in ap.get("Service", "CapabilityBoundingSet")
    assert ap.get("Service", "SupplementaryGroups") == HOSTAPD_CTRL_GROUP
    assert ap.get("Service", "UMask") == "0027"
    assert ap.get("Service", "PrivateTmp") == "yes"  # clients' reply sockets are abstract
