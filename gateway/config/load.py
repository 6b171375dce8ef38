"""Read ``gateway.yaml`` into a ``GatewayConfig``, or say everything that is wrong with it.

The file is composed, not loaded: YAML nodes keep their line numbers, so each problem reads
``gateway.yaml:7: access_point.chanel: unknown key (did you mean 'channel'?)``. Every problem
in the file is collected before ``ConfigError`` is raised (ESPHome does the same), and the
checks for single values live in ``values.py``. Scalars follow YAML 1.2 (every YAML file's
rules, ``gateway/common/yaml12.py``): ``on``/``off``/``yes``/``no`` are strings, so a boolean
must be ``true`` or ``false``. Relative paths are relative to the file's folder, so one file
works on a laptop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, replace
from dataclasses import fields as dc_fields
from ipaddress import IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from gateway.bridges.gpio import header
from gateway.common.problems import KeyPath, did_you_mean, format_path
from gateway.common.yaml12 import Yaml12Loader, compose_yaml
from gateway.config import values as v
from gateway.config.model import (
    GPIO_KINDS,
    AccessPointConfig,
    BatteryMonitorConfig,
    BleAdoptRule,
    BleBridgeConfig,
    BridgesConfig,
    BrokerConfig,
    CoordinatorConfig,
    GatewayConfig,
    GattPort,
    GpioBridgeConfig,
    GpioDevice,
    HealthConfig,
    LineDevice,
    LinePort,
    Rf433BridgeConfig,
    RuntimeConfig,
    SerialBridgeConfig,
)
from gateway.errors import ConfigError, YamlError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
D = TypeVar("D", bound="DataclassInstance")

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_CONSTRUCTED = {_STR, _NULL, *(f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool"))}
# Implicit tags PyYAML's resolver still applies that mean nothing here: keep their text.
_AS_TEXT = {f"tag:yaml.org,2002:{t}" for t in ("timestamp", "merge", "value")}


class _Failed:
    """The value at a path could not be read; its problem is already recorded."""


FAILED = _Failed()


@dataclass(frozen=True)
class _Unreadable:
    """A scalar PyYAML cannot turn into a value (``!!int abc``, an unknown tag)."""

    reason: str


Reader = Callable[["_Walk", yaml.Node, KeyPath], Any]


@dataclass(frozen=True)
class _Problem:
    line: int
    text: str


@dataclass
class _Walk:
    """One pass over a file's nodes: where problems go, and which keys the file gave."""

    source: str
    base_dir: Path
    problems: list[_Problem] = field(default_factory=list)
    given: dict[KeyPath, yaml.Node] = field(default_factory=dict)
    failed: set[KeyPath] = field(default_factory=set)
    _loader: Yaml12Loader = field(default_factory=lambda: Yaml12Loader(""))

    def problem(self, node: yaml.Node, path: KeyPath, message: str, hint: str = "") -> _Failed:
        line = node.start_mark.line + 1
        where = f" {format_path(path)}:" if path else ""
        tail = f" ({hint})" if hint else ""
        self.problems.append(_Problem(line, f"{self.source}:{line}:{where} {message}{tail}"))
        self.failed.add(path)
        return FAILED

    def value(self, node: yaml.Node) -> object:
        """The Python value of a scalar, a ``Shape`` for a collection, or ``_Unreadable``."""
        if isinstance(node, yaml.MappingNode):
            return v.Shape("a mapping")
        if isinstance(node, yaml.SequenceNode):
            return v.Shape("a list")
        if node.tag in _AS_TEXT:
            return str(node.value)
        if node.tag not in _CONSTRUCTED:
            return _Unreadable(f"unsupported YAML tag {node.tag!r}")
        try:
            return self._loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, KeyError):  # ``!!bool maybe``, 5000-digit ints
            return _Unreadable(f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]}")

    def got(self, node: yaml.Node) -> str:
        """The ``got ...`` part of a message about ``node``."""
        value = self.value(node)
        return f"a value tagged {node.tag!r}" if isinstance(value, _Unreadable) else v.shown(value)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def scalar(check: v.Check[T]) -> Reader:
    """A reader for one scalar value, checked by ``check``."""

    def read(walk: _Walk, node: yaml.Node, path: KeyPath) -> T | _Failed:
        value = walk.value(node)
        if isinstance(value, _Unreadable):
            return walk.problem(node, path, value.reason)
        try:
            return check(value)
        except v.InvalidValueError as exc:
            return walk.problem(node, path, str(exc))

    return read


