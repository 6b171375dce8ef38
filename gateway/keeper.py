"""The keeper: nothing a participant starts outlives the coordinator that started it.

The coordinator runs each participant as ``python -I -S gateway/keeper.py --parent PID --grace S
-- ARGV...`` (see :func:`kept`). The keeper imports nothing but the few standard modules below,
not even the rest of ``gateway``: it starts in a few tens of milliseconds, does not depend on the
participant's environment, and costs about 10 MB of RSS per participant (13 MB when it shared a
module with ``subprocess``, ``socket``, ``shutil`` and ``pathlib``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
KEEPER_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD})
KILL_ROUNDS = 100  # SIGKILL sweeps before the keeper gives up on a process that keeps forking


def keeper_available() -> bool:
    return sys.platform.startswith("linux") and os.path.exists("/proc/self/stat")


def kept(argv: Sequence[str], *, grace: float, parent: int | None = None) -> list[str]:
    """``argv`` run under a keeper process, so that neither it nor anything it starts (its
    process group, children that called ``setsid`` or double-forked) outlives ``parent`` (this
    process by default), even when ``parent`` is killed with SIGKILL.

    The keeper is a child subreaper (``PR_SET_CHILD_SUBREAPER``: orphaned descendants become its
    children instead of init's) with ``PR_SET_PDEATHSIG`` SIGTERM; the command runs as its
    child with ``PR_SET_PDEATHSIG`` SIGKILL. On SIGTERM, SIGINT or SIGHUP (a stop, or the death
    of ``parent``) the keeper sends SIGTERM to every descendant, waits up to ``grace`` seconds
    and sends SIGKILL to whatever is left. When the command exits by itself its leftovers get
    the same treatment, and the keeper exits as the command did (same status, same signal).
    Elsewhere than Linux, the command runs as :func:`with_parent_death_signal` makes it.
    """
    if not keeper_available():
        from gateway.processes import with_parent_death_signal  # not in the keeper: shutil

        return with_parent_death_signal(argv)
    parent = os.getpid() if parent is None else parent
    script = os.path.realpath(__file__)
    return [sys.executable, "-I", "-S", script, "--parent", str(parent), "--grace", f"{grace:g}",
            "--", *argv]  # fmt: skip


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}): {os.strerror(errno)}")


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process (zombies excluded) that /proc shows now."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as file:
                stat = file.read()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rpartition(b")")[2].split()  # after the command name, which may hold spaces
        if len(fields) >= 2 and fields[0] != b"Z":
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """The living descendants of ``pid``, nearest first."""
    children: dict[int, list[int]] = {}
    for child, parent in _parent_pids().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class _Keeper:
    def __init__(self, argv: Sequence[str], grace: float, parent: int) -> None:
        self.argv = list(argv)
        self.grace = grace
        self.parent = parent
        self.child = 0
        self.status: int | None = None  # the command's wait status, once reaped

    def run(self) -> int:
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, KEEPER_SIGNALS)
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        stopping = os.getppid() != self.parent  # the parent died before the line above
        self.child = self._spawn(old_mask)
        while self.status is None and not stopping:
            info = signal.sigwaitinfo(KEEPER_SIGNALS)
            if info.si_signo == signal.SIGCHLD:
                self._reap()
            else:
                stopping = True
        self._sweep()
        return self._exit(old_mask)

    def _spawn(self, old_mask: set[int | signal.Signals]) -> int:
        pid = os.fork()
        if pid == 0:  # the command: default signal mask, killed with the keeper
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                os.execvp(self.argv[0], self.argv)
            except BaseException as error:  # whatever it is: report it, exit
                os.write(2, f"cannot start {self.argv[0]!r}: {error}\n".encode(errors="replace"))
            os._exit(127)
        return pid

    def _reap(self) -> None:
        """Collect every exited child: the command, and orphans that were handed to us."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.child:
                self.status = status

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            signal.sigtimedwait({signal.SIGCHLD}, seconds)
        self._reap()

    def _sweep(self) -> None:
        """SIGTERM every descendant, SIGKILL the ones still there after the grace period."""
        me = os.getpid()
        left = descendants(me)
        _signal_all(left, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while left and time.monotonic() < deadline:
            self._wait(min(0.1, deadline - time.monotonic()))
            left = descendants(me)
        for _ in range(KILL_ROUNDS):
            if not left:
                break
            _signal_all(left, signal.SIGKILL)
            self._wait(0.05)
            left = descendants(me)
        self._reap()

    def _exit(self, old_mask: set[int | signal.Signals]) -> int:
        status = self.status
        if status is None:  # reaped by nobody (it cannot happen but by a bug): say so
            return 1
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)  # die the way the command died
            return 128 + sig
        return os.waitstatus_to_exitcode(status)


def _keeper_main(args: list[str]) -> int:
    try:
        split = args.index("--")
        options = dict(zip(args[:split:2], args[1:split:2], strict=True))
        parent, grace = int(options["--parent"]), float(options["--grace"])
        argv = args[split + 1 :]
    except (ValueError, KeyError):
        print("usage: keeper.py --parent PID --grace SECONDS -- COMMAND...", file=sys.stderr)
        return 2
    if not argv:
        print("keeper.py: no command", file=sys.stderr)
        return 2
    return _Keeper(argv, grace, parent).run()


if __name__ == "__main__":
    sys.exit(_keeper_main(sys.argv[1:]))
