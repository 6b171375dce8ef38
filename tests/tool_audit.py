"""Every program the tests run comes from a package ``bootstrap.sh`` installs.

A green CI on a machine with things installed by hand once hid a missing package (the ARM C
library headers were only a recommendation of the compiler). So, when ``MSGFLO_TOOL_AUDIT=1``
(``./bootstrap.sh test`` sets it), this plugin records each program a test starts, through
the interpreter's audit events (``subprocess.Popen``, ``os.exec``, ``os.posix_spawn``: asyncio's
subprocesses included), and at the end of the session finds the Debian package that owns it.
The session fails when one comes from anywhere else than:

- the repository, its venv or a temporary directory (built or installed by the tests and
  bootstrap themselves);
- a package in bootstrap's ``APT_PACKAGES`` (for ``package:command`` entries, bootstrap takes
  an existing ``command`` as it is, so that command is accepted wherever it is);
- a package of priority ``required`` (present on every Debian system).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENABLE = "MSGFLO_TOOL_AUDIT"
_started: dict[str, str] = {}  # program as the test named it -> the path that ran


def _record(program: object) -> None:
    name = os.fsdecode(program) if isinstance(program, str | bytes | os.PathLike) else ""
    if name and name not in _started:
        _started[name] = shutil.which(name) or name


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "subprocess.Popen":
        executable, argv = args[0], args[1]
        if executable is None and isinstance(argv, Sequence) and not isinstance(argv, str | bytes):
            executable = argv[0] if argv else None
        elif executable is None and isinstance(argv, str | bytes):
            executable = os.fsdecode(argv).split()[0] if argv.strip() else None
        _record(executable)
    elif event in ("os.exec", "os.posix_spawn"):
        _record(args[0])


def bootstrap_packages(text: str) -> tuple[set[str], set[str]]:
    """(packages, commands accepted as they are) of ``APT_PACKAGES=(...)`` in bootstrap.sh."""
    match = re.search(r"APT_PACKAGES=\(([^)]*)\)", text)
    if match is None:
        raise ValueError("bootstrap.sh: no APT_PACKAGES=(...) array")
    packages, commands = set(), set()
    for entry in match.group(1).split():
        package, _, command = entry.partition(":")
        packages.add(package)
        if command:
            commands.add(command)
    return packages, commands


def _owner(path: Path) -> str | None:
    """The package that installed ``path`` (merged /usr tried both ways), or None."""
    real = path.resolve()
    candidates = {str(path), str(real)}
    for p in list(candidates):
        if p.startswith("/usr/"):
            candidates.add(p[4:])
        elif p.startswith(("/bin/", "/sbin/", "/lib")):
            candidates.add("/usr" + p)
    for candidate in sorted(candidates):
        found = subprocess.run(
            ["dpkg", "-S", candidate], check=False, capture_output=True, text=True
        )
        if found.returncode == 0:
            return found.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def _priority(package: str) -> str:
    shown = subprocess.run(
        ["dpkg-query", "-W", "-f=${Priority}", package], check=False, capture_output=True, text=True
    )
    return shown.stdout.strip()


def _ours(path: Path) -> bool:
    places = [p.resolve() for p in (ROOT, Path(sys.prefix), Path(tempfile.gettempdir()))]
    # As named, not resolved: the venv's python is a link to the interpreter it was made from.
    return any(path.absolute().is_relative_to(p) for p in places)


def problems(started: dict[str, str], packages: set[str], commands: set[str]) -> list[str]:
    """One line per program that bootstrap does not account for."""
    found = []
    for name, where in sorted(started.items()):
        path = Path(where)
        if not path.is_absolute() or _ours(path) or Path(name).name in commands:
            continue
        owner = _owner(path)
        if owner is None:
            found.append(f"{name} ({path}): no Debian package owns it; installed by hand?")
        elif owner.split(":")[0] not in packages and _priority(owner) != "required":
            found.append(
                f"{name} ({path}): from package {owner}, which bootstrap.sh does not install"
            )
    return found


def enabled() -> bool:
    return os.environ.get(ENABLE) == "1" and shutil.which("dpkg") is not None


def pytest_configure(config: pytest.Config) -> None:
    if enabled():
        sys.addaudithook(_audit)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not enabled():
        return
    packages, commands = bootstrap_packages((ROOT / "bootstrap.sh").read_text())
    found = problems(_started, packages, commands)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"tool audit: {len(_started)} programs started by the tests checked")
        for line in found:
            reporter.write_line(f"tool audit: {line}", red=True)
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