def _entries(walk: _Walk, node: yaml.MappingNode, path: KeyPath) -> Iterator[tuple[str, Any]]:
    """(key, value node) of a mapping, reporting keys that are not names or come twice."""
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or _is_null(key_node):
            walk.problem(key_node, path, f"expected a key name, got {walk.got(key_node)}")
            continue
        key = str(key_node.value)
        if key in seen:
            walk.problem(key_node, (*path, key), f"duplicate key (first at line {seen[key]})")
            continue
        seen[key] = key_node.start_mark.line + 1
        yield key, (key_node, value_node)


def _mapping_node(walk: _Walk, node: yaml.Node, path: KeyPath, what: str) -> Any:
    """The node if it is a mapping; None for an empty value (defaults); FAILED otherwise."""
    if isinstance(node, yaml.MappingNode):
        return node
    if _is_null(node):
        return None
    return walk.problem(node, path, f"expected {what}, got {walk.got(node)}")


Finish = Callable[[_Walk, D, KeyPath], D]


def section(kind: type[D], fields: Mapping[str, Reader], finish: Finish[D] | None = None) -> Reader:
    """A reader for a mapping of known keys into the frozen dataclass ``kind``.

    Missing keys keep the dataclass default; an unknown key is a problem with the nearest
    valid key suggested. ``finish`` checks keys against each other once all are read.
    """

    def read(walk: _Walk, node: yaml.Node, path: KeyPath) -> D | _Failed:
        what = f"a mapping with keys {', '.join(fields)}"
        found = _mapping_node(walk, node, path, what)
        if isinstance(found, _Failed):
            return FAILED
        changes: dict[str, object] = {}
        entries = _entries(walk, found, path) if found is not None else iter(())
        for key, (key_node, value_node) in entries:
            if key not in fields:
                hint = did_you_mean(key, fields)
                walk.problem(key_node, (*path, key), "unknown key", hint)
                continue
            walk.given[(*path, key)] = value_node
            value = fields[key](walk, value_node, (*path, key))
            if value is not FAILED:
                changes[key] = value
        # Keys without a default (a GATT port's uuid): absent is a problem, not a TypeError.
        required = [
            f.name for f in dc_fields(kind) if f.default is MISSING and f.default_factory is MISSING
        ]
        if any(name not in changes for name in required):
            absent = [name for name in required if (*path, name) not in walk.given]
            if absent:
                walk.problem(node, path, f"missing key {', '.join(map(repr, absent))}")
            return FAILED
        config = kind(**changes)
        return finish(walk, config, path) if finish else config

    return read


def sequence(check: v.Check[str], what: str, *, distinct: bool = False) -> Reader:
    """A reader for a list of scalars (an empty value is an empty list) into a tuple."""
    item = scalar(check)

    def read(walk: _Walk, node: yaml.Node, path: KeyPath) -> tuple[str, ...] | _Failed:
        if _is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            return walk.problem(node, path, f"expected a list of {what}, got {walk.got(node)}")
        items: list[str] = []
        first_line: dict[str, int] = {}
        ok = True
        for index, child in enumerate(node.value):
            value = item(walk, child, (*path, index))
            if distinct and value in first_line:
                problem = f"duplicate {value!r} (first at line {first_line[value]})"
                value = walk.problem(child, (*path, index), problem)
            if value is FAILED:
                ok = False
                continue
            items.append(value)
            first_line.setdefault(value, child.start_mark.line + 1)
        return tuple(items) if ok else FAILED

    return read


