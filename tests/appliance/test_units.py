"""The systemd units in services/: valid for systemd, and ordered and restarted as promised."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "services" / "systemd"
LONG_RUNNING = ("msgflo-broker", "msgflo-coordinator", "msgflo-bridge@", "msgflo-ap", "msgflo-dhcp")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def words(name: str, section: str, key: str) -> set[str]:
    return set(unit(name).get(section, key, fallback="").split())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_every_unit() -> None:
    files = sorted(str(p) for p in UNITS.iterdir())
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


def test_broker_then_coordinator_then_bridges() -> None:
    assert "msgflo-broker.service" in words("msgflo-coordinator.service", "Unit", "After")
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
