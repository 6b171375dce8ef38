"""A private RabbitMQ for tests: its own node, epmd, ports, files and user, all on loopback.

Nothing is shared with a system RabbitMQ: the node name is unique, the Erlang port mapper runs on a
free port of its own (``ERL_EPMD_PORT``), the database, logs, config and Erlang cookie live in a
temporary directory, and the only user is a generated one (``default_user`` in the config means
``guest`` is never created). Starting takes several seconds, so tests share one per session.

Besides the plain listener there is a TLS one (``amqps://``) with a certificate from a CA made
for the session (:attr:`RabbitMQ.pki`); it verifies a client certificate when one is presented.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.mosquitto import LOOPBACK, free_port
from gateway.processes import stop_process, wait_listening, with_parent_death_signal
from tests.support.certs import Pki, make_pki

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT = 60.0
MISSING = "rabbitmq-server is not installed: run ./bootstrap.sh setup (it installs it)"


class RabbitMQ:
    """``with RabbitMQ() as broker: broker.url`` -> ``amqp://user:pw@127.0.0.1:<port>/``."""

    def __init__(self) -> None:
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise RuntimeError(MISSING)
        self.port = free_port()
        self.tls_port = free_port()
        self.user = f"test-{secrets.token_hex(3)}"
        self.password = secrets.token_urlsafe(12)
        self.node = f"msgflo-test-{secrets.token_hex(4)}@localhost"
        self._dir = tempfile.TemporaryDirectory(prefix="msgflo-rabbitmq-")
        self.workdir = Path(self._dir.name)
        (self.workdir / "pki").mkdir()
        self.pki: Pki = make_pki(self.workdir / "pki", ca_name="msgflo-gateway RabbitMQ test CA")
        self._env = self._environment(free_port(), free_port())
        self._epmd: subprocess.Popen[bytes] | None = None
        self._server: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@{LOOPBACK}:{self.port}/"

    def tls_url(self, query: str = "") -> str:
        """The TLS listener's URL with ``query`` (``ca_certs=...&certfile=...``) appended."""
        url = f"amqps://{self.user}:{self.password}@{LOOPBACK}:{self.tls_port}/"
        return f"{url}?{query}" if query else url

    def _environment(self, dist_port: int, epmd_port: int) -> dict[str, str]:
        d = self.workdir
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {LOOPBACK}:{self.port}\n"
            f"listeners.ssl.1 = {LOOPBACK}:{self.tls_port}\n"
            f"ssl_options.cacertfile = {self.pki.ca}\n"
            f"ssl_options.certfile = {self.pki.server_cert}\n"
            f"ssl_options.keyfile = {self.pki.server_key}\n"
            "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
            f"default_user = {self.user}\n"
            f"default_pass = {self.password}\n"
            "default_user_tags.administrator = true\n"
            "log.console = false\n"
            "log.file.level = warning\n"
        )
        (d / "enabled_plugins").write_text("[].\n")
        return {
            **os.environ,
            "HOME": str(d),  # the Erlang cookie rabbitmqctl shares with the node lives here
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(d / "rabbit.pid"),
        }

    def start(self) -> None:
        if self._epmd is None:
            # Our own epmd in the foreground, so that it is ours to stop (the one Erlang starts
            # by itself daemonizes and would outlive the session).
            port = self._env["ERL_EPMD_PORT"]
            self._epmd = self._spawn(["epmd", "-port", port, "-address", LOOPBACK], "epmd.log")
        self._server = self._spawn([str(RABBIT_BIN / "rabbitmq-server")], "server.log")
        self._wait_listening()

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with (self.workdir / log_name).open("ab") as out:
            # A session of its own: stopping it stops the shell script and the Erlang VM together.
            return subprocess.Popen(
                with_parent_death_signal(argv),
                env=self._env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_listening(self) -> None:
        # The AMQP listener opens only once the broker has booted completely.
        wait_listening(
            self._server, self.port, name="rabbitmq", timeout=START_TIMEOUT, log_tail=self.log_tail
        )

    def ctl(self, *args: str) -> str:
        """Run ``rabbitmqctl -n <node> args`` and return its output (tab-separated lists).

        rabbitmqctl is an Erlang node of its own that connects to the broker's; on a loaded
        machine that once failed (exit 64) in an interop run: it gets two more tries, and what
        it printed is in the error if all three fail."""
        errors = []
        for _ in range(3):
            done = subprocess.run(
                [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, "-q", *args],
                env=self._env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if done.returncode == 0:
                return done.stdout
            errors.append(f"exit {done.returncode}: {(done.stdout + done.stderr).strip()!r}")
            time.sleep(0.5)
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {'; '.join(errors)}")

    def bindings(self) -> set[tuple[str, str]]:
        """(source exchange, destination) of every binding on the broker."""
        out = self.ctl("list_bindings", "source_name", "destination_name")
        rows = (line.split("\t")[:2] for line in out.splitlines() if "\t" in line)
        return {(source, destination) for source, destination in rows}

    def log_tail(self, lines: int = 8) -> str:
        path = self.workdir / "server.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return " | ".join(text.splitlines()[-lines:]) or "(no log)"

    def stop(self) -> None:
        """Stop the broker (its database stays, so a restart keeps durable queues)."""
        if self._server is not None and self._server.poll() is None:
            with_group = self._server.pid
            stop_process(self._server, signal.SIGTERM, grace=15)
            _kill_group(with_group)
        self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    async def restart_async(self) -> None:
        """Restart without blocking the event loop for the seconds it takes.

        The broker is spawned on the calling (event loop) thread, never in a worker thread:
        the parent-death signal fires when the spawning *thread* ends, and asyncio's executor
        threads end with the test's event loop, which would stop the session's broker.
        """
        await asyncio.to_thread(self.stop)
        self._server = self._spawn([str(RABBIT_BIN / "rabbitmq-server")], "server.log")
        await asyncio.to_thread(self._wait_listening)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        stop_process(self._epmd)
        self._epmd = None
        self._dir.cleanup()


def _kill_group(pgid: int) -> None:
    """Kill what is left of a process group we started (Erlang helpers such as erl_child_setup)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