def roles(is_key: Callable[[str], bool], what: str) -> Reader:
    """A reader for ``device: role`` pairs, sorted; each role belongs to one device only.
    Keys are read as written (``0042`` stays ``'0042'``: USB serials are often all digits)."""

    def read(walk: _Walk, node: yaml.Node, path: KeyPath) -> Any:
        found = _mapping_node(walk, node, path, f"a mapping of {what}s to roles")
        if found is None or found is FAILED:
            return () if found is None else FAILED
        pairs: dict[str, str] = {}
        owners: dict[str, tuple[str, int]] = {}  # role -> (key, line)
        read_role = scalar(v.role)
        for key, (key_node, value_node) in _entries(walk, found, path):
            if not is_key(key):
                walk.problem(key_node, path, f"expected a {what}, got {key!r}")
                continue
            role = read_role(walk, value_node, (*path, key))
            if role is FAILED:
                continue
            if role in owners:
                other, line = owners[role]
                problem = f"role {role!r} already belongs to {other!r} (line {line})"
                walk.problem(value_node, (*path, key), problem)
                continue
            owners[role] = (key, value_node.start_mark.line + 1)
            pairs[key] = role
        return tuple(sorted(pairs.items()))

    return read


serial_roles = roles(v.is_serial, "serial number")


def records(item: Reader, what: str) -> Reader:
    """A reader for a list of mappings (each read by ``item``) into a tuple."""

    def read(walk: _Walk, node: yaml.Node, path: KeyPath) -> Any:
        if _is_null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            return walk.problem(node, path, f"expected a list of {what}, got {walk.got(node)}")
        found = [item(walk, child, (*path, index)) for index, child in enumerate(node.value)]
        return FAILED if FAILED in found else tuple(found)

    return read


def keyed(is_key: Callable[[str], bool], what: str, value: Reader) -> Reader:
    """A reader for a mapping of checked keys to values read by ``value``: sorted pairs."""

    def read(walk: _Walk, node: yaml.Node, path: KeyPath) -> Any:
        found = _mapping_node(walk, node, path, f"a mapping of {what}s")
        if found is None or found is FAILED:
            return () if found is None else FAILED
        pairs: dict[str, Any] = {}
        for key, (key_node, value_node) in _entries(walk, found, path):
            if not is_key(key):
                walk.problem(key_node, path, f"expected a {what}, got {key!r}")
                continue
            read_value = value(walk, value_node, (*path, key))
            if read_value is not FAILED:
                pairs[key] = read_value
        return tuple(sorted(pairs.items()))

    return read


# The serial bridge's single values, here and in serial_bridge_options: a command-line flag
# and the file accept the same values.
SERIAL_VALUES: dict[str, v.Check[Any]] = {
    "baud": v.baud,
    "period": v.seconds,
    "ping_interval": v.seconds,
    "missed_pongs": v.positive,
}


BLE_ADOPT: dict[str, Reader] = {
    "model": scalar(v.label),
    "name": scalar(v.glob),
    "role": scalar(v.role),
}
GATT: dict[str, Reader] = {
    "port": scalar(v.port_name),
    "uuid": scalar(v.uuid),
    "access": scalar(v.choice("notify", "read", "write")),
    "encoding": scalar(v.choice(*v.GATT_ENCODINGS)),
    "scale": scalar(v.number),
    "poll": scalar(v.optional(v.seconds)),
}


# The 433 MHz bridge's rtl_433 options (docs/rf433.md).
_FREQUENCY = re.compile(r"[0-9]+(?:\.[0-9]+)?[kMG]?")


def _rf433_frequency(value: object) -> str:
    """rtl_433's -f: Hz, or a number with k, M or G (``433.92M``)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _FREQUENCY.fullmatch(text):
        raise v.expected("a frequency such as 433.92M or 868300000", value)
    return text


def _rf433_device(value: object) -> str:
    """rtl_433's -d: a dongle index, ``:SERIAL``, or a SoapySDR query."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return v.label(value)


def _rf433_protocol(value: object) -> int:
    """rtl_433's -R: a decoder number, negative to disable one."""
    number = v.integer(-9999, 9999)(value)
    if number == 0:
        raise v.InvalidValueError("protocol 0 would disable every decoder; list the ones wanted")
    return number


def _device_key(value: object) -> str:
    """A device key as ``roles`` takes (USB serial number, VID:PID, link name, path) or ``*``."""
    # A number is refused rather than read: 0042 would lose its zeros (quote it).
    if not isinstance(value, str) or not v.is_serial(value):
        raise v.expected("a USB serial number, VID:PID, link name, path or * (quoted)", value)
    return value


