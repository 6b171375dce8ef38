"""``msgflo-ble scan --replay``: the devices that decode, once each, with the config line that
adopts them; bad replay lines named FILE:LINE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.bridges.ble.cli import main
from tests.bridges.test_ble_core import VECTORS, vector

EXAMPLE = Path(__file__).parents[2] / "examples" / "ble-replay.jsonl"


def test_scan_of_a_replay_prints_each_decodable_device_with_its_config_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    replay = tmp_path / "adverts.jsonl"
    lines = [json.dumps(dict(v["advert"], time=n * 0.01)) for n, v in enumerate(VECTORS)]
    lines.insert(2, '{"address": "nope"}')
    lines.append(json.dumps({"address": "12:34:56:78:9A:BC", "manufacturer_data": {"76": "10"}}))
    replay.write_text("\n".join(lines) + "\n")
    assert main(["scan", "--replay", str(replay), "--seconds", "30"]) == 0
    out = capsys.readouterr().out.splitlines()
    atc = vector("ATC1441 custom firmware (LYWSD03MMC)")["advert"]["address"]
    assert out[0] == (
        f"{atc} LYWSD03MMC/MJWSD05MMC_ATC 'ATC_D5D498': temperature 32.5, humidity 62, "
        "battery 81, voltage 2.939, rssi -67"
    )
    assert out[1] == f'  adopt with: bridges.ble.roles: {{"{atc}": ROLE}}'
    devices = {v["advert"]["address"] for v in VECTORS}
    assert len([line for line in out if not line.startswith(" ")]) == len(devices) + 1
    assert out[-1].startswith(f"{len(devices)} decodable device(s)")
    assert f"{replay}:3: address 'nope' is not six hex pairs" in caplog.text


def test_scan_with_a_config_says_what_it_adopts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text('bridges:\n  ble:\n    roles: {"A4:C1:38:D5:D4:98": kitchen}\n')
    assert main(["scan", "--replay", str(EXAMPLE), "--speed", "1000", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "A4:C1:38:D5:D4:98 LYWSD03MMC/MJWSD05MMC_ATC" in out
    assert "adopted by the config as kitchen" in out
    assert "5 decodable device(s)" in out  # the example's phone does not count


def test_a_missing_replay_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", "--replay", str(tmp_path / "none.jsonl")]) == 2
    assert (
        capsys.readouterr().err
        == f"msgflo-ble scan: error: --replay {tmp_path}/none.jsonl: no such file\n"
    )
