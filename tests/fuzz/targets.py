"""Every parser of outside input, as a fuzz target: how to feed it bytes, what it must return,
which of the project's errors it may raise, how much memory one case may take, and a
generator of near-valid inputs. ``tests/fuzz`` runs each with a small budget,
``bench/fuzz.py`` with a large one.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import yaml
from hypothesis import strategies as st

from gateway.bridges.serial.description import (
    MAX_DESCRIPTION,
    DescriptionAssembler,
    DeviceDescription,
    parse_description,
)
from gateway.bridges.serial.link import (
    DELIMITER,
    FrameType,
    LinkDecoder,
    cobs_encode,
    crc16_ccitt_false,
    decode_frame,
)
from gateway.bridges.serial.link import Description as DescriptionPart
from gateway.cli.register import definitions
from gateway.config.model import GatewayConfig
from gateway.errors import (
    ConfigError,
    DefinitionError,
    DescriptionError,
    DiscoveryError,
    GraphError,
    HostapdError,
    ProtocolError,
    SerialLinkError,
)
from gateway.graph import Graph, fbp_with_warnings, read_graph, to_json
from gateway.participant.definition import ParticipantDefinition
from gateway.participant.discovery import Discovered, encode_discovery, parse_discovery
from gateway.runtime_protocol.messages import parse_frame, parse_request
from gateway.runtime_protocol.requests import Request
from gateway.transport.mqtt.packets import (
    MQTT_5,
    MQTT_311,
    PROPERTY_KINDS,
    Decoder,
    MalformedPacketError,
    encode_varint,
)
from gateway.wifi.hostapd_ctrl import (
    Command,
    Reply,
    expect_word,
    is_event,
    parse_event,
    parse_station,
    parse_status,
)
from tests.fuzz.harness import Target, one_line
from tests.fuzz.inputs import (
    SCALARS,
    json_text,
    json_values,
    mutated,
    nested,
    seeds_or,
    text_of,
)

MIB = 1 << 20
JSON_NESTS = ((b"[", b"]"), (b'{"a":', b"}"), (b'{"payload":', b"}"))
YAML_NESTS = ((b"[", b"]"), (b"{a: ", b"}"), (b"- ", b""), (b"&x [", b"]"))


def billion_laughs(levels: int = 9, width: int = 10) -> bytes:
    """The classic: each level a list of ``width`` aliases of the one before."""
    lines = ['lol0: &lol0 "lol"']
    for n in range(1, levels + 1):
        refs = ", ".join(f"*lol{n - 1}" for _ in range(width))
        lines.append(f"lol{n}: &lol{n} [{refs}]")
    return ("\n".join(lines) + f"\ninports: *lol{levels}\ncomponent: *lol{levels}\n").encode()


@st.composite
def laughs(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A YAML seed with an alias bomb spliced in front (small, medium or the real thing)."""
    bomb = billion_laughs(draw(st.integers(1, 9)), draw(st.integers(1, 12)))
    return bomb + draw(st.sampled_from(seeds))


# -- discovery ------------------------------------------------------------------------------------

PORT_KEYS = ("id", "queue", "type", "hidden", "description", "options", "qos")
DEFINITION_KEYS = ("role", "id", "component", "label", "icon", "inports", "outports")
DISCOVERY_SEED = (
    b'{"protocol": "discovery", "command": "participant", "payload": {"role": "door", "id": '
    b'"door", "component": "DoorLock", "inports": [{"id": "in", "queue": "door/in"}], '
    b'"outports": [{"id": "out", "queue": "door/out", "type": "boolean"}]}}'
)


def _port_dicts() -> st.SearchStrategy[object]:
    plausible = st.fixed_dictionaries(
        {"id": st.sampled_from(["in", "out", ""]) | SCALARS},
        optional={k: st.sampled_from(["a/b", "x", "+", "#", ""]) | SCALARS for k in PORT_KEYS[1:]},
    )
    return plausible | json_values(PORT_KEYS, leaves=6)


def _envelope() -> st.SearchStrategy[object]:
    payload = st.fixed_dictionaries(
        {},
        optional={
            **{k: st.sampled_from(["door", "x", ""]) | SCALARS for k in DEFINITION_KEYS[:5]},
            "inports": st.lists(_port_dicts(), max_size=4) | SCALARS,
            "outports": st.lists(_port_dicts(), max_size=4) | SCALARS,
        },
    )
    return st.fixed_dictionaries(
        {
            "protocol": st.just("discovery") | SCALARS,
            "command": st.just("participant") | SCALARS,
            "payload": payload | json_values(DEFINITION_KEYS),
        }
    )