# The health participant's thresholds and battery monitor (docs/health.md).
HOSTAPD_CTRL_DIR = Path("/run/msgflo-gateway/ap/ctrl")  # gateway-run ap's control sockets


def _percent(value: object) -> float:
    number = v.number(value)
    if not 0 <= number <= 100:
        raise v.expected("a percentage from 0 to 100", value)
    return number


def _celsius(value: object) -> float:
    number = v.number(value)
    if not 20 <= number <= 125:
        raise v.expected("a temperature from 20 to 125 (°C)", value)
    return number


def _ohms(value: object) -> float:
    number = v.number(value)
    if not 0 < number <= 100:
        raise v.expected("a shunt resistance in ohms, above 0 (0.1 on most UPS HATs)", value)
    return number


# The serial bridge's line mode: how text lines become messages (docs/serial-bridge.md).
LINE_KINDS = ("pattern", "key", "nmea")
NMEA_SENTENCES = ("GGA", "RMC")


def _line_pattern(value: object) -> str:
    """A regular expression whose one group (or group named ``value``) is the port's value."""
    text = v.string("a regular expression", value)
    try:
        compiled = re.compile(text)
    except re.error as error:
        raise v.InvalidValueError(f"invalid regular expression {text!r}: {error}") from None
    if compiled.groups != 1 and "value" not in compiled.groupindex:
        groups = compiled.groups
        problem = f"expected one group or a group named 'value' in {text!r}, it has {groups}"
        raise v.InvalidValueError(problem)
    return text


def _line_key(value: object) -> str:
    return v.string("a key name", value)


LINE_PORT: dict[str, Reader] = {
    "port": scalar(v.port_name),
    "pattern": scalar(v.optional(_line_pattern)),
    "key": scalar(v.optional(_line_key)),
    "nmea": scalar(v.optional(v.choice(*NMEA_SENTENCES))),
}


def _line_port(walk: _Walk, node: yaml.Node, path: KeyPath) -> Any:
    """One outport of a line device: a port name and exactly one mapping kind."""
    port = section(LinePort, LINE_PORT)(walk, node, path)
    if port is FAILED or any((*path, kind) in walk.failed for kind in LINE_KINDS):
        return FAILED  # already reported
    if (*path, "port") not in walk.given:
        return walk.problem(node, path, "expected a port name (port: ...)")
    kinds = [kind for kind in LINE_KINDS if getattr(port, kind) is not None]
    if not kinds:
        return walk.problem(node, path, "expected one of pattern, key or nmea")
    if len(kinds) > 1:
        where = (*path, kinds[1])
        problem = f"{kinds[0]} and {kinds[1]} given: a port takes one of pattern, key or nmea"
        return walk.problem(walk.given[where], where, problem)
    return port


def _finish_line_device(walk: _Walk, device: LineDevice, path: KeyPath) -> LineDevice:
    # Ports share the role's queue namespace: an inport named as an outport is one topic.
    named: list[tuple[str, yaml.Node, KeyPath]] = []
    for index, port in enumerate(device.outports):
        where = (*path, "outports", index, "port")
        named.append((port.port, walk.given[where], where))
    inports = walk.given.get((*path, "inports"))
    if isinstance(inports, yaml.SequenceNode) and len(inports.value) == len(device.inports):
        for index, name in enumerate(device.inports):
            named.append((name, inports.value[index], (*path, "inports", index)))
    first: dict[str, int] = {}
    for name, node, where in named:
        if name in first:
            walk.problem(node, where, f"port {name!r} is named twice (first at line {first[name]})")
        first.setdefault(name, node.start_mark.line + 1)
    return device


LINE_DEVICE: dict[str, Reader] = {
    "baud": scalar(v.baud),
    "role": scalar(v.optional(v.role)),
    "component": scalar(v.label),
    "outports": records(_line_port, "outports"),
    "inports": sequence(v.port_name, "port names", distinct=True),
}


