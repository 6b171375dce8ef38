"""The soak in CI's shorter setting: ``python -m bench.soak`` for 20 s (an hour by hand; figures in
bench/RESULTS.md). Every process of the tree stays within the soak's stated bound (RSS up by
less than 5 MB, open files unchanged), none goes away, and every message sent to the
simulated serial board comes back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_a_short_soak_stays_within_its_bounds(tmp_path: Path) -> None:
    figures = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--seconds", "20", "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(figures.read_text())
    names = {row["name"] for row in result["processes"]}
    assert {"mosquitto", "msgflo", "msgflo-serial"} <= names, names
    assert sum(name.startswith("msgflo-python") for name in names) == 4, names  # the demo's
    assert not [row for row in result["processes"] if row.get("gone")]
    assert all(row["within_bound"] for row in result["processes"]), done.stdout
    assert result["sent"] > 0 and result["echoed"] == result["sent"], result
