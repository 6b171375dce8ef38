"""The generated 433 MHz signals against the real rtl_433 (22.11, bootstrap installs it).

Each family is encoded, written as OOK pulse data and decoded by rtl_433 with its default
decoders and with the device's protocol alone: the fields come back as encoded, and the number
of reports per transmission is pinned, since the bridge has to collapse them. rtl_433 is a plain
program reading a file, not a service, so these tests are not marked integration."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.rf433_signals import (
    EV1527_REPEATS,
    KERUI_REPEATS,
    NEXA_REPEATS,
    Transmission,
    generic_remote,
    kerui,
    nexa,
    nexus_th,
    noise,
    package_text,
    packages,
    rtl_433_args,
    write_ook,
)
from tests.support.rf433_signals import decode as rtl_433_decode
from tests.support.wait import until


def decode(tmp_path: Path, sent: list[Transmission], *protocols: int) -> list[dict[str, Any]]:
    """rtl_433's reports for ``sent``, without the time (always 0 for pulse data)."""
    path = write_ook(tmp_path / "signal.ook", sent)
    reports = rtl_433_decode(path, protocols)
    for report in reports:
        report.pop("time")
    return reports


# --- encoders: what rtl_433 reports ---------------------------------------------------------


def test_nexus_th_one_report_per_twelve_repeats(tmp_path: Path) -> None:
    sent = [nexus_th(0x5A, 2, True, 21.3, 45).send(), nexus_th(7, 3, False, -12.5, 99).send()]
    assert decode(tmp_path, sent) == [
        {
            "protocol": 19,
            "model": "Nexus-TH",
            "id": 90,
            "channel": 2,
            "battery_ok": 1,
            "temperature_C": 21.3,
            "humidity": 45,
        },
        {
            "protocol": 19,
            "model": "Nexus-TH",
            "id": 7,
            "channel": 3,
            "battery_ok": 0,
            "temperature_C": -12.5,
            "humidity": 99,
        },
    ]


def test_nexus_without_humidity_is_nexus_t(tmp_path: Path) -> None:
    (report,) = decode(tmp_path, [nexus_th(200, 1, True, 0.4, 0).send()], 19)
    assert report["model"] == "Nexus-T" and "humidity" not in report
    assert report["temperature_C"] == 0.4


def test_nexus_needs_three_repeats(tmp_path: Path) -> None:
    packet = nexus_th(0x5A, 1, True, 20.0, 50)
    assert decode(tmp_path, [packet.send(repeats=2)]) == []
    assert len(decode(tmp_path, [packet.send(repeats=3)])) == 1


def test_nexus_refuses_fields_the_decoder_drops() -> None:
    """nexus.c drops the payloads that pass a Rubicson sensor's CRC-8; over the 256 ids (the
    first byte of the CRC's input) exactly one does, for any other fields."""
    refused = []
    for id in range(256):
        try:
            nexus_th(id, 1, True, 20.0, 50)
        except ValueError as error:
            refused.append((id, str(error)))
    assert len(refused) == 1 and "rejects" in refused[0][1]
    with pytest.raises(ValueError, match="channel"):
        nexus_th(1, 4, True, 20.0, 50)


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        ("open", {"cmd": 0xE, "opened": 1, "state": "open"}),
        ("close", {"cmd": 0x7, "opened": 0, "state": "close"}),
        ("motion", {"cmd": 0xA, "motion": 1, "state": "motion"}),
        ("battery", {"cmd": 0xF, "battery_ok": 0, "state": "battery"}),
    ],
)
def test_kerui_contact_and_pir(tmp_path: Path, event: str, fields: dict[str, Any]) -> None:
    reports = decode(tmp_path, [kerui(0x12345, event).send()], 68)
    assert reports == [{"protocol": 68, "model": "Kerui-Security", "id": 0x12345, **fields}]


def test_kerui_is_also_heard_as_a_smoke_detector_by_default(tmp_path: Path) -> None:
    """One transmission of 25 repeats: one Kerui report, and one from the GS558 decoder that
    reads the same EV1527-style code (as it would a real Kerui's)."""
    reports = decode(tmp_path, [kerui(0x12345, "open").send()])
    assert [(r["protocol"], r["model"]) for r in reports] == [
        (68, "Kerui-Security"),
        (86, "Smoke-GS558"),
    ]
    assert KERUI_REPEATS == 25
    # kerui.c wants 9 identical rows: 8 repeats are not enough.
    assert decode(tmp_path, [kerui(0x12345, "open").send(repeats=8)], 68) == []


def test_generic_remote_reports_every_repeat(tmp_path: Path) -> None:
    reports = decode(tmp_path, [generic_remote(0x1234, 0x0C).send()])
    assert len(reports) == EV1527_REPEATS == 6
    assert all(
        r == {"protocol": 30, "model": "Generic-Remote", "id": 0x1234, "cmd": 0x0C}
        for r in [{k: v for k, v in r.items() if k != "tristate"} for r in reports]
    )
    assert reports[0]["tristate"] == "0Z0X01Z00010"


def test_nexa_reports_every_repeat_under_two_names(tmp_path: Path) -> None:
    reports = decode(tmp_path, [nexa(0x2AB3C4D, channel=1, unit=2, on=True).send()])
    assert len(reports) == 2 * NEXA_REPEATS == 10
    fields = {"id": 0x2AB3C4D, "channel": 1, "state": "ON", "unit": 2, "group": 0}
    assert reports[:5] == [{"protocol": 51, "model": "Proove-Security", **fields}] * 5
    assert reports[5:] == [{"protocol": 96, "model": "Nexa-Security", **fields}] * 5
    off = decode(tmp_path, [nexa(5, channel=3, unit=0, on=False, group=True).send(1)], 96)
    assert off == [
        {"protocol": 96, "model": "Nexa-Security", "id": 5, "channel": 3}
        | {"state": "OFF", "unit": 0, "group": 1}
    ]