def _gatt_ports(walk: _Walk, node: yaml.Node, path: KeyPath) -> Any:
    """A GATT device's ports (docs/ble.md): each port's name makes its queue, so two ports of
    one device may not share it (a write port would get the device's own notifications)."""
    ports = records(section(GattPort, GATT), "ports")(walk, node, path)
    if ports is FAILED:
        return FAILED
    first: dict[str, int] = {}
    for index, port in enumerate(ports):
        where = (*path, index, "port")
        port_node = walk.given[where]
        if port.port in first:
            problem = f"duplicate port {port.port!r} (first at line {first[port.port]})"
            return walk.problem(port_node, where, problem)
        first[port.port] = port_node.start_mark.line + 1
    return ports


# The GPIO bridge's devices (docs/gpio.md): which keys each kind takes besides kind, pin, label.
GPIO_INPUTS = ("button", "motion", "input")
GPIO_KEYS: dict[str, tuple[str, ...]] = {
    "button": ("pull", "active_high", "bounce_time", "hold_time"),
    "motion": ("pull", "active_high", "bounce_time"),
    "input": ("pull", "active_high", "bounce_time"),
    "led": ("active_high",),
    "pwm_led": ("active_high", "frequency"),
    "buzzer": ("active_high",),
    "output": ("active_high",),
}
GPIO_PULL = {"button": "up", "input": "up", "motion": "down"}  # a kind's default pull


def _gpio_pin(value: object) -> int:
    try:
        return header.parse_pin(value)
    except header.PinNameError as exc:
        raise v.InvalidValueError(str(exc)) from None


def _gpio_role(text: str) -> bool:
    try:
        v.role(text)
    except v.InvalidValueError:
        return False
    return True


GPIO_DEVICE: dict[str, Reader] = {
    "kind": scalar(v.choice(*GPIO_KINDS)),
    "pin": scalar(_gpio_pin),
    "pull": scalar(v.optional(v.choice("up", "down", "none"))),
    "active_high": scalar(v.optional(v.boolean)),
    "bounce_time": scalar(v.optional(v.seconds)),
    "hold_time": scalar(v.seconds),
    "frequency": scalar(v.integer(1, 10_000)),
    "label": scalar(v.optional(v.label)),
}


def _finish_gpio_device(walk: _Walk, device: GpioDevice, path: KeyPath) -> GpioDevice:
    """Keys the device's kind does not take, and an input's pull and active level."""
    allowed = ("kind", "pin", "label", *GPIO_KEYS[device.kind])
    for key in GPIO_DEVICE:
        node = walk.given.get((*path, key))
        if node is not None and key not in allowed:
            keys = ", ".join(allowed)
            walk.problem(node, (*path, key), f"a {device.kind} has no {key} (its keys: {keys})")
    if device.kind not in GPIO_INPUTS:
        return device
    pull = device.pull or GPIO_PULL[device.kind]
    active = walk.given.get((*path, "active_high"))
    if pull == "none" and device.active_high is None and (*path, "pull") in walk.given:
        walk.problem(
            walk.given[(*path, "pull")], (*path, "pull"),
            "pull: none needs active_high (true: active when the pin is high)",
        )  # fmt: skip
    elif pull != "none" and active is not None:
        level = "low" if pull == "up" else "high"
        problem = f"only with pull: none (pull: {pull} makes the input active when {level})"
        walk.problem(active, (*path, "active_high"), problem)
    if device.pin in header.FIXED_PULL_UP and pull != "up":
        node = walk.given.get((*path, "pull"), walk.given[(*path, "pin")])
        problem = f"{header.where(device.pin)} has a fixed pull-up on the board: pull: up only"
        walk.problem(node, (*path, "pull" if (*path, "pull") in walk.given else "pin"), problem)
    return device


def _gpio_problems(walk: _Walk, config: GatewayConfig) -> None:
    """Pins used twice, and pins the image or another configured device already uses."""
    section = config.bridges.gpio
    base = ("bridges", "gpio")
    taken = header.reserved(uart_console=section.uart_console, i2c=_i2c_configured(config))
    first: dict[int, tuple[str, int]] = {}  # pin -> (role, line)
    for role, device in section.devices:
        where = (*base, "devices", role, "pin")
        node = walk.given.get(where)
        if node is None or where in walk.failed:
            continue
        line = node.start_mark.line + 1
        pin = header.where(device.pin)
        if device.pin in first:
            other, other_line = first[device.pin]
            walk.problem(node, where, f"{pin} is already the pin of {other!r} (line {other_line})")
            continue
        first[device.pin] = (role, line)
        for reserved in taken:
            if device.pin in reserved.pins:
                walk.problem(node, where, f"{pin} is in use: {reserved.why}")


