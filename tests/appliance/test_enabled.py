"""``gateway-enabled NAME``, the units' ExecCondition: which services run with a gateway.yaml."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from gateway.appliance.enabled import is_enabled
from gateway.config import load_config
from gateway.errors import GatewayError
from tests.support.cli import run_script

SERVICES = Path(__file__).resolve().parents[2] / "services"
CONFIG = (
    "access_point: {enabled: false}\nbridges: {ble: {enabled: true}, serial: {enabled: false}}\n"
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"data_dir: {tmp_path}\n{CONFIG}", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "status"),
    [("access-point", 1), ("bridge-ble", 0), ("bridge-serial", 1), ("bridge-rf433", 1)],
)
def test_the_exit_status_says_whether_the_service_runs(
    config: Path, name: str, status: int
) -> None:
    done = run_script("gateway-enabled", "--config", config, name)
    assert (done.returncode, done.stderr) == (status, "")


def test_the_shipped_config_runs_the_access_point_serial_and_health() -> None:
    shipped = load_config(SERVICES / "gateway.yaml")
    names = ["access-point", *(f"bridge-{b}" for b in shipped.bridges.names())]
    running = [name for name in names if is_enabled(shipped, name)]
    assert running == ["access-point", "bridge-serial", "bridge-health"]


def test_an_unknown_service_or_a_broken_config_is_one_line_and_status_2(
    config: Path, tmp_path: Path
) -> None:
    done = run_script("gateway-enabled", "--config", config, "bridge-zigbee")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "gateway-enabled: error: unknown service 'bridge-zigbee' (one of: access-point, "
        "bridge-serial, bridge-ble, bridge-rf433, bridge-gpio, bridge-health)"
    ]
    broken = tmp_path / "broken.yaml"
    broken.write_text("bridges: {ble: {enabled: maybe}}\n", encoding="utf-8")
    done = run_script("gateway-enabled", "--config", broken, "bridge-ble")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert str(broken) in done.stderr


def test_every_unit_that_may_be_off_asks_gateway_enabled(config: Path) -> None:
    units = sorted((SERVICES / "systemd").glob("msgflo-*.service"))
    conditions = {}
    for unit in units:
        parsed = configparser.ConfigParser(strict=False, interpolation=None)
        parsed.read(unit)
        if parsed.has_option("Service", "ExecCondition"):
            conditions[unit.name] = parsed.get("Service", "ExecCondition").split()
    assert conditions == {
        "msgflo-ap.service": ["/usr/local/bin/gateway-enabled", "access-point"],
        "msgflo-bridge@.service": ["/usr/local/bin/gateway-enabled", "bridge-%i"],
        "msgflo-dhcp.service": ["/usr/local/bin/gateway-enabled", "access-point"],
    }
    with pytest.raises(GatewayError):
        is_enabled(load_config(config), "bridge-%i")
