"""Socket activation's variables read as ``sd_listen_fds(3)`` reads them. The sockets themselves
are handed over by ``systemd-socket-activate`` in tests/appliance/test_run.py; here, the cases
where none must be taken."""

from __future__ import annotations

import os
import socket

import pytest

from gateway.appliance.activation import listen_fds, listening
from gateway.errors import GatewayError


def test_not_activated_means_no_sockets() -> None:
    assert listen_fds({}) == []


def test_variables_meant_for_another_process_are_dropped_not_used() -> None:
    # A participant started by the coordinator inherits its environment: the parent's pid.
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1", "PATH": "/bin"}
    assert listen_fds(environ) == []
    assert environ == {"PATH": "/bin"}


def test_zero_sockets() -> None:
    environ = {"LISTEN_PID": "7", "LISTEN_FDS": "0", "LISTEN_FDNAMES": ""}
    assert listen_fds(environ, pid=7) == []
    assert environ == {}


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"LISTEN_PID": "seven", "LISTEN_FDS": "1"}, "must be numbers"),
        ({"LISTEN_PID": "7", "LISTEN_FDS": "-1"}, "negative"),
        ({"LISTEN_PID": "7", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "dashboard"}, "1 names"),
    ],
)
def test_malformed_variables_are_an_error(variables: dict[str, str], problem: str) -> None:
    environ = dict(variables)
    with pytest.raises(GatewayError, match=problem):
        listen_fds(environ, pid=7)
    assert environ == {}  # removed all the same: a child must not try them again


def test_only_a_listening_stream_socket_can_be_served() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        assert listening(server)
        with socket.create_connection(server.getsockname()) as client:
            assert not listening(client)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
        assert not listening(datagram)
