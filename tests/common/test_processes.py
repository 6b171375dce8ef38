"""Children that die with their parent: setpriv where it works, plain where it cannot run."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import processes
from gateway.processes import with_parent_death_signal


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    processes._working_setpriv.cache_clear()
    yield
    processes._working_setpriv.cache_clear()


def test_a_working_setpriv_wraps_the_command() -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "util-linux's setpriv is part of Debian's base system"
    argv = with_parent_death_signal(["echo", "hello"])
    assert argv == [setpriv, "--pdeathsig", "TERM", "--", "echo", "hello"]
    assert subprocess.run(argv, capture_output=True, check=True).stdout == b"hello\n"


def test_a_setpriv_that_cannot_run_leaves_the_command_unwrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the appliance's systemd sandbox does to setpriv (its capset call is filtered out):
    # a message and status 127, the command not run. Only setpriv is replaced on PATH.
    fake = tmp_path / "setpriv"
    fake.write_text(
        "#!/bin/sh\necho 'setpriv: activate capabilities: Operation not permitted' >&2\nexit 127\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    argv = with_parent_death_signal(["echo", "hello"])
    assert argv == ["echo", "hello"]
    assert subprocess.run(argv, capture_output=True, check=True).stdout == b"hello\n"


def test_without_setpriv_the_command_runs_unwrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    echo = shutil.which("echo")
    assert echo is not None
    (tmp_path / "echo").symlink_to(echo)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert with_parent_death_signal(["echo", "hello"]) == ["echo", "hello"]
