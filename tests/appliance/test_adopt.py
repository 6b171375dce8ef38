"""``gateway-run adopt``: the root side of adopting a device on the appliance. The coordinator
writes requests into its state directory (``gateway.appliance.adopt``); the command applies
them to gateway.yaml with the dashboard's own function, empties the file, logs one line each
and restarts ``msgflo-bridge@<bridge>.service`` of each bridge that got a device, and no other
(``--systemctl`` replaces systemctl: here ``touch``, which also makes files named after its
other words, the unit's among them, in ``tmp_path``)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from gateway.appliance.adopt import REQUESTS, apply_requests, locked, request_adoption
from gateway.config import load_config
from tests.support.cli import run_script

CONFIG = """\
data_dir: ./data
access_point: {enabled: false}
bridges:
  serial:
    roles:
      OTHER0001: lab/taken
"""


def setup(tmp_path: Path, requests: object) -> tuple[Path, Path]:
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    path = tmp_path / "data" / REQUESTS
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(requests))
    return config, path


BLE = "A4:C1:38:12:34:56"


def adopt(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return run_script(
        "gateway-run", "--config", config, "adopt", "--restart-bridges",
        "--systemctl", f"touch {tmp_path / 'restarted'}", cwd=tmp_path,
    )  # fmt: skip


def restarted(tmp_path: Path) -> set[str]:
    """The units ``touch`` was given to restart."""
    return {path.name for path in tmp_path.glob("msgflo-bridge@*")}


def test_adopt_writes_the_role_empties_the_requests_and_restarts(tmp_path: Path) -> None:
    request = {"bridge": "serial", "id": "ADOPT0001", "role": "lab/lamp"}
    config, requests = setup(tmp_path, [request])
    done = adopt(tmp_path, config)
    assert done.returncode == 0, done.stderr
    roles = load_config(config).bridges.serial.roles
    assert roles == (("ADOPT0001", "lab/lamp"), ("OTHER0001", "lab/taken"))
    assert not requests.exists()
    assert "serial device ADOPT0001 adopted as 'lab/lamp'" in done.stderr
    assert restarted(tmp_path) == {"msgflo-bridge@serial.service"}
    assert "msgflo-bridge@serial.service restarted" in done.stdout


def test_a_ble_device_restarts_the_ble_bridge_only(tmp_path: Path) -> None:
    config, requests = setup(tmp_path, [{"bridge": "ble", "id": BLE, "role": "kitchen"}])
    done = adopt(tmp_path, config)
    assert done.returncode == 0, done.stderr
    loaded = load_config(config).bridges
    assert loaded.ble.roles == ((BLE, "kitchen"),)
    assert loaded.serial.roles == (("OTHER0001", "lab/taken"),)
    assert f"ble device {BLE} adopted as 'kitchen'" in done.stderr
    assert restarted(tmp_path) == {"msgflo-bridge@ble.service"}
    assert done.stdout.count("restarted") == 1 and not requests.exists()


def test_devices_of_two_bridges_restart_both(tmp_path: Path) -> None:
    config, requests = setup(tmp_path, [
        {"bridge": "ble", "id": BLE, "role": "kitchen"},
        {"bridge": "serial", "id": "ADOPT0001", "role": "lab/lamp"},
        {"bridge": "serial", "id": "ADOPT0002", "role": "lab/fan"},
    ])  # fmt: skip
    done = adopt(tmp_path, config)
    assert done.returncode == 0, done.stderr
    assert len(load_config(config).bridges.serial.roles) == 3
    assert restarted(tmp_path) == {"msgflo-bridge@ble.service", "msgflo-bridge@serial.service"}
    assert done.stdout.count("restarted") == 2 and not requests.exists()


def test_apply_requests_counts_the_devices_by_bridge(tmp_path: Path) -> None:
    config, requests = setup(tmp_path, [
        {"bridge": "ble", "id": BLE, "role": "kitchen"},
        {"bridge": "serial", "id": "ADOPT0001", "role": "lab/lamp"},
        {"bridge": "serial", "id": "ADOPT0002", "role": "lab/fan"},
        {"bridge": "serial", "id": "ADOPT0003", "role": "kitchen"},  # refused: taken
    ])  # fmt: skip
    assert apply_requests(requests, config) == {"ble": 1, "serial": 2}
    assert not requests.exists()


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        ({"bridge": "gpio", "id": "ADOPT0001", "role": "a"}, "is not a bridge that adopts"),
        ({"bridge": "../../x", "id": "ADOPT0001", "role": "a"}, "is not a bridge that adopts"),
        ({"bridge": "ble", "id": "ADOPT0001", "role": "a"}, "is not a BLE address"),
        ({"bridge": "ble", "id": BLE.lower(), "role": "a"}, "is not a BLE address"),
        ({"bridge": "ble", "id": BLE, "role": "lab/taken"}, "already belongs to 'OTHER0001'"),
        ({"id": "ADOPT0001", "role": "a"}, "'bridge' and 'id' must be strings"),
        ({"bridge": "serial", "id": "ADOPT0001", "role": 5}, "'role' must be a string"),
        (["serial", "ADOPT0001", "a"], "not an adoption request"),
    ],
)
def test_a_request_for_no_such_bridge_or_id_restarts_nothing(
    tmp_path: Path, request_: object, why: str
) -> None:
    """The coordinator, less privileged, writes the requests: only a device the config takes
    for a bridge that adopts devices reaches gateway.yaml and a unit name."""
    config, requests = setup(tmp_path, [request_])
    done = adopt(tmp_path, config)
    assert done.returncode == 0, done.stderr
    assert config.read_text() == CONFIG and not requests.exists()
    refused = [line for line in done.stderr.splitlines() if "adoption refused" in line]
    assert len(refused) == 1 and why in refused[0], done.stderr
    assert restarted(tmp_path) == set() and "restarted" not in done.stdout


def test_a_bad_request_is_refused_in_one_line_and_the_config_is_untouched(
    tmp_path: Path,
) -> None:
    bad = [
        {"bridge": "serial", "id": "ADOPT0001", "role": "lab/taken"},
        {"bridge": "serial", "id": "ADOPT0002", "role": "lab/#"},
    ]
    config, requests = setup(tmp_path, bad)
    done = adopt(tmp_path, config)
    assert done.returncode == 0, done.stderr
    assert config.read_text() == CONFIG
    assert not requests.exists() and restarted(tmp_path) == set()
    refused = [line for line in done.stderr.splitlines() if "adoption refused" in line]
    assert len(refused) == 2
    assert "already belongs to 'OTHER0001'" in refused[0] and "wildcard" in refused[1]
    assert "restarted" not in done.stdout


def test_no_requests_no_change(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    (tmp_path / "data" / "coordinator").mkdir(parents=True)
    assert apply_requests(tmp_path / "data" / REQUESTS, config) == {}
    assert config.read_text() == CONFIG


def test_a_request_added_while_they_are_applied_waits_for_the_lock(tmp_path: Path) -> None:
    """Neither side loses the other's change: the second request is in the file afterwards."""
    config, requests = setup(tmp_path, [{"bridge": "serial", "id": "ADOPT0001", "role": "a"}])
    added = threading.Event()

    def add() -> None:
        request_adoption(requests, "serial", "ADOPT0002", "b")
        added.set()

    with locked(requests):
        thread = threading.Thread(target=add)
        thread.start()
        time.sleep(0.2)
        assert not added.is_set()
    thread.join(5)
    assert [r["id"] for r in json.loads(requests.read_text())] == ["ADOPT0001", "ADOPT0002"]
    assert apply_requests(requests, config) == {"serial": 2}
    assert dict(load_config(config).bridges.serial.roles) == {
        "ADOPT0001": "a", "ADOPT0002": "b", "OTHER0001": "lab/taken",
    }  # fmt: skip
    assert not requests.exists()


def test_a_symlinked_config_is_replaced_where_it_points(tmp_path: Path) -> None:
    """The appliance's /etc/msgflo-gateway/gateway.yaml links to the data partition's."""
    real, requests = setup(tmp_path, [{"bridge": "serial", "id": "ADOPT0001", "role": "a"}])
    link = tmp_path / "etc.yaml"
    link.symlink_to(real)
    assert apply_requests(requests, link) == {"serial": 1}
    assert link.is_symlink()
    assert dict(load_config(real).bridges.serial.roles)["ADOPT0001"] == "a"