def _discovery(data: bytes, workdir: Path) -> Discovered:
    try:
        parse_discovery(data, lenient=False)
    except DiscoveryError as exc:
        assert one_line(str(exc)), repr(str(exc))
    return parse_discovery(data)


def _discovery_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seeds = seeds_or(seeds, DISCOVERY_SEED)
    tokens = (b"[", b"{", b'"', b",", b":", b"null", b'"queue"', b'"hidden": true', b"[]", b"{}")
    return st.one_of(mutated(seeds, tokens), nested(seeds, JSON_NESTS), json_text(_envelope()))


# -- graphs ---------------------------------------------------------------------------------------

GRAPH_KEYS = (
    "properties", "inports", "outports", "groups", "processes", "connections", "caseSensitive",
    "component", "metadata", "src", "tgt", "data", "process", "port", "index", "name", "nodes",
    "environment", "type", "runtime",
)  # fmt: skip
JSON_GRAPH_SEED = (
    b'{"processes": {"a": {"component": "Repeat", "metadata": {"x": 1}}, "b": {"component": '
    b'"Drop"}}, "connections": [{"src": {"process": "a", "port": "out"}, "tgt": {"process": '
    b'"b", "port": "in"}}, {"data": 5, "tgt": {"process": "a", "port": "in", "index": 0}}], '
    b'"inports": {"x": {"process": "a", "port": "in"}}, "outports": {}, "groups": [], '
    b'"properties": {"name": "g", "environment": {"type": "msgflo"}}, "caseSensitive": false}'
)
FBP_PARTS = (
    "a", "b(Repeat)", "c(core/Drop)", "d(Repeat:x=1,y=2)", "OUT", "IN", "out[0]", "IN[1]", "->",
    "-> IN", "'x'", "'5'", "'{\"a\": 1}'", "#", "# comment", "INPORT=a.IN:X", "OUTPORT=b.OUT:Y",
    "# @runtime msgflo", "# @name g", ",", "\n", "(", ")", ":", "=", ".", "[", "]", "'", "\\'",
    "3", "-1", "Ω", "\ud800", "\t", "\r", "'\\u0000'",
)  # fmt: skip
FBP_SEED = b"INPORT=a.IN:X\n# @runtime msgflo\n'5' -> IN a(Repeat) OUT -> IN b(core/Drop)\n"


def _graph(data: bytes, workdir: Path, suffix: str) -> Graph:
    path = workdir / f"graph.{suffix}"
    path.write_bytes(data)
    graph, warnings = read_graph(path)
    for warning in warnings:
        assert one_line(str(warning)), repr(str(warning))
    # What was loaded can be saved again, in both formats (the coordinator saves it).
    to_json(graph)
    fbp_with_warnings(graph, lossy=True)
    return graph


def _json_graph_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seeds = seeds_or(seeds, JSON_GRAPH_SEED)
    tokens = (b"[", b"{", b'"', b",", b":", b"null", b'"index": -1', b'"data":', b"[]", b"{}")
    structured = st.dictionaries(st.sampled_from(GRAPH_KEYS), json_values(GRAPH_KEYS), max_size=7)
    return st.one_of(mutated(seeds, tokens), nested(seeds, JSON_NESTS), json_text(structured))


def _fbp_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seeds = seeds_or(seeds, FBP_SEED)
    tokens = tuple(p.encode("utf-8", "surrogatepass") for p in FBP_PARTS)
    nests = ((b"(", b")"), (b"'", b"'"), (b"[", b"]"), (b"a(", b")"), (b"-> ", b""))
    return st.one_of(mutated(seeds, tokens), nested(seeds, nests), text_of(FBP_PARTS))


# -- YAML: gateway.yaml and foreign participants --------------------------------------------------

