"""``gateway-run adopt``: the root side of adopting a board on the appliance. The coordinator
writes requests into its state directory (``gateway.appliance.adopt``); the command applies
them to gateway.yaml with the dashboard's own function, empties the file, logs one line each
and restarts the bridge only when a board was adopted (``--systemctl`` replaces systemctl:
here ``touch``, which also makes files named after its other words, in ``tmp_path``)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

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


def test_adopt_writes_the_role_empties_the_requests_and_restarts(tmp_path: Path) -> None:
    restarted = tmp_path / "restarted"
    request = {"bridge": "serial", "id": "ADOPT0001", "role": "lab/lamp"}
    config, requests = setup(tmp_path, [request])
    done = run_script(
        "gateway-run", "--config", config, "adopt", "--restart", "msgflo-bridge@serial.service",
        "--systemctl", f"touch {restarted}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    roles = load_config(config).bridges.serial.roles
    assert roles == (("ADOPT0001", "lab/lamp"), ("OTHER0001", "lab/taken"))
    assert not requests.exists()
    assert "ADOPT0001 adopted as 'lab/lamp'" in done.stderr
    assert restarted.exists()
    assert "msgflo-bridge@serial.service restarted" in done.stdout


def test_a_bad_request_is_refused_in_one_line_and_the_config_is_untouched(
    tmp_path: Path,
) -> None:
    restarted = tmp_path / "restarted"
    bad = [
        {"bridge": "serial", "id": "ADOPT0001", "role": "lab/taken"},
        {"bridge": "serial", "id": "ADOPT0002", "role": "lab/#"},
    ]
    config, requests = setup(tmp_path, bad)
    done = run_script(
        "gateway-run", "--config", config, "adopt", "--restart", "x.service",
        "--systemctl", f"touch {restarted}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert config.read_text() == CONFIG
    assert not requests.exists() and not restarted.exists()
    refused = [line for line in done.stderr.splitlines() if "adoption refused" in line]
    assert len(refused) == 2
    assert "already belongs to 'OTHER0001'" in refused[0] and "wildcard" in refused[1]
    assert "restarted" not in done.stdout


def test_no_requests_no_change(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG)
    (tmp_path / "data" / "coordinator").mkdir(parents=True)
    assert apply_requests(tmp_path / "data" / REQUESTS, config) == 0
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
    assert apply_requests(requests, config) == 2
    assert dict(load_config(config).bridges.serial.roles) == {
        "ADOPT0001": "a", "ADOPT0002": "b", "OTHER0001": "lab/taken",
    }  # fmt: skip
    assert not requests.exists()


def test_a_symlinked_config_is_replaced_where_it_points(tmp_path: Path) -> None:
    """The appliance's /etc/msgflo-gateway/gateway.yaml links to the data partition's."""
    real, requests = setup(tmp_path, [{"bridge": "serial", "id": "ADOPT0001", "role": "a"}])
    link = tmp_path / "etc.yaml"
    link.symlink_to(real)
    assert apply_requests(requests, link) == 1
    assert link.is_symlink()
    assert dict(load_config(real).bridges.serial.roles)["ADOPT0001"] == "a"
