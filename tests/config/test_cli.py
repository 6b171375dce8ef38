"""``gateway-config`` as users run it: the installed console script, in a subprocess."""

from __future__ import annotations

from pathlib import Path

from gateway.config import GatewayConfig, parse_config
from tests.support.cli import run_script

ROOT = Path(__file__).resolve().parents[2]


def test_check_ok() -> None:
    done = run_script("gateway-config", "check", "services/gateway.yaml", cwd=ROOT)
    assert (done.returncode, done.stdout, done.stderr) == (0, "services/gateway.yaml: ok\n", "")


def test_check_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("broker:\n  port: abc\naccess_point:\n  chanel: 3\n")
    done = run_script("gateway-config", "check", "gateway.yaml", cwd=tmp_path)
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
    done = run_script("gateway-config", "check", "gateway.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("gateway-config: error: gateway.yaml:2:1: invalid YAML: ")


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    for command in ("check", "show"):
        done = run_script("gateway-config", command, tmp_path / "missing.yaml")
        assert done.returncode == 2
        assert done.stderr == (
            f"gateway-config: error: {tmp_path / 'missing.yaml'}: cannot read:"
            " No such file or directory\n"
        )


def test_usage_errors() -> None:
    assert (
        run_script(
            "gateway-config",
        ).returncode
        == 2
    )
    assert run_script("gateway-config", "frobnicate").returncode == 2
    assert run_script("gateway-config", "check", "a.yaml", "b.yaml").returncode == 2


def test_default_file_is_the_appliance_path() -> None:
    done = run_script("gateway-config", "check", "--help")
    assert done.returncode == 0
    assert "/etc/msgflo-gateway/gateway.yaml" in done.stdout


def test_show_prints_the_effective_config() -> None:
    done = run_script("gateway-config", "show", "examples/gateway-laptop.yaml", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    shown = parse_config(done.stdout, "shown.yaml")
    assert shown.data_dir == ROOT / "examples" / "data"
    assert not shown.access_point.enabled
    assert shown.broker == GatewayConfig().broker
    assert "max_queued_messages: 1000\n" in done.stdout  # defaults are filled in


def test_show_of_an_invalid_file_lists_the_problems(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("runtime: {port: 0}\n")
    done = run_script("gateway-config", "show", tmp_path / "gateway.yaml")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "runtime.port: expected an integer 1-65535, got 0" in done.stderr
