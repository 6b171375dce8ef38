"""Child processes that never outlive the gateway process that started them."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Sequence
from typing import Any


def with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped so the child gets SIGTERM when its parent dies, even by ``kill -9``.

    util-linux's setpriv sets PR_SET_PDEATHSIG and then execs the command; a ``preexec_fn``
    would do the same but is unsafe in a process that has threads. Without setpriv (not
    Linux), the command runs unwrapped.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


def stop_process(
    process: subprocess.Popen[Any] | None, sig: signal.Signals = signal.SIGTERM, grace: float = 5
) -> None:
    """Send ``sig`` and wait ``grace`` seconds; SIGKILL whatever is still running then."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)