def _i2c_configured(config: GatewayConfig) -> bool:
    """An I2C device on the header's bus 1 is configured: the health participant's battery
    monitor (bridges.health.battery)."""
    health = config.bridges.health
    battery = health.battery
    return health.enabled and battery.monitor is not None and battery.bus == 1


def _dhcp_problems(ap: AccessPointConfig) -> Iterator[tuple[str, str]]:
    """(key, problem) for a DHCP range that does not fit the access point's network or
    holds fewer addresses than ``max_stations``: a station without a lease cannot reach the
    broker, however many hostapd lets in."""
    net, own = ap.address.network, ap.address.ip
    room = _client_addresses(ap.address)
    if room < ap.max_stations:
        yield (
            "address",
            f"{net} has {room} addresses for clients, fewer than max_stations {ap.max_stations}",
        )
        return
    for key, addr in (("dhcp_start", ap.dhcp_start), ("dhcp_end", ap.dhcp_end)):
        if addr not in net:
            yield key, f"{addr} is outside the access point's network {net}"
        elif addr in (net.network_address, net.broadcast_address) and net.prefixlen <= 30:
            yield key, f"{addr} is the network or broadcast address of {net}"
    if ap.dhcp_start > ap.dhcp_end:
        yield "dhcp_end", f"{ap.dhcp_end} comes before dhcp_start {ap.dhcp_start}"
    elif ap.dhcp_start <= own <= ap.dhcp_end:
        yield (
            "dhcp_start",
            f"the range {ap.dhcp_start}-{ap.dhcp_end} includes the gateway's own {own}",
        )
    elif (size := ap.dhcp_addresses) < ap.max_stations:
        yield (
            "dhcp_end",
            f"the range {ap.dhcp_start}-{ap.dhcp_end} holds {size} addresses,"
            f" fewer than max_stations {ap.max_stations}",
        )


def _client_addresses(address: IPv4Interface) -> int:
    """Addresses of the network a client can have: its hosts, but the gateway's own."""
    net = address.network
    hosts = net.num_addresses - 2 if net.prefixlen <= 30 else net.num_addresses
    return hosts - 1


def _finish_access_point(walk: _Walk, ap: AccessPointConfig, path: KeyPath) -> AccessPointConfig:
    keys = [(*path, key) for key in ("address", "dhcp_start", "dhcp_end", "max_stations")]
    if walk.failed.intersection(keys):
        return ap  # already reported; comparing with a default would only confuse
    for key, problem in _dhcp_problems(ap):
        node = walk.given.get((*path, key))
        note = ""
        if node is None:
            # A default that no longer fits is reported where the other values were changed.
            node = next(walk.given[k] for k in keys if k in walk.given)
            note = f" ({key} is not set; this is its default)"
        walk.problem(node, (*path, key), problem + note)
    return ap


def _connections_problem(walk: _Walk, config: GatewayConfig) -> None:
    """Every station must be able to hold an MQTT connection on the access point's listeners."""
    broker, ap = config.broker, config.access_point
    if not ap.enabled or broker.max_connections >= ap.max_stations:
        return
    keys = [("broker", "max_connections"), ("access_point", "max_stations")]
    if walk.failed.intersection(keys):
        return
    # The defaults fit, so one of them was set: the problem goes where the file says so.
    if keys[0] in walk.given:
        key = keys[0]
        problem = (
            f"{broker.max_connections} is fewer than access_point.max_stations {ap.max_stations}"
        )
    else:
        key = keys[1]
        problem = f"{ap.max_stations} is more than broker.max_connections {broker.max_connections}"
    walk.problem(walk.given[key], key, f"{problem}: each board holds a connection")


