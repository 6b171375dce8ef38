"""The self-test's idle wakeups: the arithmetic on a fake /proc tree, the report on it, and the
sampler on this machine's own /proc against a process whose wakeups are known.

The fake tree has the files the sampler reads and nothing else: ``<pid>/cgroup``,
``<pid>/status`` (PPid, Kthread), ``<pid>/task/<tid>/status`` (the two switch counters) and
``stat`` (the interrupt total). A fake sleep moves the counters on, as the window would.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.appliance.selftest import (
    KERNEL,
    OS,
    PARTICIPANTS,
    WAKEUP_SETTLE,
    TaskCount,
    check_wakeups,
    measure_window,
    snapshot,
    unit_groups,
    wakeup_rates,
)
from tests.image.wakeups import WAKEUPS_DONE, wakeup_figures, wakeups_table

COORDINATOR = "/system.slice/msgflo-coordinator.service"
BROKER = "/system.slice/msgflo-broker.service"
TEMPLATE_INSTANCE = r"/system.slice/system-msgflo\x2dbridge.slice/msgflo-bridge@serial.service"


def task(pid: int, tid: int, switches: int, *, ppid: int = 1, cgroup: str = "/") -> TaskCount:
    return TaskCount(pid, tid, ppid, switches, kernel=False, cgroup=cgroup)


@dataclass
class FakeProc:
    """A /proc tree with processes, their threads' counters and the interrupt total."""

    root: Path
    now: float = 100.0
    interrupts: int = 0
    switches: dict[tuple[int, int], int] = field(default_factory=dict)

    def process(
        self, pid: int, cgroup: str, *, ppid: int = 1, kthread: bool = False, tids: int = 1
    ) -> None:
        directory = self.root / str(pid)
        (directory / "task").mkdir(parents=True)
        (directory / "cgroup").write_text(f"0::{cgroup}\n", encoding="utf-8")
        (directory / "status").write_text(
            f"Name:\tx\nPid:\t{pid}\nPPid:\t{ppid}\nKthread:\t{int(kthread)}\n", encoding="utf-8"
        )
        for tid in range(pid, pid + tids):
            self.set(pid, tid, 0)

    def set(self, pid: int, tid: int, switches: int, preempted: int = 0) -> None:
        self.switches[(pid, tid)] = switches + preempted
        status = self.root / str(pid) / "task" / str(tid) / "status"
        status.parent.mkdir(parents=True, exist_ok=True)
        status.write_text(
            f"Name:\tx\nvoluntary_ctxt_switches:\t{switches}\n"
            f"nonvoluntary_ctxt_switches:\t{preempted}\n",
            encoding="utf-8",
        )

    def write_stat(self) -> None:
        (self.root / "stat").write_text(
            f"cpu  1 2 3 4\nintr {self.interrupts} 0 0\nctxt 5\n", encoding="utf-8"
        )


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    fake = FakeProc(tmp_path / "proc")
    fake.root.mkdir()
    fake.write_stat()
    return fake


def test_rates_are_the_counters_differences_per_second() -> None:
    before = {10: task(10, 10, 100), 11: task(10, 11, 50), 20: task(20, 20, 7)}
    after = {10: task(10, 10, 130), 11: task(10, 11, 80), 20: task(20, 20, 7)}
    rates = wakeup_rates(before, after, {10: "a", 20: "b"}, 30.0)
    assert rates.per_group == {"a": 2.0, "b": 0.0}
    assert rates.tasks_gone == 0
    assert rates.total(["a", "b", "missing"]) == 2.0


def test_a_thread_started_in_the_window_counts_whole_and_a_gone_one_is_counted_as_gone() -> None:
    before = {10: task(10, 10, 100), 12: task(10, 12, 40)}
    after = {10: task(10, 10, 110), 13: task(10, 13, 5)}
    rates = wakeup_rates(before, after, {10: "a"}, 5.0)
    assert rates.per_group == {"a": 3.0}  # 10 + 5 new
    assert rates.tasks_gone == 1


def test_a_reused_thread_id_counts_as_new() -> None:
    # tid 30 was process 30's; now it is a thread of process 40 (ids wrap), or its counter
    # restarted: its whole count is the window's.
    before = {30: task(30, 30, 1000), 31: task(31, 31, 500)}
    after = {30: task(40, 30, 4), 31: task(31, 31, 2)}
    rates = wakeup_rates(before, after, {40: "b", 31: "c"}, 2.0)
    assert rates.per_group == {"b": 2.0, "c": 1.0}


