"""A private Mosquitto broker on a free loopback port, for the demo, tests and benchmarks.

It listens on 127.0.0.1 only, so anonymous access reaches nobody beyond this machine, keeps no
persistence, and lives in its own temporary directory. It can be killed and restarted on the
same port to exercise reconnects. With ``websockets=True`` it also speaks MQTT over WebSockets
on another loopback port (``ws_url``), for the dashboard's virtual devices.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.errors import GatewayError
from gateway.processes import stop_process, wait_listening, with_parent_death_signal

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class TlsListener:
    """Certificate files for an extra TLS listener (``mqtts://``)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    port: int = 0
    require_certificate: bool = False


_handed_out: set[int] = set()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago on ``host``, and not one this process was given
    before: the kernel hands a just-closed port out again, so two ports asked for in a row
    (a VM's forwards, a broker's listeners) could otherwise be the same."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def find_tool(name: str = "mosquitto") -> str:
    """Path of a Mosquitto program; Debian puts the broker in /usr/sbin, often not on PATH."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise GatewayError(f"{name} is not installed (run ./bootstrap.sh setup)")
    return found


def find_mosquitto() -> str:
    return find_tool("mosquitto")


class Mosquitto:
    """``with Mosquitto() as broker: broker.url`` -> ``mqtt://127.0.0.1:<port>``."""

    def __init__(
        self,
        port: int = 0,
        tls: TlsListener | None = None,
        users: Mapping[str, str] | None = None,
        autosave_interval: int | None = None,
        max_queued: int = 100_000,
        *,
        websockets: bool = False,
    ) -> None:
        """``autosave_interval`` turns persistence on, saving every that many seconds and at a
        clean shutdown (as the appliance's broker does), in the broker's own directory, which
        outlives restarts of the same object."""
        self.autosave_interval = autosave_interval
        self.max_queued = max_queued  # per client: QoS 1 and 2 messages queued beyond in flight
        self.port = port or free_port()
        self.tls = tls
        self.users = dict(users or {})
        self.tls_port = (tls.port or free_port()) if tls else 0
        self.ws_port = free_port() if websockets else 0
        self._dir = tempfile.TemporaryDirectory(prefix="msgflo-mosquitto-")
        self.workdir = Path(self._dir.name)
        self.log_path = self.workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The running broker's process id (benchmarks read its /proc entry)."""
        return self._process.pid if self._process is not None else None

    @property
    def tls_url(self) -> str:
        return f"mqtts://{LOOPBACK}:{self.tls_port}"

    @property
    def ws_url(self) -> str | None:
        """``ws://127.0.0.1:<port>/`` with ``websockets=True``, else None."""
        return f"ws://{LOOPBACK}:{self.ws_port}/" if self.ws_port else None

    def config(self) -> str:
        lines = [
            # Started as root, mosquitto would switch to the "mosquitto" user and then fail to
            # read certificates in private temp directories: stay the user who started it.
            f"user {getpass.getuser()}",
            f"listener {self.port} {LOOPBACK}",
            # Loopback only: a private broker for this machine. With users, a password is needed.
            f"allow_anonymous {'false' if self.users else 'true'}",
            *self._persistence(),
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"max_queued_messages {self.max_queued}",
            # Small messages must not wait for Nagle and delayed ACKs (~40 ms per QoS 1 reply).
            "set_tcp_nodelay true",
        ]
        if self.users:
            lines.append(f"password_file {self.workdir / 'passwords'}")
        if self.ws_port:
            # Same users as the plain listener (per_listener_settings is off by default).
            lines += [f"listener {self.ws_port} {LOOPBACK}", "protocol websockets"]
        if self.tls is not None:
            lines += [
                f"listener {self.tls_port} {LOOPBACK}",
                f"cafile {self.tls.cafile}",
                f"certfile {self.tls.certfile}",
                f"keyfile {self.tls.keyfile}",
                f"require_certificate {'true' if self.tls.require_certificate else 'false'}",
            ]
        return "\n".join(lines) + "\n"

    def _persistence(self) -> list[str]:
        if self.autosave_interval is None:
            return ["persistence false"]
        return [
            "persistence true",
            f"persistence_location {self.workdir}/",
            f"autosave_interval {self.autosave_interval}",
        ]

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config())
        self._write_passwords()
        # Config errors are reported on stderr before the log file is open.
        with (self.workdir / "stderr.log").open("ab") as stderr:
            # Its own session, so a Ctrl-C meant for us does not stop the broker before the
            # participants using it have disconnected; the parent-death signal still ends it
            # if we are killed outright.
            self._process = subprocess.Popen(
                with_parent_death_signal([find_tool(), "-c", str(conf)]),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        self._wait_listening()

    def _write_passwords(self) -> None:
        path = self.workdir / "passwords"
        path.write_text("")
        for user, password in self.users.items():
            # mosquitto_passwd hashes the password; -b takes it from the command line, which is
            # acceptable for a throwaway test broker only.
            subprocess.run(
                [find_tool("mosquitto_passwd"), "-b", str(path), user, password],
                check=True,
                capture_output=True,
            )

    def _wait_listening(self) -> None:
        wait_listening(
            self._process,
            self.port,
            name="mosquitto",
            timeout=START_TIMEOUT,
            log_tail=self.log_tail,
        )

    def log_tail(self, lines: int = 5) -> str:
        text = ""
        for path in (self.workdir / "stderr.log", self.log_path):
            if path.exists():
                text += path.read_text(errors="replace")
        return " | ".join(text.splitlines()[-lines:]) or "(no log)"

    def kill(self) -> None:
        """Stop the broker abruptly (SIGKILL), as a crash or power cut would."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        self._stop(signal.SIGTERM)

    def _stop(self, sig: signal.Signals) -> None:
        stop_process(self._process, sig)
        self._process = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            self._dir.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._dir.cleanup()
