"""The gateway's one config file (``/etc/msgflo-gateway/gateway.yaml``) as typed, frozen objects.

Everything past ``load_config`` sees only these objects; the YAML, its line numbers and its
spelling mistakes stay in ``gateway/config/load.py``. Defaults are the appliance's: a laptop
usually sets ``data_dir`` and turns ``access_point`` off, and nothing else.

Secrets (MQTT passwords, the runtime secret, the WiFi passphrase, TLS keys) are not part of
this file: first boot generates them into ``data_dir`` (see ``gateway/appliance/secrets.py``).
A value given here for ``runtime.secret`` or ``access_point.passphrase`` wins over the
generated one, for a laptop or a provisioned kit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

DEFAULT_PATH = Path("/etc/msgflo-gateway/gateway.yaml")
DEFAULT_DATA_DIR = Path("/var/lib/msgflo-gateway")


@dataclass(frozen=True)
class BrokerConfig:
    """The gateway's own Mosquitto: where it listens and how much it holds.

    It always listens on loopback (``port``); on the access point's address too when the
    access point is enabled (``port``, and ``tls_port`` with the per-device CA). Clients
    always authenticate: there is no anonymous listener.
    """

    port: int = 1883
    tls_port: int | None = 8883
    # MQTT over WebSockets for the dashboard's virtual devices in a browser: every address when
    # the access point is on (authenticated, as every listener), else loopback; None: off.
    websockets_port: int | None = 9001
    max_message_size: int = 262_144
    max_queued_messages: int = 1000
    # Clients at once on each listener on the access point's network (plain, TLS, WebSockets):
    # twice the stations, since a board that rejoins opens its new connection before the
    # broker has noticed its old one is gone (docs/wifi.md, How many devices). Loopback, where
    # the gateway's own daemons connect, is not limited.
    max_connections: int = 64
    persistence: bool = True
    autosave_interval: int = 30
    # Extra MQTT users to create at first boot (devices that connect over WiFi, say), each
    # allowed to read and write only its own ``<role>/#`` topics and to announce on ``fbp``.
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class CoordinatorConfig:
    graph: Path = DEFAULT_DATA_DIR / "graph.fbp"
    library: Path | None = None
    auto_save: bool = True
    wait_timeout: float = 45.0
    strict_discovery: bool = True


@dataclass(frozen=True)
class RuntimeConfig:
    """The FBP runtime protocol server (Flowhub, fbp-spec). Beyond loopback only with a secret."""

    host: str = "0.0.0.0"
    port: int = 3569
    secret: str | None = None
    label: str = "msgflo-gateway"


@dataclass(frozen=True)
class LinePort:
    """One outport of a device in line mode: which lines give it a message, and its value.
    Exactly one of ``pattern`` (a regex with one group, or a group named ``value``), ``key``
    (``key=value`` pairs or a JSON object per line) or ``nmea`` (GGA or RMC sentences)."""

    port: str = ""
    pattern: str | None = None
    key: str | None = None
    nmea: str | None = None


@dataclass(frozen=True)
class LineDevice:
    """A USB serial device that prints text lines instead of speaking the serial link
    (docs/serial-bridge.md, Line mode): its participant is defined here."""

    baud: int = 9600
    role: str | None = None  # None: the role the bridge gives any device (roles, or derived)
    component: str = "SerialLines"
    outports: tuple[LinePort, ...] = ()
    inports: tuple[str, ...] = ()  # each message is written to the device as one line


@dataclass(frozen=True)
class SerialBridgeConfig:
    """What the serial bridge is told, by ``gateway-run bridge serial`` and ``msgflo-serial``
    alike (gateway/bridges/run.py)."""

    enabled: bool = True
    globs: tuple[str, ...] = ("/dev/serial/by-id/*",)
    baud: int = 115_200
    # Each device is announced every period / 2.2 s (as participants: DEFAULT_PERIOD).
    period: float = 60.0
    # Seconds between pings to each device; one that misses missed_pongs in a row is reopened.
    ping_interval: float = 5.0
    missed_pongs: int = 3
    # USB serial number (or VID:PID, link name, path) -> role
    roles: tuple[tuple[str, str], ...] = ()
    # USB serial number, VID:PID, link name or path -> a device in line mode
    lines: tuple[tuple[str, LineDevice], ...] = ()
    # The boards that may be provisioned over USB (docs/provisioning.md): USB serial numbers,
    # VID:PID, link names or paths, or "*" for any; none by default.
    provision: tuple[str, ...] = ()


@dataclass(frozen=True)
class BleAdoptRule:
    """Adopt every device of a decoded ``model`` whose advertised name matches ``name`` (a
    glob), as ``role`` with ``{id}`` replaced by its address's last six hex digits."""

    model: str
    name: str = "*"
    role: str = "ble-{id}"


