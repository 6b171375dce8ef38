"""The self-test's idle wakeups, read off the guest's console and printed for bench/RESULTS.md.

``gateway-run selftest`` (gateway/appliance/selftest.py, ``check_wakeups``) prints, after its
``result`` line, ``msgflo-selftest: wakeups[<unit>]=<per second>`` for each gateway unit and
``wakeups_gateway_total``, ``wakeups_participants``, ``wakeups_os``, ``wakeups_kernel``,
``wakeups_interrupts``, ``wakeups_windows``, ``wakeups_goal=met|missed`` (the last line). The
boot test waits for that last line, then prints the figures with :func:`print_wakeups` as it
prints the boot-to-ready seconds: on stdout, shown by ``pytest -s`` (or ``-rP``), one Markdown
table ready to paste under docs/appliance.md's ``<!-- wakeups from CI -->`` marker.
"""

from __future__ import annotations

import re

from gateway.appliance.selftest import PREFIX

# The self-test's last wakeups line: the boot test waits for it (guest.wait_console).
WAKEUPS_DONE = re.escape(PREFIX) + r" wakeups_goal=\w+"
# Settling 10 s, then three 30 s windows, each with two reads of every task's status file
# (a few seconds under TCG), after the self-test's result line.
WAKEUPS_TIMEOUT = 300.0
_LINE = re.compile(re.escape(PREFIX) + r" (wakeups[\w\[\]@.-]*)=(\S+)")
_SUMMARY = (
    ("wakeups_gateway_total", "**the gateway's own processes**"),
    ("wakeups_participants", "the graph's participants (the demo's simulated devices)"),
    ("wakeups_os", "the OS alone (every other process and kernel thread)"),
    ("wakeups_kernel", "of which kernel threads"),
    ("wakeups_interrupts", "interrupts, the whole machine"),
)


def wakeup_figures(console: str) -> dict[str, str]:
    """Every ``wakeups...=value`` the self-test printed (the last of each, if it ran twice)."""
    return dict(_LINE.findall(console))


def wakeups_table(figures: dict[str, str], boot: str) -> str:
    """A Markdown table: each gateway unit, then the totals, in wakeups per second."""
    units = sorted(key for key in figures if key.startswith("wakeups["))
    rows = [f"| {key[len('wakeups[') : -1]} | {figures[key]} |" for key in units]
    rows += [f"| {label} | {figures[key]} |" for key, label in _SUMMARY if key in figures]
    head = (
        f"Idle wakeups per second, boot '{boot}' under QEMU (the quietest of the windows "
        f"{figures.get('wakeups_windows', '?')}, {figures.get('wakeups_window', '?')} s each; "
        f"goal below 5/s for the gateway: {figures.get('wakeups_goal', '?')}):"
    )
    return "\n".join([head, "", "| unit | wakeups/s |", "|---|---:|", *rows])


def print_wakeups(figures: dict[str, str], boot: str) -> None:
    print(wakeups_table(figures, boot), flush=True)