CONFIG_PARTS = (
    "data_dir:", "broker:", "  port:", "  tls_port:", "  roles:", "  - a", "coordinator:",
    "  graph:", "runtime:", "  secret:", "bridges:", "  serial:", "    roles:", "    '0042': x",
    "access_point:", "  ssid:", "  passphrase:", "  channel:", "  address:", "  dhcp_start:",
    " 192.168.4.1/24", " 6", " 1883", " true", " on", " ~", " []", " {}", " &a", " *a",
    " !!int", " !!binary", " !!python/object:os.system", " <<: *a", " 0o17", " 0x1f", " .inf",
    " '\\ud800'", ' "\\ud800"', " |", " >", "---", "...", "? ", "%YAML 1.2", "\t",
)  # fmt: skip
FOREIGN_PARTS = (
    "component:", "label:", "icon:", "id:", "inports:", "outports:", "  valve:", "  on:",
    "    queue:", "    type:", "  - id:", "    hidden: true", " garden/#ROLE/valve", " number",
    " boolean", " 1234", " ~", " []", " {}", " &a", " *a", " <<: *a", " !!int", " !!str",
    " !!set", " !!omap", " !!python/name:os.system", " 0o17", " 12e3", " '\\ud800'",
    ' "\\ud800"', " |", "---", "? ", "\t",
)  # fmt: skip
CONFIG_SEED = (
    b"broker:\n  port: 1883\n  roles: [door, lamp]\ncoordinator:\n  auto_save: true\n"
    b"bridges:\n  serial:\n    roles:\n      '0042': door\naccess_point:\n  channel: 6\n"
)
FOREIGN_SEED = (
    b"component: garden/Sprinkler\nlabel: Legacy\ninports:\n  valve: {queue: garden/#ROLE/valve,"
    b" type: number}\noutports:\n  on: {queue: garden/#ROLE/on, type: boolean}\n"
)


def _yaml_tokens(parts: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(p.encode("utf-8", "surrogatepass") for p in parts)


def _config(data: bytes, workdir: Path) -> GatewayConfig:
    from gateway.config import load_config

    path = workdir / "gateway.yaml"
    path.write_bytes(data)
    return load_config(path)


def _config_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seeds = seeds_or(seeds, CONFIG_SEED)
    return st.one_of(
        mutated(seeds, _yaml_tokens(CONFIG_PARTS)),
        nested(seeds, YAML_NESTS),
        laughs(seeds),
        text_of(CONFIG_PARTS),
    )


def _foreign(data: bytes, workdir: Path) -> ParticipantDefinition:
    path = workdir / "foreign.yaml"
    path.write_bytes(data)
    (found,) = definitions([f"door:{path}"])
    encode_discovery(found)  # what msgflo-register then sends
    return found


def _foreign_dump() -> st.SearchStrategy[bytes]:
    doc = st.dictionaries(
        st.sampled_from(("component", "label", "icon", "id", "inports", "outports")),
        json_values((*PORT_KEYS, "valve", "on"), leaves=10),
        max_size=6,
    )
    return doc.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode("utf-8", "surrogatepass"))


def _foreign_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seeds = seeds_or(seeds, FOREIGN_SEED)
    return st.one_of(
        mutated(seeds, _yaml_tokens(FOREIGN_PARTS)),
        nested(seeds, YAML_NESTS),
        laughs(seeds),
        text_of(FOREIGN_PARTS),
        _foreign_dump(),
    )


# -- serial link ----------------------------------------------------------------------------------

TYPES = [int(t) for t in FrameType]


@st.composite
def _frame(draw: st.DrawFn) -> bytes:
    """One COBS frame with a correct CRC and a body that is random, or close to a real one."""
    kind = draw(st.sampled_from(TYPES) | st.integers(0, 255))
    body = draw(
        st.binary(max_size=12)
        | st.binary(max_size=250)
        | st.builds(lambda n, t: bytes([n]) + t, st.integers(0, 255), st.binary(max_size=20))
    )
    raw = bytes([kind, draw(st.integers(0, 255))]) + body
    raw += crc16_ccitt_false(raw).to_bytes(2, "big")
    encoded = cobs_encode(raw)
    if draw(st.integers(0, 9)) == 0:
        encoded = draw(st.binary(max_size=300))
    return encoded + DELIMITER


def _serial_link(data: bytes, workdir: Path) -> list[object]:
    whole = LinkDecoder().feed(data)
    chunked = LinkDecoder()
    pieces: list[object] = []
    for start in range(0, len(data), 7):
        pieces += chunked.feed(data[start : start + 7])
    # Events are the same however the bytes arrive (errors compare by their text).
    assert [str(e) for e in whole] == [str(e) for e in pieces]
    for event in whole:
        assert not isinstance(event, SerialLinkError) or one_line(str(event))
    for piece in data.split(DELIMITER)[:-1]:
        if piece:
            try:
                decode_frame(piece)
            except SerialLinkError as exc:
                assert one_line(str(exc)), repr(str(exc))
    return list(whole)


