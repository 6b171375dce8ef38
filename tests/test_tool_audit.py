"""The tool audit (tests/tool_audit.py) tells a program bootstrap installs from one it does not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tool_audit import ROOT, bootstrap_packages, problems

pytestmark = pytest.mark.skipif(not shutil.which("dpkg"), reason="needs Debian's dpkg")


def test_bootstrap_lists_the_brokers_and_accepts_an_existing_node() -> None:
    packages, commands = bootstrap_packages((ROOT / "bootstrap.sh").read_text())
    assert {"mosquitto", "rabbitmq-server", "libnewlib-arm-none-eabi"} <= packages
    assert "node" in commands


def test_a_program_from_a_bootstrap_or_required_package_passes() -> None:
    packages, commands = bootstrap_packages((ROOT / "bootstrap.sh").read_text())
    openssl = shutil.which("openssl")
    assert openssl is not None  # bootstrap installs it
    started = {"openssl": openssl, "ls": "/bin/ls", "python": str(ROOT / ".venv/bin/python")}
    assert problems(started, packages, commands) == []


def test_a_program_from_another_package_or_none_is_reported(tmp_path: Path) -> None:
    packages, commands = bootstrap_packages((ROOT / "bootstrap.sh").read_text())
    outside = Path.home() / ".cache" / "msgflo-tool-audit-test"
    outside.mkdir(parents=True, exist_ok=True)
    stray = outside / "handmade"
    stray.write_text("#!/bin/sh\n")
    try:
        found = problems({"handmade": str(stray)}, packages, commands)
    finally:
        shutil.rmtree(outside)
    assert len(found) == 1 and "no Debian package owns it" in found[0]
    # openssl's own package, counted as if bootstrap did not list it.
    openssl = shutil.which("openssl")
    assert openssl is not None
    found = problems({"openssl": openssl}, packages - {"openssl"}, commands)
    assert found == [
        f"openssl ({openssl}): from package openssl, which bootstrap.sh does not install"
    ]


def test_programs_started_by_a_test_are_recorded() -> None:
    from tests import tool_audit

    if not tool_audit.enabled():
        pytest.skip("the audit hook is installed only with MSGFLO_TOOL_AUDIT=1 (bootstrap's test)")
    subprocess.run(["true"], check=True)
    assert "true" in tool_audit._started