def test_processes_without_a_group_are_left_out() -> None:
    before = {10: task(10, 10, 0), 11: task(11, 11, 0)}
    after = {10: task(10, 10, 6), 12: task(12, 12, 9)}
    rates = wakeup_rates(before, after, {10: "a"}, 3.0)
    assert rates.per_group == {"a": 2.0}
    assert rates.tasks_gone == 0  # 11 was never measured


def test_groups_are_units_participants_kernel_threads_and_the_rest() -> None:
    tasks = {
        t.tid: t
        for t in (
            task(100, 100, 0, cgroup=COORDINATOR),
            task(101, 101, 0, ppid=100, cgroup=COORDINATOR),  # a participant it started
            task(200, 200, 0, cgroup=BROKER),
            task(300, 300, 0, cgroup=TEMPLATE_INSTANCE),  # as systemd places a template's
            task(301, 301, 0, ppid=300, cgroup="/system.slice/msgflo-bridge@rf433.service"),
            task(400, 400, 0, cgroup="/system.slice/msgflo-selftest.service"),  # the measurer
            task(500, 500, 0, cgroup="/system.slice/systemd-journald.service"),
            task(1, 1, 0, ppid=0, cgroup="/init.scope"),
            TaskCount(7, 7, 2, 0, kernel=True, cgroup="/"),
        )
    }
    assert unit_groups(tasks) == {
        100: "msgflo-coordinator.service",
        101: PARTICIPANTS,
        200: "msgflo-broker.service",
        300: "msgflo-bridge@serial.service",
        301: "msgflo-bridge@rf433.service",  # a bridge's own child (rtl_433) is the bridge's
        400: OS,
        500: OS,
        1: OS,
        7: KERNEL,
    }


def test_snapshot_reads_every_thread_and_skips_what_it_is_told(proc: FakeProc) -> None:
    proc.process(100, COORDINATOR, tids=3)
    proc.process(200, BROKER)
    proc.set(100, 101, 7, preempted=2)
    (proc.root / "self").mkdir()  # not a process
    found = snapshot(proc.root, skip=frozenset({200}))
    assert sorted(found) == [100, 101, 102]
    assert found[101] == TaskCount(100, 101, 1, 9, False, COORDINATOR)


def test_a_process_that_exits_while_being_read_is_skipped(proc: FakeProc) -> None:
    proc.process(100, COORDINATOR)
    (proc.root / "100" / "task" / "100" / "status").unlink()
    (proc.root / "200" / "task").mkdir(parents=True)  # no cgroup, no status: gone
    assert snapshot(proc.root) == {}


def window_sleep(
    proc: FakeProc, moves: list[dict[tuple[int, int], int]]
) -> Callable[[float], None]:
    """A sleep that applies the next window's counter moves and advances the fake clock."""

    def sleep(seconds: float) -> None:
        proc.now += seconds
        if seconds != WAKEUP_SETTLE and moves:  # a window, not the settling
            for (pid, tid), by in moves.pop(0).items():
                proc.set(pid, tid, proc.switches[(pid, tid)] + by)
            proc.interrupts += int(seconds * 50)
            proc.write_stat()

    return sleep


def test_measure_window_on_a_fake_tree(proc: FakeProc) -> None:
    proc.process(100, COORDINATOR)
    proc.process(7, "/", ppid=2, kthread=True)
    sleep = window_sleep(proc, [{(100, 100): 60, (7, 7): 300}])
    rates, irq = measure_window(proc.root, 30.0, sleep=sleep, clock=lambda: proc.now)
    assert rates.seconds == 30.0
    assert rates.per_group == {"msgflo-coordinator.service": 2.0, KERNEL: 10.0}
    assert irq == 50.0


def report_lines(text: str) -> dict[str, str]:
    return dict(re.findall(r"^msgflo-selftest: ([\w\[\]@.-]+)=(\S+)$", text, re.MULTILINE))


def test_the_report_takes_the_quietest_window(
    proc: FakeProc, capsys: pytest.CaptureFixture[str]
) -> None:
    proc.process(100, COORDINATOR)
    proc.process(101, COORDINATOR, ppid=100)
    proc.process(200, BROKER)
    proc.process(500, "/system.slice/systemd-journald.service")
    proc.process(7, "/", ppid=2, kthread=True)
    busy = {(100, 100): 300, (200, 200): 300}  # the host was still testing the kit
    quiet = {(100, 100): 30, (200, 200): 60, (101, 101): 90, (500, 500): 15, (7, 7): 45}
    sleep = window_sleep(proc, [busy, quiet, busy])
    check_wakeups(proc.root, windows=3, seconds=30.0, sleep=sleep, clock=lambda: proc.now)
    lines = report_lines(capsys.readouterr().out)
    assert lines == {
        "wakeups_counter": "ctxt_switches",
        "wakeups_window": "30.0",
        "wakeups_windows": "20.00,3.00,20.00",
        "wakeups[msgflo-broker.service]": "2.00",
        "wakeups[msgflo-coordinator.service]": "1.00",
        "wakeups_gateway_total": "3.00",
        "wakeups_participants": "3.00",
        "wakeups_os": "2.00",
        "wakeups_kernel": "1.50",
        "wakeups_interrupts": "50.00",
        "wakeups_tasks_gone": "0",
        "wakeups_goal": "met",
    }