def _serial_link_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    frames = st.lists(_frame(), min_size=1, max_size=6).map(b"".join)
    seeds = seeds_or(seeds, b"\x00")
    tokens = (DELIMITER, b"\xff" * 8, b"\x01", b"\x02\x48")
    return st.one_of(frames, mutated(seeds, tokens), st.binary(max_size=600))


DESCRIPTION_SEED = (
    b'{"component": "Thermo", "label": "T", "version": "1", "inports": [{"id": "set", "type": '
    b'"number"}], "outports": [{"id": "temp", "type": "number"}]}'
)


def _description(data: bytes, workdir: Path) -> DeviceDescription:
    """As the bridge does: the text in ``D`` replies of at most 240 bytes, then parsed."""
    assembler = DescriptionAssembler()
    text = None
    for offset in range(0, max(len(data), 1), 240):
        text = assembler.add(DescriptionPart(offset, len(data), data[offset : offset + 240]))
    assert text is not None or len(data) > MAX_DESCRIPTION
    return parse_description(data)


def _description_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seeds = seeds_or(seeds, DESCRIPTION_SEED)
    keys = ("component", "label", "icon", "inports", "outports", "version", "id", "type")
    tokens = (b"[", b"{", b'"', b",", b":", b"null", b'"id"', b"[]", b"{}")
    nests = ((b"[", b"]"), (b'{"a":', b"}"))
    small = st.one_of(
        mutated(seeds, tokens), json_text(st.dictionaries(st.sampled_from(keys), SCALARS))
    )
    deep = nested(seeds, nests).map(lambda b: b[:MAX_DESCRIPTION])
    return st.one_of(small, deep, json_text(json_values(keys)))


# -- runtime protocol -----------------------------------------------------------------------------

RUNTIME_KEYS = (
    "protocol", "command", "payload", "secret", "graph", "id", "component", "metadata", "src",
    "tgt", "node", "port", "index", "public", "name", "nodes", "edges", "from", "to", "data",
    "event", "enable", "main", "x", "y", "route",
)  # fmt: skip
RUNTIME_SEED = (
    b'{"protocol": "graph", "command": "addedge", "payload": {"graph": "main", "src": {"node": '
    b'"a", "port": "out"}, "tgt": {"node": "b", "port": "in", "index": 0}, "metadata": {"route":'
    b' 1}}, "secret": "s"}'
)
COMMANDS = (
    "getruntime", "packet", "clear", "addnode", "removenode", "renamenode", "changenode",
    "addedge", "removeedge", "changeedge", "addinitial", "removeinitial", "addinport",
    "removeinport", "renameinport", "addoutport", "removeoutport", "renameoutport", "addgroup",
    "removegroup", "renamegroup", "changegroup", "start", "stop", "getstatus", "edges", "list",
    "getsource", "debug", "persist",
)  # fmt: skip


def _runtime(data: bytes, workdir: Path) -> Request:
    try:
        text = data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        pass
    else:  # a websocket text frame arrives as str
        try:
            parse_request(parse_frame(text))
        except ProtocolError as exc:
            assert one_line(str(exc)), repr(str(exc))
    return parse_request(parse_frame(data))


def _runtime_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seeds = seeds_or(seeds, RUNTIME_SEED)
    frames = st.fixed_dictionaries(
        {
            "protocol": st.sampled_from(["runtime", "graph", "network", "component", "trace"]),
            "command": st.sampled_from(COMMANDS) | st.text(max_size=4),
            "payload": st.dictionaries(
                st.sampled_from(RUNTIME_KEYS), json_values(RUNTIME_KEYS, leaves=8), max_size=8
            ),
        },
        optional={"secret": st.text(max_size=3)},
    )
    tokens = (b"[", b"{", b'"', b",", b":", b"null", b'"graph": "main"', b"[]", b"{}")
    return st.one_of(mutated(seeds, tokens), nested(seeds, JSON_NESTS), json_text(frames))


# -- MQTT packets from the broker -----------------------------------------------------------------

