"""Helpers for the interop tests: the reference tools, child processes, our coordinator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aio_pika
import pytest

from gateway.coordinator.coordinator import Coordinator
from gateway.participant import Message, Participant, serve
from gateway.processes import with_parent_death_signal

TESTS = Path(__file__).parents[1]
ROOT = TESTS.parent
FIXTURES = Path(__file__).parent / "fixtures"
NODE_MODULES = TESTS / "npm" / "node_modules"
BIN = Path(sys.executable).parent  # our console scripts, in the venv running the tests
REPEAT = ROOT / "examples" / "repeat.py"
REFERENCE_VENV = TESTS / ".venv-msgflo041"
SETUP_HINT = "the test tools are installed by ./bootstrap.sh setup"
STOP_TIMEOUT = 10.0

T = TypeVar("T")


# -- reference tools -------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeTools:
    """Node.js and the npm packages of tests/npm/package.json."""

    node: str
    modules: Path

    @property
    def msgflo_nodejs(self) -> Path:
        return self.modules / "msgflo-nodejs" / "bin" / "msgflo-nodejs"

    @property
    def nodejs_repeat(self) -> Path:
        """The Repeat participant shipped as an example in msgflo-nodejs 0.11.1."""
        return self.modules / "msgflo-nodejs" / "examples" / "Repeat.coffee"

    @property
    def msgflo(self) -> Path:
        """The original coordinator of npm msgflo 0.12.3."""
        return self.modules / "msgflo" / "bin" / "msgflo"


def _package_version(modules: Path, name: str) -> str | None:
    manifest = modules / name / "package.json"
    if not manifest.is_file():
        return None
    version = json.loads(manifest.read_text()).get("version")
    return version if isinstance(version, str) else None


def node_tools() -> NodeTools:
    """The Node.js reference tools, or a test failure saying what is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH; {SETUP_HINT}")
    wanted = {"msgflo-nodejs": "0.11.1", "msgflo": "0.12.3", "mqtt": "2.18.9"}
    for name, version in wanted.items():
        found = _package_version(NODE_MODULES, name)
        if found != version:
            pytest.fail(
                f"npm {name} {version} is not installed in {NODE_MODULES} (found {found}); "
                f"{SETUP_HINT}"
            )
    return NodeTools(node, NODE_MODULES)


@dataclass(frozen=True)
class ReferencePython:
    """msgflo-python 0.4.1 from PyPI in its own venv (tests/.venv-msgflo041)."""

    python: Path
    runner: Path  # the package's own ``msgflo-python`` script


def reference_python() -> ReferencePython:
    python = REFERENCE_VENV / "bin" / "python"
    runner = REFERENCE_VENV / "bin" / "msgflo-python"
    if not (python.is_file() and runner.is_file()):
        pytest.fail(f"msgflo-python 0.4.1 is not installed in {REFERENCE_VENV}; {SETUP_HINT}")
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('msgflo'))"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.stdout.strip() != "0.4.1":
        pytest.fail(
            f"{REFERENCE_VENV} does not hold msgflo 0.4.1 ({probe.stdout.strip()!r} "
            f"{probe.stderr.strip()!r}); {SETUP_HINT}"
        )
    return ReferencePython(python, runner)


# -- child processes -------------------------------------------------------------------------


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: nothing of the test's own venv leaks into another one."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "MSGFLO_BROKER")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Child:
    """A child process with its output in a file; always stopped (process group) on exit.

    ``async with Child(...) as child``; :meth:`wait_for_output` polls the output file with a
    deadline, and failures show the output of the child.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | Path],
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.workdir = workdir
        self.env = clean_env(env)
        self.log_path = workdir / f"{name}.log"
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Child:
        with self.log_path.open("wb") as log:
            # The child holds its own copy of the file descriptor.
            self._process = await asyncio.create_subprocess_exec(
                *with_parent_death_signal(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env,
                start_new_session=True,
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> int | None:
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self._signal(signal.SIGKILL)
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        return process.returncode

    def _signal(self, signum: signal.Signals) -> None:
        assert self._process is not None
        # The child leads its own session: this reaches it and anything it started, no more.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        status = "running" if self.running else f"exited with {self.returncode}"
        return f"--- {self.name} ({status}): {' '.join(self.argv)}\n{self.output()}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    async def wait_for_output(self, text: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while text not in self.output():
                if not self.running:
                    pytest.fail(f"{self.name} exited before printing {text!r}\n{self.describe()}")
                await asyncio.sleep(0.05)


async def within(
    timeout: float, awaitable: Awaitable[T], what: str, children: Sequence[Child] = ()
) -> T:
    """``awaitable`` within ``timeout`` seconds, else a failure that shows the children's output."""
    try:
        async with asyncio.timeout(timeout):
            return await awaitable
    except TimeoutError:
        logs = "\n".join(c.describe() for c in children)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


# -- our side ----------------------------------------------------------------------------------


async def wired(coordinator: Coordinator, edges: int) -> None:
    """Until ``edges`` edges of the graph are resolved and wired."""
    while sum(s.resolved for s in coordinator.edge_states()) < edges:
        await coordinator.wired()
        await asyncio.sleep(0.02)
    await coordinator.wired()


class Tag(Participant):
    """Our participant: adds its role to the ``path`` list of a JSON object and passes it on."""

    def __init__(self, role: str) -> None:
        definition = {
            "component": "Tag",
            "inports": [{"id": "in", "type": "object"}],
            "outports": [{"id": "out", "type": "object"}],
        }
        super().__init__(definition, role)

    def process(self, inport: str, msg: Message) -> None:
        data = msg.data
        assert isinstance(data, dict), data
        path = data.get("path", [])
        assert isinstance(path, list), path
        self.send("out", {**data, "path": [*path, self.role]})
        self.ack(msg)


@contextlib.asynccontextmanager
async def our_participants(url: str, *group: Participant) -> AsyncIterator[None]:
    """Our participants running in this process until the block ends."""
    task = asyncio.create_task(serve(list(group), url))
    try:
        async with asyncio.timeout(10):
            while any(p.stats.announced == 0 for p in group):
                await asyncio.sleep(0.01)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def python_repeats(broker: str, roles: Sequence[str], workdir: Path, period: float) -> list[Child]:
    """examples/repeat.py under our ``msgflo-python``, one process per role, announcing every
    ``period`` / 2.2 s: the original coordinators subscribe to discovery only once node has
    loaded them, later than our participants first announce."""
    argv = ["--broker", broker, "--discovery-period", str(period)]
    return [
        Child(role, [BIN / "msgflo-python", REPEAT, role, *argv], workdir=workdir) for role in roles
    ]


async def next_body(queue: aio_pika.abc.AbstractQueue) -> bytes:
    """The body of the next message on ``queue`` (acked); bound it with :func:`within`."""
    async with queue.iterator() as messages:
        async for message in messages:
            await message.ack()
            return message.body
    raise AssertionError(f"queue {queue.name} closed")
