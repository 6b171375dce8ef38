"""Finding serial devices and noticing when they come and go: the I/O beside ``roles.py``.

:func:`scan` lists the paths the configured globs match; :func:`identities` tells who the new
ones are, from pyserial's ``list_ports.comports()`` (the USB descriptors in sysfs) and the
``/dev/serial/by-id`` links (:func:`gateway.bridges.serial.roles.identify` joins them).

:func:`watch` says when to scan again. Where udev runs, a pyudev netlink monitor on the
``tty`` subsystem, its socket watched by the event loop (no thread): every event, whatever it
says, only triggers a rescan, so there is nothing to get wrong in reading events, and a missed
one is made up by the next (and by a rescan every :data:`UDEV_RESCAN` seconds, which also starts
again a device whose task met a bug). Elsewhere (containers, a laptop without udev, the tests'
ptys in a temporary directory) the globs are polled every ``poll_interval``, as before.
Which one is used is said in one log line at start.
"""

from __future__ import annotations

import abc
import asyncio
import glob
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from gateway.bridges.serial.roles import PortIdentity, PortInfo, identify

log = logging.getLogger("gateway.bridges.serial")

BY_ID = Path("/dev/serial/by-id")
UDEV_CONTROL = "control"  # udevd's socket in its run directory: udev runs when it exists
UDEV_RESCAN = 30.0  # seconds between rescans when udev says what changed
MAX_EVENTS = 256  # udev events read per wake-up; the rest are read on the next one

Lister = Callable[[], Iterable[PortInfo]]
MonitorFactory = Callable[[], Any]  # a started pyudev Monitor (untyped library)


def scan(globs: Sequence[str]) -> list[str]:
    """The device paths the globs match now."""
    return sorted({path for pattern in globs for path in glob.glob(pattern)})


def list_ports() -> list[PortInfo]:
    """pyserial's USB-aware list of the serial ports present."""
    from serial.tools.list_ports import comports  # type: ignore[import-untyped]

    found: list[PortInfo] = comports()
    return found


def by_id_links(directory: Path = BY_ID) -> dict[str, str]:
    """Device node -> the name of its udev by-id link."""
    try:
        entries = list(directory.iterdir())
    except OSError:  # no USB serial device plugged in, or no udev
        return {}
    return {os.path.realpath(entry): entry.name for entry in entries}


def identities(paths: Iterable[str], lister: Lister = list_ports) -> dict[str, PortIdentity]:
    """Who each of ``paths`` is. A failing lister (sysfs changing under it as a device goes)
    costs the USB descriptors of this scan only: the paths are still known by name."""
    wanted = list(paths)
    if not wanted:
        return {}
    try:
        ports = list(lister())
    except (OSError, ValueError) as error:
        log.warning("cannot list the USB serial ports: %s", error)
        ports = []
    links = by_id_links()
    return {path: identify(path, os.path.realpath(path), ports, links) for path in wanted}


# -- hotplug -------------------------------------------------------------------------------------


class Watch(abc.ABC):
    """When to scan again."""

    description: str  # for the log line at start

    @abc.abstractmethod
    async def changed(self) -> None:
        """Return when the devices may have changed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop watching."""


class Polling(Watch):
    def __init__(self, interval: float, why: str) -> None:
        self.interval = interval
        self.description = f"hotplug: polling the globs every {interval:g} s ({why})"

    async def changed(self) -> None:
        await asyncio.sleep(self.interval)

    def close(self) -> None:
        pass


class UdevEvents(Watch):
    """A started pyudev monitor's socket, read by the event loop when readable."""

    def __init__(self, monitor: Any, rescan: float = UDEV_RESCAN) -> None:
        self.description = "hotplug: udev events (tty subsystem)"
        self.events = 0
        self._monitor = monitor
        self._rescan = rescan
        self._fd: int = monitor.fileno()
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        self._loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        # Every event is only a reason to rescan: read them all (bounded), keep none.
        for _ in range(MAX_EVENTS):
            try:
                if self._monitor.poll(timeout=0) is None:
                    break
            except OSError:  # e.g. ENOBUFS: events were lost, which a rescan makes up for
                break
            self.events += 1
        self._arrived.set()

    async def changed(self) -> None:
        try:
            async with asyncio.timeout(self._rescan):
                await self._arrived.wait()
        except TimeoutError:
            pass
        self._arrived.clear()

    def close(self) -> None:
        self._loop.remove_reader(self._fd)


def udev_monitor() -> Any:
    """A started netlink monitor of udev's tty events; OSError where udev does not run (the
    netlink socket opens anyway in a container, and stays silent)."""
    import pyudev  # type: ignore[import-untyped]

    context = pyudev.Context()
    control = Path(context.run_path) / UDEV_CONTROL
    if not control.exists():
        raise OSError(f"udev is not running (no {control})")
    monitor = pyudev.Monitor.from_netlink(context)
    monitor.filter_by("tty")
    monitor.start()
    return monitor


def udev_managed(pattern: str) -> bool:
    """udev makes the nodes and links under /dev (not the ptys in /dev/pts)."""
    parts = Path(pattern).parts
    return parts[:2] == ("/", "dev") and parts[2:3] != ("pts",)


def watch(globs: Sequence[str], poll_interval: float, monitor: MonitorFactory | None) -> Watch:
    """udev events when they can tell about every glob, else polling; ``monitor=None``:
    polling."""
    if monitor is None:
        return Polling(poll_interval, "udev not asked for")
    elsewhere = [pattern for pattern in globs if not udev_managed(pattern)]
    if elsewhere:
        return Polling(poll_interval, f"udev does not see {elsewhere[0]}")
    try:
        return UdevEvents(monitor())
    except (OSError, ImportError) as error:
        return Polling(poll_interval, f"cannot watch udev: {error}")
