"""Our participants wired by the original coordinator, npm msgflo 0.12.3 (issue 4, item 8).

The graph ``'hello' -> IN a(PythonRepeat)``, ``a OUT -> IN b(PythonRepeat)`` runs under the
original ``msgflo`` command; ``a`` and ``b`` are examples/repeat.py run by our ``msgflo-python``,
as separate processes. The original has no component for them in its library, so it assumes they
run elsewhere and waits for their discovery messages: it can only wire ``a/out`` to ``b/in``
(our ``role/port`` names, not its own ``role.PORT`` convention) by parsing what they announce.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.mosquitto import LOOPBACK, Mosquitto, free_port
from tests.conftest import Probe
from tests.interop.support import Child, node_tools, python_repeats, within

pytestmark = pytest.mark.integration

GRAPH = "'hello' -> IN a(PythonRepeat)\na OUT -> IN b(PythonRepeat)\n"
# Sent with trailing zeros and escapes, as a device would: only the values survive the chain.
SENT = b'{"reading": 23.50, "unit": "\\u00b0C", "ok": true, "tags": ["x", "y"]}'
VALUE = json.loads(SENT)
DISCOVERY_PERIOD = 2  # seconds: our participants announce every 2 / 2.2 s
WAIT_TIMEOUT = 30  # the original's --wait-timeout: how long it waits for a and b, seconds


async def test_our_participants_under_the_original_coordinator(
    mosquitto: Mosquitto, probe: Probe, tmp_path: Path
) -> None:
    tools = node_tools()
    (tmp_path / "graph.fbp").write_text(GRAPH)
    # Its component library is read from package.json in the working directory (it stops with
    # ENOENT without one); this one declares no components, so it starts no participants.
    (tmp_path / "package.json").write_text('{"name": "msgflo-gateway-interop"}\n')
    port = free_port()
    coordinator_args = ["--graph", "graph.fbp", "--broker", mosquitto.url, "--host", LOOPBACK]
    coordinator_args += ["--port", str(port), "--wait-timeout", str(WAIT_TIMEOUT)]
    original = Child(
        "msgflo-original", [tools.node, tools.msgflo, *coordinator_args], workdir=tmp_path
    )
    # The original subscribes to discovery only once node has loaded it, which takes longer than
    # our participants take to announce themselves; a short discovery period makes them announce
    # again within a second instead of the default 27 s.
    ours = python_repeats(mosquitto.url, ("a", "b"), tmp_path, DISCOVERY_PERIOD)
    children = [original, *ours]
    for topic in ("a/out", "b/in", "b/out"):
        await probe.watch(topic)

    async with original, ours[0], ours[1]:
        # Printed once the graph is loaded: both participants found and a -> b bound.
        started = f"msgflo started on ws://{LOOPBACK}:{port}"
        await within(WAIT_TIMEOUT + 10, original.wait_for_output(started, 60), started, children)

        # The original sent the IIP to a's inport as it was discovered (a subscribes first).
        what = "the IIP's echo on a/out"
        first = await within(20, probe.wait_count("a/out", 1, timeout=60), what, children)
        assert json.loads(first[0]) == "hello"

        probe.transport.publish("a/in", SENT)
        await within(20, wait_for_value(probe, "b/out", VALUE), "the data on b/out", children)

        for child in ours:
            assert child.running, child.describe()
        assert original.running, original.describe()

    # a's output passed the original's forwarder, which re-encodes (JSON.parse, JSON.stringify:
    # protocol.md 4.1): what b received is compact JSON with the escape decoded, while a sent
    # Python's json.dumps with spaces.
    from_a = [m for m in probe.received["a/out"] if json.loads(m) == VALUE]
    to_b = [m for m in probe.received["b/in"] if json.loads(m) == VALUE]
    assert from_a == [json.dumps(VALUE).encode()]
    assert to_b == [json.dumps(VALUE, separators=(",", ":"), ensure_ascii=False).encode()]
    for child in ours:
        assert "Traceback" not in child.output(), child.describe()


async def wait_for_value(probe: Probe, topic: str, value: object) -> None:
    """Until a message decoding to ``value`` arrives on ``topic`` (b may first get the IIP's
    echo, when the original bound a -> b before sending the IIP)."""
    seen = 0
    while True:
        messages = await probe.wait_count(topic, seen + 1, timeout=60)
        if any(json.loads(m) == value for m in messages[seen:]):
            return
        seen = len(messages)