def test_noise_decodes_to_nothing(tmp_path: Path) -> None:
    assert decode(tmp_path, [noise(seed).send() for seed in range(20)]) == []


def test_devices_decode_between_noise(tmp_path: Path) -> None:
    sent = [
        noise(1).send(),
        nexus_th(3, 1, True, 5.0, 60).send(),
        noise(2).send(),
        kerui(77, "motion").send(),
        noise(3).send(),
        generic_remote(9, 1).send(repeats=1),
    ]
    models = [r["model"] for r in decode(tmp_path, sent, 19, 30, 68)]
    assert models == ["Nexus-TH", "Kerui-Security", "Generic-Remote"]


# --- the writer ------------------------------------------------------------------------------


def test_packages_end_where_the_live_detector_ends_them() -> None:
    train = [(500, 1000), (500, 4000), (1400, 14_001), (450, 1350), (450, 100_001), (400, 400)]
    assert [len(p) for p in packages(train)] == [3, 2, 1]
    # 10 ms is the floor: a gap of 10.001 ms after 250 us pulses ends a package, 10 ms not.
    assert [len(p) for p in packages([(250, 10_000), (250, 10_001), (250, 250)])] == [2, 1]
    assert [len(p) for p in packages([(100, 200)] * 2500)] == [1200, 1200, 100]
    with pytest.raises(ValueError):
        list(packages([(0, 100)]))


def test_file_text() -> None:
    text = package_text(generic_remote(1, 1).send(repeats=2))
    lines = text.splitlines()
    assert lines.count(";end") == 2 and lines[-1] == ";end"
    # id 1 (16 bits), cmd 1 (8 bits): a 0 is 1 clock on, 3 off; a 1 is 3 on, 1 off.
    assert lines[0] == "450 1350" and lines[15] == "1350 450" and lines[23] == "1350 450"
    assert lines[24] == "450 13950"  # sync: one clock on, 31 off
    assert lines[25] == ";end"  # the sync gap ends a package on air too


# --- live: rtl_433 reading a stream -----------------------------------------------------------


@pytest.fixture
async def reader() -> AsyncIterator[Any]:
    """A factory of rtl_433 processes reading ``source``; each is killed and reaped after."""
    started: list[asyncio.subprocess.Process] = []

    async def start(source: str, stdin: int | None = None) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *rtl_433_args(source, [19]),
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def next_report(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdout is not None
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        assert line, "rtl_433 ended its output"
        if line.startswith(b"{"):
            report: dict[str, Any] = json.loads(line)
            return report


async def test_stdin_stream_is_decoded_package_by_package(reader: Any) -> None:
    process = await reader("ook:-", stdin=asyncio.subprocess.PIPE)
    for temperature in (20.0, 20.5, 21.0):
        process.stdin.write(package_text(nexus_th(1, 1, True, temperature, 50).send()).encode())
        await process.stdin.drain()
        assert (await next_report(process))["temperature_C"] == temperature
    process.stdin.close()
    await process.stdin.wait_closed()
    assert await asyncio.wait_for(process.wait(), 10) == 0  # end of input ends rtl_433


def open_for_writing(fifo: Path) -> int | None:
    """The FIFO opened to write once a reader has it open, else None (ENXIO)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:
            return None
        raise
    os.set_blocking(fd, True)
    return fd


async def test_fifo_stream_survives_a_killed_reader(tmp_path: Path, reader: Any) -> None:
    """A feeder writing a FIFO gets EPIPE when rtl_433 dies, reopens it once a new rtl_433
    has it open, and the new one decodes what follows."""
    fifo = tmp_path / "live.ook"
    os.mkfifo(fifo)
    fds: list[int] = []
    try:
        for temperature in (18.0, 19.0):
            process = await reader(str(fifo))  # .ook: rtl_433 reads it as pulse data
            opened: list[int | None] = [None]

            def ready(opened: list[int | None] = opened) -> bool:
                opened[0] = open_for_writing(fifo)
                return opened[0] is not None

            await until(ready, what="rtl_433 to open the FIFO")
            assert opened[0] is not None
            fds.append(opened[0])
            text = package_text(nexus_th(1, 1, True, temperature, 50).send())
            os.write(fds[-1], text.encode())
            assert (await next_report(process))["temperature_C"] == temperature
            process.send_signal(signal.SIGKILL)
            await process.wait()
            with pytest.raises(BrokenPipeError):
                os.write(fds[-1], text.encode())
    finally:
        for fd in fds:
            os.close(fd)


async def test_fifo_held_read_write_keeps_what_was_sent_while_rtl_433_was_down(
    tmp_path: Path, reader: Any
) -> None:
    """A feeder that holds the FIFO open read-write never blocks nor gets EPIPE; what it
    writes while no rtl_433 runs waits in the pipe for the next one."""
    fifo = tmp_path / "live.ook"
    os.mkfifo(fifo)
    holder = os.open(fifo, os.O_RDWR)
    try:
        first = await reader(str(fifo))
        os.write(holder, package_text(nexus_th(1, 1, True, 10.0, 50).send()).encode())
        assert (await next_report(first))["temperature_C"] == 10.0
        first.kill()
        await first.wait()
        os.write(holder, package_text(nexus_th(1, 1, True, 11.0, 50).send()).encode())
        second = await reader(str(fifo))
        assert (await next_report(second))["temperature_C"] == 11.0
    finally:
        os.close(holder)
