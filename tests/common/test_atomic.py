"""write_atomic: content, mode, owner, no temp files left, old file kept when a write fails."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.common.atomic import write_atomic
from gateway.errors import FileWriteError


def test_writes_bytes_and_text_with_the_mode(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a", b"\x00bytes")
    write_atomic(tmp_path / "b", "tëxt", mode=0o640)
    assert (tmp_path / "a").read_bytes() == b"\x00bytes"
    assert (tmp_path / "b").read_text(encoding="utf-8") == "tëxt"
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_replaces_and_sets_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    target.chmod(0o666)
    write_atomic(target, "new", mode=0o600)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_owner(tmp_path: Path) -> None:
    write_atomic(tmp_path / "f", "x", owner=(os.getuid(), os.getgid()))
    info = (tmp_path / "f").stat()
    assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid())


def test_missing_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(FileWriteError, match=r"cannot write .*nowhere/f"):
        write_atomic(tmp_path / "nowhere" / "f", "x")


FAIL_MID_WRITE = """
import resource, signal, sys
from gateway.common.atomic import write_atomic
from gateway.errors import FileWriteError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_atomic(sys.argv[1], b"n" * 100_000)
except FileWriteError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_write_failing_half_way_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    # A real failure after 4 KiB of the new content were written: the file size limit (EFBIG).
    target = tmp_path / "f"
    target.write_bytes(b"old content")
    done = subprocess.run(
        [sys.executable, "-c", FAIL_MID_WRITE, str(target)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3, done.stderr
    assert "cannot write" in done.stdout and "too large" in done.stdout
    assert target.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