def _health_paths(walk: _Walk, config: GatewayConfig) -> GatewayConfig:
    """The health participant's disk is data_dir's and its hostapd socket the access point's
    (None when it is off), unless given."""
    health, ap = config.bridges.health, config.access_point
    changes: dict[str, Any] = {}
    if ("bridges", "health", "disk") not in walk.given:
        changes["disk"] = config.data_dir
    if ("bridges", "health", "hostapd_ctrl") not in walk.given:
        changes["hostapd_ctrl"] = HOSTAPD_CTRL_DIR / ap.interface if ap.enabled else None
    bridges = replace(config.bridges, health=replace(health, **changes))
    return replace(config, bridges=bridges)


def _finish_health(walk: _Walk, health: HealthConfig, path: KeyPath) -> HealthConfig:
    """The shutdown threshold below the low-battery alarm's, so the alarm comes first."""
    below = health.shutdown_below
    if below is not None and below >= health.battery_low:
        node = walk.given.get((*path, "shutdown_below"))
        if node is not None:
            problem = f"{below} is not below battery_low {health.battery_low}: warn first"
            walk.problem(node, (*path, "shutdown_below"), problem)
    return health


def _finish_gateway(walk: _Walk, config: GatewayConfig, path: KeyPath) -> GatewayConfig:
    _connections_problem(walk, config)
    _gpio_problems(walk, config)
    config = _health_paths(walk, config)
    # The graph lives in data_dir unless placed elsewhere, so a laptop only sets data_dir.
    if ("coordinator", "graph") in walk.given:
        return config
    graph = config.data_dir / "graph.fbp"
    return replace(config, coordinator=replace(config.coordinator, graph=graph))