FIRST_BYTES = (0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x3B, 0x3D, 0x3F, 0x40, 0x50,
               0x62, 0x70, 0x90, 0xB0, 0xD0, 0xE0, 0xF0, 0x00, 0x10, 0x21, 0x41)  # fmt: skip


@st.composite
def _properties(draw: st.DrawFn) -> bytes:
    body = b""
    for ident in draw(st.lists(st.sampled_from(sorted(PROPERTY_KINDS)) | st.integers(0, 300))):
        kind = PROPERTY_KINDS.get(ident, 1)
        body += encode_varint(ident)
        if isinstance(kind, int):
            body += draw(st.binary(min_size=kind, max_size=kind))
        elif kind == "v":
            body += encode_varint(draw(st.integers(0, 268_435_455)))
        else:
            for _ in range(2 if kind == "p" else 1):
                text = draw(st.binary(max_size=10) | st.text(max_size=6).map(str.encode))
                body += len(text).to_bytes(2, "big") + text
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return encode_varint(len(body)) + body


@st.composite
def _packet(draw: st.DrawFn) -> bytes:
    first = draw(st.sampled_from(FIRST_BYTES) | st.integers(0, 255))
    head = draw(st.binary(max_size=4))
    if first >> 4 == 3:  # PUBLISH: topic, packet id, properties, payload
        topic = draw(st.text(max_size=8).map(str.encode) | st.binary(max_size=8))
        head = len(topic).to_bytes(2, "big") + topic + (draw(st.binary(min_size=2, max_size=2)))
    body = head + draw(_properties()) + draw(st.binary(max_size=16))
    length = draw(st.just(len(body)) | st.integers(0, 268_435_455))
    return bytes([first]) + encode_varint(length) + body


def _mqtt(data: bytes, workdir: Path) -> list[object]:
    for version in (MQTT_311, MQTT_5):  # the same bytes as either protocol's
        decoder = Decoder(version, max_packet_size=1 << 16)
        try:
            for start in range(0, len(data), 5):
                decoder.feed(data[start : start + 5])
        except MalformedPacketError as exc:
            assert one_line(str(exc)), repr(str(exc))
    Decoder(MQTT_311).feed(data)  # raises as the MQTT 5 one may, or returns
    return list(Decoder().feed(data))


def _mqtt_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seeds = seeds_or(seeds, b"\x20\x03\x00\x00\x00")
    packets = st.lists(_packet(), min_size=1, max_size=4).map(b"".join)
    varints = (b"\xff\xff\xff\xff\x7f", b"\x80\x80\x80\x80", b"\xff\xff\xff\x7f")
    return st.one_of(packets, mutated(seeds, varints), st.binary(max_size=64))


# -- hostapd control replies ----------------------------------------------------------------------

HOSTAPD_PARTS = (
    "state=ENABLED", "state=DISABLED", "channel=6", "freq=2437", "bss[0]=wlan0",
    "bssid[0]=02:00:00:00:01:00", "ssid[0]=msgflo-1a2b", "num_sta[0]=1", "bss[1]=wlan1",
    "bss[99999]=x", "num_sta[0]=-1", "channel=" + "9" * 30, "02:00:00:00:01:00",
    "flags=[AUTH][ASSOC][AUTHORIZED]", "flags=[", "aid=1", "signal=-40", "rx_bytes=123",
    "<3>AP-STA-CONNECTED 02:00:00:00:01:00", "<3>AP-STA-DISCONNECTED ", "<3>AP-ENABLED",
    "<99>", "<3>", "PONG", "OK", "FAIL", "UNKNOWN COMMAND", "=", "\u2028", "\x00", "\ud800",
)  # fmt: skip
HOSTAPD_SEED = (
    b"state=ENABLED\nphy=phy0\nfreq=2437\nchannel=6\nbss[0]=wlan0\nbssid[0]=02:00:00:00:01:00\n"
    b"ssid[0]=msgflo-1a2b\nnum_sta[0]=1\n"
)


def _hostapd(data: bytes, workdir: Path) -> tuple[object, ...]:
    results: list[object] = []
    calls = (
        lambda: parse_status(data),
        lambda: parse_station(Command.STA_FIRST.value, data),
        lambda: parse_station(f"{Command.STA_NEXT.value} 02:00:00:00:01:00", data),
        lambda: expect_word(Command.PING.value, data, Reply.PONG),
        lambda: parse_event(data) if is_event(data) else None,
    )
    for call in calls:
        try:
            results.append(call())
        except HostapdError as exc:
            assert one_line(str(exc)), repr(str(exc))
            results.append(exc)
    return tuple(results)


