"""Participants of the original libraries, unmodified, wired by our coordinator (issue 4, item 8).

The foreign participants are run as their users run them: msgflo-nodejs 0.11.1's CLI on the
Repeat example shipped in its npm package, and msgflo-python 0.4.1's ``msgflo-python`` script (in
a venv of its own, tests/.venv-msgflo041) on the repeat example of its 0.4.1 tag. Each chain test
runs ``first(Tag) -> FOREIGN... -> last(Tag)`` on a real mosquitto, ``first`` and ``last`` being
our participants: one message sent into ``first`` has to cross both directions (ours -> foreign,
foreign -> ours), and the coordinator can only have found the foreign queues in the foreign
discovery messages, since the libraries name queues differently (``role.PORT``, ``role/port``,
protocol.md 2.3)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

from gateway.graph import parse_fbp, parse_json
from gateway.mosquitto import Mosquitto
from tests.conftest import Probe
from tests.interop.support import (
    FIXTURES,
    Child,
    Tag,
    node_tools,
    our_participants,
    reference_python,
    wired,
    within,
)
from tests.support.coordinating import coordinating

pytestmark = pytest.mark.integration

# JSON that survives the originals' JSON re-encoding (no trailing zeros, no raw text): they
# decode and re-encode what they repeat, only the values are compared after them.
SENT = {"path": [], "reading": 23.5, "ok": True, "unit": "°C"}
START_TIMEOUT = 40.0  # a foreign participant from start to wired, on a busy 2-core machine
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass(frozen=True)
class Foreign:
    """What a foreign participant is expected to announce."""

    role: str
    component: str
    inport: str  # queue
    outport: str  # queue
    id_pattern: str


async def check_chain(url: str, probe: Probe, chain: list[tuple[Foreign, Child]]) -> None:
    """``first(Tag) -> FOREIGN... -> last(Tag)``: one message through all, bytes checked."""
    foreigns = [f for f, _ in chain]
    children = [c for _, c in chain]
    roles = ["first", *(f.role for f in foreigns), "last"]
    nodes = {f.role: f.component for f in foreigns} | {"first": "Tag", "last": "Tag"}
    graph = parse_fbp(
        "".join(f"{s}({nodes[s]}) OUT -> IN {t}({nodes[t]})\n" for s, t in pairwise(roles)),
        file="interop.fbp",
    )
    # Each edge as (source topic, target topic), in the order the message takes.
    queues = ["first/out", *(q for f in foreigns for q in (f.inport, f.outport)), "last/in"]
    edges = list(zip(queues[::2], queues[1::2], strict=True))
    for topic in (*queues, "last/out"):
        await probe.watch(topic)
    async with (
        coordinating(url, graph) as coordinator,
        our_participants(url, Tag("first"), Tag("last")),
        contextlib.AsyncExitStack() as stack,
    ):
        for child in children:
            await stack.enter_async_context(child)
        what = f"{', '.join(f.role for f in foreigns)} to be discovered and all edges wired"
        await within(START_TIMEOUT, wired(coordinator, len(roles) - 1), what, children)

        for foreign in foreigns:
            # The foreign discovery message was parsed: its id scheme and queues as announced.
            [seen] = coordinator.registry.live(foreign.role)
            assert re.fullmatch(foreign.id_pattern, seen.id), seen.id
            assert seen.definition.component == foreign.component
            assert [(p.id, p.queue) for p in seen.definition.inports] == [("in", foreign.inport)]
            assert [(p.id, p.queue) for p in seen.definition.outports] == [("out", foreign.outport)]
        assert coordinator.stats.discovery_rejected == 0

        probe.transport.publish("first/in", json.dumps(SENT).encode())
        what = "the message to come out of last"
        [out] = await within(20, probe.wait_count("last/out", 1, timeout=60), what, children)

    assert json.loads(out) == {**SENT, "path": ["first", "last"]}
    # It went through each foreign participant, and our coordinator delivered the bytes on every
    # edge unchanged (the original's forwarder would have re-encoded them, protocol.md 4.1).
    for foreign in foreigns:
        [repeated] = probe.received[foreign.outport]
        assert json.loads(repeated) == {**SENT, "path": ["first"]}
    for source, target in edges:
        assert probe.received[target] == probe.received[source], (source, target)


def nodejs_participant(url: str, workdir: Path) -> tuple[Foreign, Child]:
    """The Repeat example of msgflo-nodejs 0.11.1, run by its ``msgflo-nodejs`` command."""
    tools = node_tools()
    options = ["--name", "nodejs", "--broker", url]
    argv = [str(tools.msgflo_nodejs), *options, str(tools.nodejs_repeat)]
    child = Child("nodejs", [tools.node, *argv], workdir=workdir)
    # msgflo-nodejs: id role-uuid4, queues role.PORT upper-cased (protocol.md 2.3).
    return Foreign("nodejs", "Repeat", "nodejs.IN", "nodejs.OUT", f"nodejs-{UUID}"), child


def msgflo_python_participant(url: str, workdir: Path) -> tuple[Foreign, Child]:
    """The repeat example of msgflo-python 0.4.1, run by its ``msgflo-python`` script."""
    reference = reference_python()
    shutil.copy(FIXTURES / "msgflo-python-0.4.1-repeat.py.txt", workdir / "repeat.py")
    child = Child(
        "py041",
        [reference.python, reference.runner, "repeat.py", "py041"],
        workdir=workdir,
        env={"MSGFLO_BROKER": url},
    )
    # msgflo-python 0.4.1: id role + random number without separator, queues role/port.
    return Foreign("py041", "PythonRepeat", "py041/in", "py041/out", r"py041\d{1,5}"), child


async def test_msgflo_nodejs_participant(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await check_chain(mosquitto.url, probe, [nodejs_participant(mosquitto.url, tmp_path)])


async def test_msgflo_python_041_participant(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    await check_chain(mosquitto.url, probe, [msgflo_python_participant(mosquitto.url, tmp_path)])


async def test_nodejs_to_msgflo_python_041(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    """The two original libraries, each with its own queue naming, talking through us."""
    chain = [
        nodejs_participant(mosquitto.url, tmp_path),
        msgflo_python_participant(mosquitto.url, tmp_path),
    ]
    await check_chain(mosquitto.url, probe, chain)


async def test_iips_reach_foreign_participants(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    """Our coordinator sends each IIP to the foreign inport once the participant is discovered,
    falsy ones included (the original coordinator mistook those for edges, protocol.md 3.3)."""
    nodejs, nodejs_child = nodejs_participant(mosquitto.url, tmp_path)
    py041, py041_child = msgflo_python_participant(mosquitto.url, tmp_path)
    graph = parse_json(
        json.dumps(
            {
                "processes": {f.role: {"component": f.component} for f in (nodejs, py041)},
                "connections": [
                    {"data": 0, "tgt": {"process": nodejs.role, "port": "in"}},
                    {"data": False, "tgt": {"process": py041.role, "port": "in"}},
                ],
            }
        ),
        file="iips.json",
    )
    await probe.watch(nodejs.outport)
    await probe.watch(py041.outport)
    children = [nodejs_child, py041_child]
    async with coordinating(mosquitto.url, graph), nodejs_child, py041_child:
        for foreign in (nodejs, py041):
            what = f"{foreign.role} to repeat its IIP"
            wait = probe.wait_count(foreign.outport, 1, timeout=60)
            await within(START_TIMEOUT, wait, what, children)
    assert probe.received[nodejs.outport] == [b"0"]
    assert probe.received[py041.outport] == [b"false"]