def _schema(base: Path) -> Reader:
    path = scalar(v.path(base))
    broker = {
        "port": scalar(v.port),
        "tls_port": scalar(v.optional(v.port)),
        "websockets_port": scalar(v.optional(v.port)),
        "max_message_size": scalar(v.message_size),
        "max_queued_messages": scalar(v.positive),
        "max_connections": scalar(v.positive),
        "persistence": scalar(v.boolean),
        "autosave_interval": scalar(v.positive),
        "roles": sequence(v.role, "role names", distinct=True),
    }
    coordinator = {
        "graph": path,
        "library": scalar(v.optional(v.path(base))),
        "auto_save": scalar(v.boolean),
        "wait_timeout": scalar(v.seconds),
        "strict_discovery": scalar(v.boolean),
    }
    runtime = {
        "host": scalar(v.host),
        "port": scalar(v.port),
        "secret": scalar(v.optional(v.secret)),
        "label": scalar(v.label),
    }
    serial = {
        "enabled": scalar(v.boolean),
        "globs": sequence(v.glob, "glob patterns"),
        **{key: scalar(check) for key, check in SERIAL_VALUES.items()},
        "roles": serial_roles,
        "lines": keyed(
            v.is_serial, "device key", section(LineDevice, LINE_DEVICE, _finish_line_device)
        ),
        "provision": sequence(_device_key, "device keys", distinct=True),
    }
    ble = {
        "enabled": scalar(v.boolean),
        "adapter": scalar(v.netdev),
        "scanning": scalar(v.choice("passive", "active")),
        "scan_window_ms": scalar(v.integer(3, 10_240)),
        "scan_interval_ms": scalar(v.integer(3, 10_240)),
        "period": scalar(v.seconds),
        "report_interval": scalar(v.seconds),
        "timeout": scalar(v.seconds),
        "max_seen": scalar(v.integer(1, 10_000)),
        "roles": roles(v.is_ble_address, "BLE address"),
        "adopt": records(section(BleAdoptRule, BLE_ADOPT), "adopt rules"),
        "gatt": keyed(v.is_ble_address, "BLE address", _gatt_ports),
    }
    rf433 = {
        "enabled": scalar(v.boolean),
        "program": scalar(v.label),
        "device": scalar(v.optional(_rf433_device)),
        "frequency": scalar(_rf433_frequency),
        "protocols": records(scalar(_rf433_protocol), "rtl_433 protocol numbers"),
        "period": scalar(v.seconds),
        "timeout": scalar(v.seconds),
        "window": scalar(v.seconds),
        "windows": keyed(v.is_rf433_key, "433 MHz device key", scalar(v.seconds)),
        "swap_after": scalar(v.optional(v.seconds)),
        "max_heard": scalar(v.integer(1, 10_000)),
        "roles": roles(v.is_rf433_key, "433 MHz device key (MODEL/CHANNEL/ID)"),
        "replay": records(path, "sample files"),
        "replay_interval": scalar(v.seconds),
    }
    battery = {
        "monitor": scalar(v.optional(v.choice("ina219"))),
        "bus": scalar(v.integer(0, 255)),
        "address": scalar(v.integer(0x03, 0x77)),
        "shunt_ohms": scalar(_ohms),
        "cells": scalar(v.integer(1, 8)),
    }
    health = {
        "enabled": scalar(v.boolean),
        "role": scalar(v.role),
        "period": scalar(v.seconds),
        "interval": scalar(v.seconds),
        "sample_interval": scalar(v.seconds),
        "hot": scalar(_celsius),
        "battery_low": scalar(_percent),
        "shutdown_below": scalar(v.optional(_percent)),
        "shutdown_after": scalar(v.seconds),
        "battery": section(BatteryMonitorConfig, battery),
        "disk": path,
        "hostapd_ctrl": scalar(v.optional(v.path(base))),
    }
    gpio = {
        "enabled": scalar(v.boolean),
        "pin_factory": scalar(v.choice("auto", "lgpio", "rpigpio", "mock")),
        "period": scalar(v.seconds),
        "uart_console": scalar(v.boolean),
        "devices": keyed(_gpio_role, "role", section(GpioDevice, GPIO_DEVICE, _finish_gpio_device)),
    }
    access_point = {
        "enabled": scalar(v.boolean),
        "interface": scalar(v.netdev),
        "ssid": scalar(v.ssid),
        "passphrase": scalar(v.optional(v.passphrase)),
        "country": scalar(v.country),
        "channel": scalar(v.channel),
        "address": scalar(v.ipv4_interface),
        "dhcp_start": scalar(v.ipv4),
        "dhcp_end": scalar(v.ipv4),
        "max_stations": scalar(v.stations),
        "hostname": scalar(v.hostname),
    }
    top = {
        "data_dir": path,
        "broker": section(BrokerConfig, broker),
        "coordinator": section(CoordinatorConfig, coordinator),
        "runtime": section(RuntimeConfig, runtime),
        "bridges": section(
            BridgesConfig,
            {
                "serial": section(SerialBridgeConfig, serial),
                "ble": section(BleBridgeConfig, ble),
                "rf433": section(Rf433BridgeConfig, rf433),
                "gpio": section(GpioBridgeConfig, gpio),
                "health": section(HealthConfig, health, _finish_health),
            },
        ),
        "access_point": section(AccessPointConfig, access_point, _finish_access_point),
    }
    return section(GatewayConfig, top, _finish_gateway)


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        return compose_yaml(text, source)
    except YamlError as exc:
        raise ConfigError([f"{exc.where}: invalid YAML: {exc.problem}"]) from None


def parse_config(text: str, source: str, *, base_dir: Path | None = None) -> GatewayConfig:
    """The config in ``text``; ``source`` names it in messages.

    Relative paths are taken relative to ``base_dir``, by default ``source``'s folder.
    Raises ``ConfigError`` listing every problem, in file order.
    """
    root = _compose(text, source)
    if root is None:
        return GatewayConfig()
    walk = _Walk(source, base_dir if base_dir is not None else Path(source).parent)
    config = _schema(walk.base_dir)(walk, root, ())
    if walk.problems or not isinstance(config, GatewayConfig):
        raise ConfigError([p.text for p in sorted(walk.problems, key=lambda p: p.line)])
    return config


def read_config_text(path: Path) -> str:
    """The file's text; ``ConfigError`` if it cannot be read or is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None


def load_config(path: Path) -> GatewayConfig:
    """The config in the file at ``path``; relative paths in it are relative to its folder."""
    return parse_config(read_config_text(path), str(path), base_dir=path.absolute().parent)


__all__ = ["load_config", "parse_config", "read_config_text"]