def _hostapd_inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    seeds = seeds_or(seeds, HOSTAPD_SEED)
    tokens = tuple(p.encode("utf-8", "surrogatepass") for p in HOSTAPD_PARTS)
    return st.one_of(mutated(seeds, tokens), text_of(HOSTAPD_PARTS))


# -- the list -------------------------------------------------------------------------------------

DEEP_JSON = b"[" * 100_000
TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "discovery",
            _discovery,
            Discovered,
            (DiscoveryError,),
            64 * MIB,
            _discovery_inputs,
            worst=(
                DEEP_JSON,
                b'{"protocol": "discovery", "command": "participant", "payload": '
                + b"[1," * 80_000
                + b"]",
                b'{"payload": ' + b"9" * 5000 + b"}",
            ),
        ),
        Target(
            "graph_json",
            lambda data, workdir: _graph(data, workdir, "json"),
            Graph,
            (GraphError,),
            64 * MIB,
            _json_graph_inputs,
            worst=(
                DEEP_JSON,
                b'{"processes": {"a": {"component": "x", "metadata": {"n": '
                + b"9" * 5000
                + b"}}}}",
                json.dumps(
                    {"processes": {f"p{n}": {"component": "R"} for n in range(5000)}}
                ).encode(),
            ),
        ),
        Target(
            "graph_fbp",
            lambda data, workdir: _graph(data, workdir, "fbp"),
            Graph,
            (GraphError,),
            64 * MIB,
            _fbp_inputs,
            worst=(
                b"a(R) OUT -> IN " * 3000 + b"b(R)\n",
                b"(" * 100_000,
                b"'" + b"x" * 200_000 + b"' -> IN a(R)\n",
                b"'" + b"[" * 100_000 + b"' -> IN a(R)\n",
            ),
        ),
        Target(
            "config",
            _config,
            GatewayConfig,
            (ConfigError,),
            64 * MIB,
            _config_inputs,
            worst=(
                billion_laughs().replace(b"inports", b"broker").replace(b"component", b"x"),
                b"broker: " + b"[" * 100_000,
                b"broker: {port: " + b"9" * 5000 + b"}\n",
            ),
        ),
        Target(
            "foreign",
            _foreign,
            ParticipantDefinition,
            (DefinitionError,),
            64 * MIB,
            _foreign_inputs,
            worst=(
                billion_laughs(),
                b"inports: " + b"[" * 100_000,
                b"component: X\ninports: {a: {queue: " + b"9" * 5000 + b"}}\n",
            ),
        ),
        Target(
            "serial_link",
            _serial_link,
            list,
            (SerialLinkError,),
            16 * MIB,
            _serial_link_inputs,
            worst=(b"\x01" * 1_000_000, b"\x00" * 100_000, b"\xff" * 300_000 + b"\x00"),
        ),
        Target(
            "serial_description",
            _description,
            DeviceDescription,
            (DescriptionError,),
            16 * MIB,
            _description_inputs,
            worst=(
                b'{"component": "' + b"x" * 4000 + b'"}',
                json.dumps(
                    {"component": "x", "inports": [{"id": f"p{n}"} for n in range(256)]}
                ).encode()[:MAX_DESCRIPTION],
            ),
        ),
        Target(
            "runtime_protocol",
            _runtime,
            typing.get_args(Request),
            (ProtocolError,),
            64 * MIB,
            _runtime_inputs,
            worst=(DEEP_JSON, b'{"protocol": "graph", "payload": ' + b"9" * 5000 + b"}"),
        ),
        Target(
            "mqtt",
            _mqtt,
            list,
            (MalformedPacketError,),
            16 * MIB,
            _mqtt_inputs,
            worst=(
                b"\x30\xff\xff\xff\x7f" + b"\x00" * 100_000,
                b"\xd0\x00" * 100_000,
                b"\x20\x03\x00\x00\x00" * 50_000,
            ),
        ),
        Target(
            "hostapd",
            _hostapd,
            tuple,
            (HostapdError,),
            16 * MIB,
            _hostapd_inputs,
            worst=(HOSTAPD_SEED * 4000, b"flags=" + b"[x]" * 20_000, b"<3>" + b"a" * 65_000),
        ),
    )
}