def test_the_goal_is_missed_from_five_a_second(
    proc: FakeProc, capsys: pytest.CaptureFixture[str]
) -> None:
    proc.process(200, BROKER)
    sleep = window_sleep(proc, [{(200, 200): 150}])
    check_wakeups(proc.root, windows=1, seconds=30.0, sleep=sleep, clock=lambda: proc.now)
    lines = report_lines(capsys.readouterr().out)
    assert lines["wakeups_gateway_total"] == "5.00"
    assert lines["wakeups_goal"] == "missed"


def test_no_proc_is_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_wakeups(tmp_path / "missing", windows=1, seconds=1.0, sleep=lambda _: None)
    assert report_lines(capsys.readouterr().out) == {"wakeups": "unmeasured:FileNotFoundError"}


# A process that wakes on a 100 ms timer and counts its wakeups in a file: the sampler must
# count, from this machine's real /proc, what the process counted itself. Not a timing
# assertion: on a loaded machine the sleeps overrun and there are fewer wakeups, but then both
# counts are lower together. Writing a file wakes no other task (a pipe would wake its reader,
# which may preempt the writer: more switches than timer expiries). It ends by itself after at
# most 60 s.
SLEEPER = (
    "import os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)\n"
    "for i in range(600):\n"
    "    time.sleep(0.1)\n"
    "    os.pwrite(fd, b'%10d' % (i + 1), 0)\n"
)
PERIOD = 0.1
WINDOW = 3.0


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    count = tmp_path / "count"
    with subprocess.Popen([sys.executable, "-c", SLEEPER, str(count)]) as process:
        try:
            yield process.pid, count
        finally:
            process.kill()
            process.wait(10)


def woken(count: Path) -> int:
    text = count.read_text(encoding="ascii").strip() if count.exists() else ""
    return int(text) if text else 0


def test_the_sampler_counts_a_real_process_timer_wakeups(sleeper: tuple[int, Path]) -> None:
    pid, count = sleeper
    assert until_true(lambda: woken(count) > 0, 30), "the sleeper never woke"
    start, preempted = woken(count), preemptions(pid)
    rates, _ = measure_window(Path("/proc"), WINDOW, grouping=lambda _: {pid: "sleeper"})
    woke, preempted = woken(count) - start, preemptions(pid) - preempted
    measured = rates.per_group["sleeper"] * rates.seconds
    assert woke >= 3, f"the sleeper woke {woke} times in {WINDOW} s"
    # The file is read a little before and after each snapshot: one wakeup either way at each
    # end. A preemption of the running sleeper is counted too (by design: it put the thread on
    # a CPU again), and on a loaded machine there are a few: read apart, they are taken out.
    assert woke - 2 <= measured - preempted <= woke + 3, (measured, preempted, woke)
    # And never more often than its timer allows (plus those few).
    assert (measured - preempted) / rates.seconds <= 1 / PERIOD + 3 / WINDOW, rates


def preemptions(pid: int) -> int:
    """The sleeper's (one thread's) involuntary switches so far."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    found = re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)$", status, re.MULTILINE)
    assert found, status
    return int(found.group(1))


def until_true(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_boot_test_reads_the_report_off_a_console(
    proc: FakeProc, capsys: pytest.CaptureFixture[str]
) -> None:
    proc.process(100, COORDINATOR)
    proc.process(300, "/system.slice/msgflo-bridge@serial.service")
    sleep = window_sleep(proc, [{(100, 100): 45, (300, 300): 3}])
    check_wakeups(proc.root, windows=1, seconds=30.0, sleep=sleep, clock=lambda: proc.now)
    # The console interleaves the kernel's and systemd's lines with the self-test's.
    console = "[  OK  ] Started x.\r\n" + capsys.readouterr().out.replace("\n", "\r\n")
    assert re.search(WAKEUPS_DONE, console)
    figures = wakeup_figures(console)
    assert figures["wakeups[msgflo-coordinator.service]"] == "1.50"
    table = wakeups_table(figures, "first")
    assert "| msgflo-bridge@serial.service | 0.10 |" in table
    assert "| **the gateway's own processes** | 1.60 |" in table
    assert "goal below 5/s for the gateway: met" in table