@dataclass(frozen=True)
class GattPort:
    """One characteristic of a GATT device as one port (docs/ble.md)."""

    port: str  # the port id
    uuid: str  # the characteristic's UUID
    access: str  # "notify" or "read" (an outport), "write" (an inport)
    # raw, utf8, json, int8, uint8, int16le, uint16le, int32le, uint32le; integers * scale
    encoding: str = "raw"
    scale: float = 1.0
    poll: float | None = None  # "read": seconds between reads


@dataclass(frozen=True)
class BleBridgeConfig:
    """What the BLE bridge is told (gateway/bridges/ble/, docs/ble.md)."""

    enabled: bool = False
    adapter: str = "hci0"
    # passive where BlueZ allows it (nothing is sent: no scan requests), else active
    scanning: str = "passive"
    # The LE scan window and interval the image gives BlueZ: the fraction of air time the shared
    # WiFi/Bluetooth chip of a Pi 3/Zero 2 W spends listening (docs/ble.md says why this much).
    scan_window_ms: int = 30
    scan_interval_ms: int = 300
    period: float = 60.0
    report_interval: float = 300.0  # an unchanged value is sent again at least this often
    timeout: float = 600.0  # a sensor not heard for this long is withdrawn
    max_seen: int = 256  # devices listed as seen and not adopted (the most recent ones)
    roles: tuple[tuple[str, str], ...] = ()  # address -> role
    adopt: tuple[BleAdoptRule, ...] = ()
    gatt: tuple[tuple[str, tuple[GattPort, ...]], ...] = ()  # address -> its characteristics


@dataclass(frozen=True)
class Rf433BridgeConfig:
    """What the 433 MHz bridge is told (gateway/bridges/rf433/, docs/rf433.md)."""

    enabled: bool = False
    program: str = "rtl_433"  # the rtl_433 to run (a name on PATH or a path)
    device: str | None = None  # rtl_433 -d: an index, ":SERIAL" or a SoapySDR query; None: first
    frequency: str = "433.92M"  # rtl_433 -f: Hz, or with k, M or G
    protocols: tuple[int, ...] = ()  # rtl_433 -R each: decoders to enable (negative: disable)
    period: float = 60.0
    timeout: float = 600.0  # a device not heard for this long is withdrawn (back when heard)
    window: float = 1.5  # seconds within which identical packets of a device are one message
    windows: tuple[tuple[str, float], ...] = ()  # device key (may end in /*) -> its window
    # An adopted id silent while one new id of its model and channel is heard for this long:
    # the new id takes the role (a battery swap). None: never.
    swap_after: float | None = 300.0
    max_heard: int = 256  # devices listed as heard and not adopted (the most recent ones)
    roles: tuple[tuple[str, str], ...] = ()  # device key (MODEL/CHANNEL/ID or .../*) -> role
    replay: tuple[Path, ...] = ()  # recorded sample files rtl_433 reads (-r) instead of a dongle
    replay_interval: float = 10.0  # seconds between two passes over the replay files


# The kinds of GPIO device (docs/gpio.md): each is a participant with component gpio/<Kind>.
GPIO_KINDS = ("button", "led", "pwm_led", "buzzer", "motion", "input", "output")


@dataclass(frozen=True)
class GpioDevice:
    """One device on the Pi's GPIO header (docs/gpio.md); its key in ``bridges.gpio.devices``
    is its role. ``None`` means the kind's default (``gateway.bridges.gpio.kinds``)."""

    kind: str
    pin: int  # BCM number, 0-27 (the loader also takes "BOARD11", a header pin)
    pull: str | None = None  # inputs: up, down or none (an external resistor)
    active_high: bool | None = None  # outputs; inputs with pull none
    bounce_time: float | None = None  # inputs: seconds an edge must settle; None: kind default
    hold_time: float = 1.0  # button: seconds pressed before held is sent
    frequency: float = 100.0  # pwm_led: Hz
    label: str | None = None  # shown in the graph; None: kind and pin


@dataclass(frozen=True)
class GpioBridgeConfig:
    """What the GPIO bridge is told (gateway/bridges/gpio/, docs/gpio.md)."""

    enabled: bool = False
    # auto (lgpio, then RPi.GPIO; mock pins off a Pi), lgpio, rpigpio or mock
    pin_factory: str = "auto"
    period: float = 60.0
    # The image's serial console is on the UART (GPIO 14 and 15): those pins are refused.
    uart_console: bool = True
    devices: tuple[tuple[str, GpioDevice], ...] = ()  # role -> device, sorted

    @property
    def roles(self) -> tuple[tuple[str, str], ...]:
        """(device, role) pairs, as every bridge's section has: a GPIO device is named by its
        role, so both are the role (the checks that look at every bridge's roles use it)."""
        return tuple((role, role) for role, _ in self.devices)


