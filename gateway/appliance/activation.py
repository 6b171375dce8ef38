"""Listening sockets handed over by systemd (socket activation), taken as ``sd_listen_fds(3)``
takes them.

systemd binds the socket (``services/systemd/msgflo-dashboard.socket``: port 80, which only a
privileged process may bind) and starts the service with the socket open at file descriptor 3
and these variables: ``LISTEN_PID`` (the process they are meant for: a child that inherited the
environment must not take them), ``LISTEN_FDS`` (how many descriptors, from 3 on) and
``LISTEN_FDNAMES`` (their names, ``:``-separated: the socket units' ``FileDescriptorName=``).

Like ``sd_listen_fds(unset_environment=1)``, the variables are removed and each descriptor is
made close-on-exec, whoever they were for: the participants the coordinator starts must
neither inherit the listening socket nor believe they were handed one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping

from gateway.errors import GatewayError

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START
VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
UNNAMED = "unknown"  # what systemd's sd_listen_fds_with_names() calls a socket without a name


def listen_fds(
    environ: MutableMapping[str, str] | None = None, pid: int | None = None
) -> list[tuple[str, socket.socket]]:
    """The listening sockets passed to this process, with their names; none when it was not
    socket-activated. ``environ`` and ``pid`` default to this process's own."""
    env = os.environ if environ is None else environ
    given = {name: env.pop(name) for name in VARIABLES if name in env}
    if "LISTEN_PID" not in given or "LISTEN_FDS" not in given:
        return []
    try:
        meant_for, count = int(given["LISTEN_PID"]), int(given["LISTEN_FDS"])
    except ValueError:
        raise GatewayError(
            f"socket activation: LISTEN_PID={given['LISTEN_PID']!r} and "
            f"LISTEN_FDS={given['LISTEN_FDS']!r} must be numbers"
        ) from None
    if meant_for != (os.getpid() if pid is None else pid):
        return []  # inherited from a parent that was activated: not ours
    if count < 0:
        raise GatewayError(f"socket activation: LISTEN_FDS={count} is negative")
    if count == 0:
        return []
    names = given["LISTEN_FDNAMES"].split(":") if "LISTEN_FDNAMES" in given else []
    if names and len(names) != count:
        raise GatewayError(
            f"socket activation: {len(names)} names in LISTEN_FDNAMES for LISTEN_FDS={count}"
        )
    found: list[tuple[str, socket.socket]] = []
    for index, fd in enumerate(range(LISTEN_FDS_START, LISTEN_FDS_START + count)):
        name = names[index] if names else UNNAMED
        try:
            os.set_inheritable(fd, False)
            found.append((name, socket.socket(fileno=fd)))
        except OSError as exc:
            raise GatewayError(
                f"socket activation: descriptor {fd} ({name}) is not a socket: "
                f"{exc.strerror or exc}"
            ) from None
    return found


def listening(sock: socket.socket) -> bool:
    """Whether ``sock`` is a stream socket that listens (what a server can accept on)."""
    try:
        accepts = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        return False
    return sock.type == socket.SOCK_STREAM and accepts != 0
