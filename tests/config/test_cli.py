"""``gateway-config`` as users run it: the installed console script, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.config import GatewayConfig, parse_config

SCRIPT = Path(sys.executable).parent / "gateway-config"
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file(), f"{SCRIPT} missing: run .venv/bin/pip install -e '.[test]'"
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


def test_check_ok() -> None:
    done = run("check", "services/gateway.yaml", cwd=ROOT)
    assert (done.returncode, done.stdout, done.stderr) == (0, "services/gateway.yaml: ok\n", "")


def test_check_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("broker:\n  port: abc\naccess_point:\n  chanel: 3\n")
    done = run("check", "gateway.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "gateway-config: error: gateway.yaml:2: broker.port: expected an integer 1-65535,"
        " got 'abc'",
        "gateway-config: error: gateway.yaml:4: access_point.chanel: unknown key"
        " (did you mean 'channel'?)",
    ]


def test_check_syntax_error_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("broker: [\n")
    done = run("check", "gateway.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("gateway-config: error: gateway.yaml:2:1: invalid YAML: ")


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    for command in ("check", "show"):
        done = run(command, tmp_path / "missing.yaml")
        assert done.returncode == 2
        assert done.stderr == (
            f"gateway-config: error: {tmp_path / 'missing.yaml'}: cannot read:"
            " No such file or directory\n"
        )


def test_usage_errors() -> None:
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("check", "a.yaml", "b.yaml").returncode == 2


def test_default_file_is_the_appliance_path() -> None:
    done = run("check", "--help")
    assert done.returncode == 0
    assert "/etc/msgflo-gateway/gateway.yaml" in done.stdout


def test_show_prints_the_effective_config() -> None:
    done = run("show", "examples/gateway-laptop.yaml", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    shown = parse_config(done.stdout, "shown.yaml")
    assert shown.data_dir == ROOT / "examples" / "data"
    assert not shown.access_point.enabled
    assert shown.broker == GatewayConfig().broker
    assert "max_queued_messages: 1000\n" in done.stdout  # defaults are filled in


def test_show_of_an_invalid_file_lists_the_problems(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("runtime: {port: 0}\n")
    done = run("show", tmp_path / "gateway.yaml")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "runtime.port: expected an integer 1-65535, got 0" in done.stderr
