"""Where adverts come from: one long-lived bleak scanner per adapter, or a replay file.

A source is ``await source.run(deliver)``: it calls ``deliver(advert)`` for every advert, from
the event loop, and for the scanner never returns. What a source hears is turned into an
:class:`~gateway.bridges.ble.advert.Advert` here; what is not one is counted in ``bad`` and
logged (the first few, then every thousandth: the air is anybody's and must not fill the log).

:class:`BleakSource` starts one ``BleakScanner`` and keeps it running: scanning is never cycled
(each start and stop costs BlueZ a discovery session, and what is advertised meanwhile is lost).
Passive scanning (nothing is transmitted, no scan requests, so no scan responses: names only
when the advert itself carries one) is what the section asks for by default; on BlueZ it goes
through an advertisement monitor, which needs BlueZ 5.56+ started with ``--experimental`` and
Linux 5.10+, and bleak needs "or patterns" for it (:data:`PASSIVE_PATTERNS`). When passive
scanning cannot start for any reason but the adapter's, one line says so and the scanner scans
actively for the rest of the run.

BlueZ trouble (no adapter, adapter powered off or blocked, another program's discovery "already
in progress", bluetoothd not running or restarted) is logged once per kind, with what to do,
and retried with backoff, for ever. A bluetoothd restart raises nothing in this process: the
scanner just goes quiet, so a scanner that has delivered nothing for :data:`SILENCE` seconds is
restarted (the only restart there is; a place with no BLE device at all sees one every
:data:`SILENCE` seconds, logged once).

:class:`ReplaySource` reads recorded adverts (replay lines, :mod:`~gateway.bridges.ble.advert`)
and delivers them with their recorded gaps, stamped with the time of delivery, optionally over
and over: the whole bridge runs as with a radio, for demos and tests.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from gateway.bridges import observe
from gateway.bridges.ble.advert import Advert, BadAdvertError, from_bleak, parse_replay_line
from gateway.config import BleBridgeConfig
from gateway.transport.backoff import Backoff

log = logging.getLogger("gateway.bridges.ble")

Deliver = Callable[[Advert], None]
SILENCE = 180.0  # seconds without any advert before the scanner is restarted
BACKOFF = Backoff(initial=1.0, maximum=60.0)
MAX_GAP = 60.0  # seconds: a replay's longest wait between two adverts
MAIN_CONF = Path("/etc/bluetooth/main.conf")
SLOT_MS = 0.625  # BlueZ's [LE] scan values are in the controller's 0.625 ms slots


Source = observe.Source[Advert]  # what the bridge listens to: a scanner, or a replay


class Complaints:
    """Counts bad input and logs the 1st-3rd, then every 1000th."""

    def __init__(self) -> None:
        self.count = 0

    def note(self, where: str, problem: object) -> None:
        self.count += 1
        if self.count <= 3 or self.count % 1000 == 0:
            log.warning("%s: %s; ignored (%d so far)", where, problem, self.count)


def passive_patterns() -> list[Any]:
    """BlueZ advertisement monitor patterns that let (nearly) every advert through: any
    advert with a Flags field, and service or manufacturer data of the common sensor families
    (some sensors advertise without Flags)."""
    from bleak.args.bluez import OrPattern
    from bleak.assigned_numbers import AdvertisementDataType as Ad

    flags = [OrPattern(0, Ad.FLAGS, bytes([value])) for value in (0x02, 0x04, 0x05, 0x06, 0x1A)]
    # ATC/pvvx, MiBeacon, SwitchBot (two), BTHome
    services = [
        OrPattern(0, Ad.SERVICE_DATA_UUID16, uuid.to_bytes(2, "little"))
        for uuid in (0x181A, 0xFE95, 0xFD3D, 0x0D00, 0xFCD2)
    ]
    makers = [
        OrPattern(0, Ad.MANUFACTURER_SPECIFIC_DATA, cid.to_bytes(2, "little"))
        for cid in (0x0499, 0xEC88)  # Ruuvi, Govee
    ]
    return flags + services + makers


class Trouble(enum.Enum):
    """Kinds of BlueZ trouble, each with what to do about it."""

    NO_ADAPTER = "no such Bluetooth adapter: check `bluetoothctl list` and the section's adapter"
    OFF = "the adapter is off or blocked: `rfkill unblock bluetooth`, `bluetoothctl power on`"
    BUSY = (
        "another program is scanning on this adapter (bluetoothctl scan, another bridge): stop it"
    )
    NO_BLUEZ = "bluetoothd is not running: `systemctl start bluetooth`"
    OTHER = "see the error"


def trouble(error: BaseException) -> Trouble:
    """Which kind of BlueZ trouble ``error`` is (by its text: bleak wraps D-Bus errors)."""
    text = f"{type(error).__name__} {error}".lower()
    if isinstance(error, FileNotFoundError | ConnectionRefusedError) or any(
        word in text for word in ("serviceunknown", "org.bluez was not provided", "no such file")
    ):
        return Trouble.NO_BLUEZ
    if "inprogress" in text or "already in progress" in text:
        return Trouble.BUSY
    if "not found" in text or "no bluetooth adapters" in text or "doesn't exist" in text:
        return Trouble.NO_ADAPTER
    if any(word in text for word in ("notready", "not ready", "powered", "rfkill", "blocked")):
        return Trouble.OFF
    if "bluetoothnotavailable" in text:
        return Trouble.OFF
    return Trouble.OTHER


ADAPTER_TROUBLE = frozenset({Trouble.NO_ADAPTER, Trouble.OFF, Trouble.NO_BLUEZ, Trouble.BUSY})


class BleakSource:
    """One long-lived ``BleakScanner`` on ``section.adapter``. ``backend`` is bleak's own
    parameter (a ``BaseBleakScanner`` subclass; the tests' fake radio), None: the platform's."""

    def __init__(
        self,
        section: BleBridgeConfig,
        *,
        backend: type[Any] | None = None,
        silence: float = SILENCE,
        backoff: Backoff = BACKOFF,
        main_conf: Path | None = MAIN_CONF,
    ) -> None:
        self.section = section
        self.backend = backend
        self.silence = silence
        self.backoff = backoff
        self.main_conf = main_conf
        self.mode: Literal["active", "passive"] = (
            "passive" if section.scanning == "passive" else "active"
        )
        self.complaints = Complaints()
        self.starts = 0  # scanners started (tests: restarts after silence)
        self.last_trouble: Trouble | None = None
        self._last_advert = 0.0
        self._deliver: Deliver | None = None

    @property
    def bad(self) -> int:
        return self.complaints.count

    async def run(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._advise_duty_cycle()
        attempt = 0
        while True:
            scanner = await self._start()
            if scanner is None:
                await asyncio.sleep(self.backoff.delay(attempt))
                attempt += 1
                continue
            attempt = 0
            try:
                await self._watch()
            finally:
                with contextlib.suppress(Exception):  # a BlueZ that is gone: nothing to stop
                    await scanner.stop()

    async def _start(self) -> Any | None:
        """A started scanner, or None after logging why not (retried by the caller)."""
        from bleak import BleakScanner

        while True:
            bluez: dict[str, Any] = {"adapter": self.section.adapter}
            if self.mode == "passive":
                bluez["or_patterns"] = passive_patterns()
            try:
                scanner = BleakScanner(
                    detection_callback=self._detected,
                    scanning_mode=self.mode,
                    bluez=bluez,  # type: ignore[arg-type]  # a BlueZScannerArgs
                    backend=self.backend,
                )
                await scanner.start()
            except Exception as error:
                kind = trouble(error)
                if self.mode == "passive" and kind not in ADAPTER_TROUBLE:
                    log.warning(
                        "%s: passive scanning is not available (%s); scanning actively "
                        "(passive needs BlueZ 5.56+ run with --experimental, docs/ble.md)",
                        self.section.adapter,
                        error,
                    )
                    self.mode = "active"
                    continue
                self._trouble(kind, error)
                return None
            self.starts += 1
            if self.last_trouble is not None:
                log.info("%s: scanning again (%s)", self.section.adapter, self.mode)
            elif self.starts == 1:
                log.info("%s: scanning (%s)", self.section.adapter, self.mode)
            self.last_trouble = None
            self._last_advert = time.monotonic()
            return scanner

    def _trouble(self, kind: Trouble, error: BaseException) -> None:
        if kind is not self.last_trouble:
            log.warning(
                "%s: cannot scan: %s (%s); retrying with backoff",
                self.section.adapter,
                error or type(error).__name__,
                kind.value,
            )
        else:
            log.debug("%s: cannot scan: %r", self.section.adapter, error)
        self.last_trouble = kind

    async def _watch(self) -> None:
        """Return when nothing was heard for ``silence`` seconds."""
        while True:
            quiet = time.monotonic() - self._last_advert
            if quiet >= self.silence:
                level = logging.INFO if self.starts <= 1 else logging.DEBUG
                log.log(
                    level,
                    "%s: no advert for %.0f s; restarting the scanner (bluetoothd restarted? "
                    "or no BLE device near)",
                    self.section.adapter,
                    quiet,
                )
                return
            await asyncio.sleep(min(self.silence - quiet, 5.0) + 0.01)

    def _detected(self, device: Any, data: Any) -> None:
        self._last_advert = time.monotonic()
        try:
            advert = from_bleak(device, data, time.time())
        except BadAdvertError as error:
            self.complaints.note(f"advert from {getattr(device, 'address', '?')}", error)
            return
        assert self._deliver is not None
        self._deliver(advert)

    def _advise_duty_cycle(self) -> None:
        if self.main_conf is None or self.backend is not None:
            return
        try:
            text = self.main_conf.read_text()
        except OSError:
            text = ""
        advice = duty_cycle_advice(text, self.section, self.mode)
        if advice:
            log.info("%s: %s", self.main_conf, advice)


def duty_cycle_advice(main_conf: str, section: BleBridgeConfig, mode: str) -> str | None:
    """None when BlueZ's main.conf gives the section's scan window and interval for ``mode``,
    else what to put in its [LE] section (docs/ble.md: why 30 of every 300 ms)."""
    kind = "AdvMonitor" if mode == "passive" else "Discovery"
    want = {
        f"ScanWindow{kind}": round(section.scan_window_ms / SLOT_MS),
        f"ScanInterval{kind}": round(section.scan_interval_ms / SLOT_MS),
    }
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    with contextlib.suppress(configparser.Error):
        parser.read_string(main_conf)
    have = dict(parser["LE"]) if parser.has_section("LE") else {}
    if all(_int(have.get(key)) == value for key, value in want.items()):
        return None
    lines = ", ".join(f"{key}={value}" for key, value in want.items())
    return (
        f"BlueZ scans with its own window/interval; for {section.scan_window_ms}/"
        f"{section.scan_interval_ms} ms put {lines} in its [LE] section and restart bluetoothd"
    )


def _int(text: str | None) -> int | None:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


class ReplaySource:
    """Recorded adverts from ``path``, with their recorded gaps (divided by ``speed``, at most
    :data:`MAX_GAP`); ``repeat``: over and over. Bad lines: ``FILE:LINE: problem``, counted in
    ``bad``, skipped (logged on the first pass only)."""

    def __init__(self, path: Path, *, repeat: bool = False, speed: float = 1.0) -> None:
        self.path = path
        self.repeat = repeat
        self.speed = speed
        self.bad = 0
        self.delivered = 0

    async def run(self, deliver: Deliver) -> None:
        first = True
        while True:
            await self._pass(deliver, log_bad=first)
            first = False
            if not self.repeat:
                return
            await asyncio.sleep(1.0 / self.speed)

    async def _pass(self, deliver: Deliver, *, log_bad: bool) -> None:
        previous: float | None = None
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    advert = parse_replay_line(line)
                except BadAdvertError as error:
                    if log_bad:
                        self.bad += 1
                        log.warning("%s:%d: %s; line skipped", self.path, number, error)
                    continue
                if previous is not None:
                    gap = min(max(advert.time - previous, 0.0), MAX_GAP) / self.speed
                    if gap > 0:
                        await asyncio.sleep(gap)
                previous = advert.time
                self.delivered += 1
                deliver(replace(advert, time=time.time()))
