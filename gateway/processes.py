"""Child processes that never outlive the gateway process that started them: brokers and tools
started for tests, benchmarks and the demo (the coordinator's participants run under a keeper,
``gateway/keeper.py``)."""

from __future__ import annotations

import functools
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any


def with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped so the child gets SIGTERM when its parent dies, even by ``kill -9``.

    util-linux's setpriv sets PR_SET_PDEATHSIG and then execs the command; a ``preexec_fn``
    would do the same but is unsafe in a process that has threads. Where setpriv is missing
    (not Linux) or cannot run (see :func:`_working_setpriv`), the command runs unwrapped.
    """
    setpriv = _working_setpriv()
    if setpriv is None:
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


@functools.cache
def _working_setpriv() -> str | None:
    """setpriv's path if it runs a command here, else None; tried once per process.

    In the appliance's systemd sandbox (``SystemCallFilter=~@privileged``) setpriv's capset
    call fails with EPERM and it exits 127 without running the command. There the unit's
    cgroup, which systemd kills on stop, already keeps children from outliving the daemon.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    try:
        probe = subprocess.run(
            [setpriv, "--pdeathsig", "TERM", "--", "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return setpriv if probe.returncode == 0 else None


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


def wait_listening(
    process: subprocess.Popen[Any] | None,
    port: int,
    *,
    name: str,
    timeout: float,
    log_tail: Callable[[], str],
    host: str = "127.0.0.1",
) -> None:
    """Return once ``host:port`` accepts a TCP connection; a one-line GatewayError with the
    server's last log lines if ``process`` exits first or ``timeout`` seconds pass."""
    from gateway.errors import GatewayError  # not at the top: the keeper script imports no gateway

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise GatewayError(f"{name} exited at start: {log_tail()}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise GatewayError(f"{name} did not listen on {port} within {timeout} s: {log_tail()}")
