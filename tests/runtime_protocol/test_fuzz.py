"""Arbitrary and invalid frames: the core always answers, never raises, never sends an invalid
message, and an invalid frame gets exactly one ``<protocol>:error``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.graph.model import Edge, ExportedPort, Graph, Initial, PortRef, Process
from gateway.runtime_protocol.core import ProtocolCore
from tests.runtime_protocol.conftest import INFO, SCHEMA_DIR, SECRET, FakeEnvironment, Schemas

SCHEMAS = Schemas(SCHEMA_DIR)
MAIN = "default/main"
SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

PAIRS = [
    (p, c)
    for p in ("runtime", "graph", "network", "component", "trace")
    for c in SCHEMAS.root[p]["input"]
]
KEYS = [
    "graph",
    "id",
    "component",
    "metadata",
    "src",
    "tgt",
    "from",
    "to",
    "public",
    "node",
    "port",
    "name",
    "nodes",
    "edges",
    "event",
    "payload",
    "enable",
    "main",
    "secret",
]
NAMES = st.sampled_from(["A", "B", "C", "in", "out", MAIN, "", "Ω"]) | st.text(max_size=5)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | NAMES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=12,
)
ports = st.fixed_dictionaries(
    {"node": NAMES, "port": NAMES},
    optional={"index": st.integers(-1, 3) | st.sampled_from(["1", "x"])},
)
field_values = (
    json_values | ports | st.fixed_dictionaries({"data": json_values}) | st.lists(NAMES, max_size=3)
)
SMALL = st.sampled_from(["A", "B", "C", "in", "out"])
small_ports = st.fixed_dictionaries(
    {"node": SMALL, "port": SMALL}, optional={"index": st.integers(0, 1)}
)
metadata = st.dictionaries(
    st.sampled_from(["x", "y", "route", "k"]), st.none() | st.integers(0, 9), max_size=3
)
plausible = st.fixed_dictionaries(
    {
        "graph": st.just(MAIN),
        "id": SMALL,
        "component": st.sampled_from(["core/Repeat", "core/Drop", MAIN]),
        "metadata": metadata,
        "src": st.fixed_dictionaries({"node": SMALL, "port": SMALL, "data": json_values}),
        "tgt": small_ports,
        "from": SMALL,
        "to": SMALL,
        "public": SMALL,
        "node": SMALL,
        "port": SMALL,
        "name": st.sampled_from(["A", "B", MAIN, "core/Repeat"]),
        "nodes": st.lists(SMALL, max_size=2),
        "edges": st.lists(
            st.fixed_dictionaries({"src": small_ports, "tgt": small_ports}), max_size=2
        ),
        "event": st.sampled_from(["data", "connect", "boom"]),
        "payload": json_values,
        "enable": st.booleans(),
        "main": st.booleans(),
    }
)


@st.composite
def spoiled(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible payload with one field removed or of a wrong type."""
    payload = draw(plausible)
    key = draw(st.sampled_from(sorted(payload)))
    if draw(st.booleans()):
        del payload[key]
    else:
        payload[key] = draw(field_values)
    return payload


payloads = plausible | spoiled() | st.dictionaries(st.sampled_from(KEYS), field_values, max_size=6)
secrets = st.sampled_from([SECRET, "nope"]) | json_values


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly real commands with plausible or wrong fields; sometimes unknown ones."""
    pair = draw(st.sampled_from(PAIRS) | st.tuples(NAMES, NAMES))
    frame: dict[str, Any] = {"protocol": pair[0], "command": pair[1], "payload": draw(payloads)}
    if draw(st.booleans()):
        frame["secret"] = draw(secrets)
    return frame


def base_graph() -> Graph:
    return Graph(
        processes={"A": Process("core/Repeat"), "B": Process("core/Drop")},
        connections=(Edge(PortRef("A", "out"), PortRef("B", "in")), Initial(1, PortRef("A", "in"))),
        inports={"in": ExportedPort("A", "in")},
        outports={"out": ExportedPort("A", "out")},
    )


async def serve(texts: list[str | bytes], secret: str | None) -> list[list[dict[str, Any]]]:
    """Feed each frame and let the queue apply it; the messages each one caused, per frame."""
    sent: list[dict[str, Any]] = []
    env = FakeEnvironment(base_graph())
    core = ProtocolCore(env, INFO, secret, lambda _, m: sent.append(m))
    core.connected("a")
    task = asyncio.create_task(core.run())
    per_frame = []
    try:
        for text in texts:
            before = len(sent)
            await core.handle("a", text)
            for _ in range(10):
                await asyncio.sleep(0)
            per_frame.append(sent[before:])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for msg in sent:
        text = json.dumps(msg, allow_nan=False)
        assert SECRET not in text
        assert not SCHEMAS.errors(msg), (msg, SCHEMAS.errors(msg))
    return per_frame


def only_error(messages: list[dict[str, Any]]) -> None:
    assert len(messages) == 1, messages
    assert messages[0]["command"] == "error"


@SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_garbage_gets_one_error(text: str | bytes) -> None:
    (reply,) = asyncio.run(serve([text], None))
    if reply and reply[0]["command"] != "error":  # hypothesis found a valid frame: fine
        return
    only_error(reply)


@SETTINGS
@given(json_values)
def test_json_that_is_no_frame_gets_one_error(value: Any) -> None:
    (reply,) = asyncio.run(serve([json.dumps(value)], None))
    only_error(reply)


@SETTINGS
@given(st.lists(frames(), min_size=1, max_size=6), st.sampled_from([None, SECRET]))
def test_any_frames_are_answered_with_valid_messages(
    frames_: list[dict[str, Any]], secret: str | None
) -> None:
    replies = asyncio.run(serve([json.dumps(f) for f in frames_], secret))
    for reply in replies:
        assert reply, "every frame is answered"
        errors = [m for m in reply if m["command"] == "error"]
        if errors:
            only_error(reply)
