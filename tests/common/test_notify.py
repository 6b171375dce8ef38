"""``notify_ready``: systemd's readiness datagram, on the socket systemd names."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.common.signals import notify_ready


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()


def test_ready_goes_to_the_socket_systemd_names(
    receiver: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = receiver
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notify_ready()
    assert sock.recv(64) == b"READY=1"


def test_an_abstract_socket_is_written_with_its_leading_nul(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"msgflo-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        notify_ready()
        assert sock.recv(64) == b"READY=1"


def test_without_systemd_nothing_is_sent(
    receiver: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, _ = receiver
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notify_ready()
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(64)


def test_a_socket_that_is_gone_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    notify_ready()
    assert "could not tell systemd the service is ready" in caplog.text