@dataclass(frozen=True)
class BatteryMonitorConfig:
    """The battery monitor of a UPS HAT (docs/health.md): an INA219 on I2C, or none."""

    monitor: str | None = None  # "ina219"; None: no battery monitor
    bus: int = 1  # /dev/i2c-<bus>: the Pi header's SDA/SCL (GPIO 2/3) are bus 1
    address: int = 0x40  # the INA219's address (A0, A1 to GND); UPS HATs often use 0x42 or 0x43
    shunt_ohms: float = 0.1  # the current-sense resistor on the HAT
    cells: int = 1  # Li-ion cells in series (the percentage is per cell)


@dataclass(frozen=True)
class HealthConfig:
    """The gateway's own health as a participant (gateway/health/, docs/health.md): run as
    ``msgflo-bridge@health``, a bridge whose one device is the gateway itself."""

    enabled: bool = True
    role: str = "gateway"
    period: float = 60.0  # announced every period / 2.2, as every bridge's devices
    interval: float = 60.0  # seconds between two reports of every reading
    sample_interval: float = 5.0  # seconds between two looks at the sources (alarm latency)
    hot: float = 80.0  # °C from which the "hot" alarm is raised
    battery_low: float = 20.0  # percent at or below which the "battery_low" alarm is raised
    # Percent at or below which the gateway powers itself off, after shutdown_after seconds
    # and an announcement on the shutdown port; None: never.
    shutdown_below: float | None = None
    shutdown_after: float = 60.0
    battery: BatteryMonitorConfig = field(default_factory=BatteryMonitorConfig)
    # The file system whose free space is reported: data_dir unless given.
    disk: Path = DEFAULT_DATA_DIR
    # hostapd's control socket for the WiFi clients: the access point's unless given; None
    # when the access point is off.
    hostapd_ctrl: Path | None = Path("/run/msgflo-gateway/ap/ctrl/wlan0")

    @property
    def roles(self) -> tuple[tuple[str, str], ...]:
        """(device, role) pairs, as every bridge's section has: its one device is the gateway,
        named by its role (the checks that look at every bridge's roles use it)."""
        return ((self.role, self.role),)


@dataclass(frozen=True)
class BridgesConfig:
    """One entry per bridge daemon; each runs as ``msgflo-bridge@<name>.service`` when enabled."""

    serial: SerialBridgeConfig = field(default_factory=SerialBridgeConfig)
    ble: BleBridgeConfig = field(default_factory=BleBridgeConfig)
    rf433: Rf433BridgeConfig = field(default_factory=Rf433BridgeConfig)
    gpio: GpioBridgeConfig = field(default_factory=GpioBridgeConfig)
    health: HealthConfig = field(default_factory=HealthConfig)

    def enabled(self) -> tuple[str, ...]:
        return tuple(name for name in self.names() if getattr(self, name).enabled)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)


@dataclass(frozen=True)
class AccessPointConfig:
    enabled: bool = True
    interface: str = "wlan0"
    # "{suffix}" is replaced by four hex digits unique to the device (from first boot).
    ssid: str = "msgflo-{suffix}"
    passphrase: str | None = None
    country: str = "DE"
    channel: int = 6
    # Address objects are immutable, so one shared default instance is safe (RUF009's worry).
    address: IPv4Interface = IPv4Interface("192.168.4.1/24")  # noqa: RUF009
    dhcp_start: IPv4Address = IPv4Address("192.168.4.10")  # noqa: RUF009
    dhcp_end: IPv4Address = IPv4Address("192.168.4.200")  # noqa: RUF009
    # Stations associated at once (hostapd's max_num_sta); the DHCP range must hold as many.
    max_stations: int = 32
    # The name clients on the access point can use for the gateway (dnsmasq answers it).
    hostname: str = "gateway.msgflo"

    @property
    def dhcp_addresses(self) -> int:
        """Addresses from ``dhcp_start`` to ``dhcp_end``, both included: dnsmasq's leases."""
        return int(self.dhcp_end) - int(self.dhcp_start) + 1


@dataclass(frozen=True)
class GatewayConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    coordinator: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    bridges: BridgesConfig = field(default_factory=BridgesConfig)
    access_point: AccessPointConfig = field(default_factory=AccessPointConfig)
