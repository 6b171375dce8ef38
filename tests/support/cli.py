"""The installed console scripts, run as users run them: in a subprocess, output captured."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

BIN = Path(sys.executable).parent  # our console scripts, in the venv running the tests


def run_script(
    name: str,
    *args: str | Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the console script ``name`` with ``args`` to its end; never raises on its exit code."""
    script = BIN / name
    assert script.is_file(), f"{script} missing: run ./bootstrap.sh setup (pip install -e .)"
    return subprocess.run(
        [str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )
