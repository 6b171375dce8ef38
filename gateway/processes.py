"""Child processes that never outlive the gateway process that started them."""

from __future__ import annotations

import shutil
from collections.abc import Sequence


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
