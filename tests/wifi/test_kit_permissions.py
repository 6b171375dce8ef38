"""hostapd's control socket as the kit's units set it up, with the real hostapd (driver=none).

msgflo-ap.service runs hostapd as root with only CAP_NET_ADMIN and CAP_NET_RAW (no DAC override,
no CAP_CHOWN), in the group msgflo-hostapd, under umask 0027; msgflo-bridge@health runs as
another user in that group, with its own /tmp. Here setpriv gives hostapd the same capabilities,
group and umask, and the health participant's WiFi reader runs as ``nobody``, in the group or
not. The group is a free numeric gid (hostapd takes a number as well as a name), so nothing is
added to this machine's /etc/group. Needs root; the boot test checks the units themselves.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.wifi.conftest import HOSTAPD, Hostapd

pytestmark = pytest.mark.integration

SETPRIV = shutil.which("setpriv")
NOBODY = 65534
REPO = Path(__file__).resolve().parents[2]
# The health participant's reader, as it runs in its unit: the station count, or None when
# the socket cannot be reached.
READER = (
    "import asyncio, sys\n"
    "from gateway.health.readers import wifi_clients\n"
    "print(asyncio.run(wifi_clients(sys.argv[1])))\n"
)


def free_gid() -> int:
    used = {group.gr_gid for group in grp.getgrall()}
    return next(gid for gid in range(4000, 60000) if gid not in used)


def as_nobody(groups: list[int], *argv: str) -> subprocess.CompletedProcess[str]:
    assert SETPRIV is not None
    group_option = f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"
    return subprocess.run(
        [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", group_option, "--bounding-set=-all",
         "--no-new-privs", *argv],
        capture_output=True, text=True, check=False, cwd=REPO, timeout=30,
    )  # fmt: skip


class KitHostapd(Hostapd):
    def __init__(self, group: int) -> None:
        assert SETPRIV is not None
        # As msgflo-ap.service: CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW,
        # SupplementaryGroups=msgflo-hostapd, UMask=0027.
        super().__init__(
            wrapper=[SETPRIV, "--bounding-set=-all,+net_admin,+net_raw", "--inh-caps=-all",
                     f"--groups={group}", "--no-new-privs"],
            umask=0o027,
        )  # fmt: skip
        self.group = group
        # As /run/msgflo-gateway/ap: a directory everyone may enter (the socket's mode guards).
        self.workdir.chmod(0o755)

    def config(self) -> str:
        return super().config() + f"ctrl_interface_group={self.group}\n"


@pytest.fixture
def kit_hostapd() -> Iterator[KitHostapd]:
    if os.geteuid() != 0 or SETPRIV is None or not HOSTAPD.exists():
        pytest.skip("needs root, setpriv and hostapd")
    if as_nobody([], sys.executable, "-c", "import gateway").returncode != 0:
        pytest.skip(f"{sys.executable} or the gateway package is not readable by nobody")
    server = KitHostapd(free_gid())
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def test_the_directory_and_socket_are_the_groups(kit_hostapd: KitHostapd) -> None:
    directory, socket_file = kit_hostapd.ctrl.parent.stat(), kit_hostapd.ctrl.stat()
    assert (directory.st_gid, directory.st_mode & 0o777) == (kit_hostapd.group, 0o750)
    assert (socket_file.st_gid, socket_file.st_mode & 0o777) == (kit_hostapd.group, 0o770)


def test_a_member_of_the_group_counts_the_clients(kit_hostapd: KitHostapd) -> None:
    # The reply socket is abstract: root without DAC override answers a user's client.
    read = as_nobody([kit_hostapd.group], sys.executable, "-c", READER, str(kit_hostapd.ctrl))
    assert (read.returncode, read.stdout.strip()) == (0, "0"), read.stderr


def test_anyone_else_is_refused(kit_hostapd: KitHostapd) -> None:
    read = as_nobody([], sys.executable, "-c", READER, str(kit_hostapd.ctrl))
    assert (read.returncode, read.stdout.strip()) == (0, "None"), read.stderr


def test_hostapd_outside_the_group_cannot_start() -> None:
    """Without SupplementaryGroups=msgflo-hostapd on the access point's unit, hostapd cannot
    give its socket to the group (no CAP_CHOWN) and exits: the AP would be down."""
    if os.geteuid() != 0 or SETPRIV is None or not HOSTAPD.exists():
        pytest.skip("needs root, setpriv and hostapd")
    server = KitHostapd(free_gid())
    server.wrapper = [SETPRIV, "--bounding-set=-all,+net_admin,+net_raw", "--inh-caps=-all",
                      "--clear-groups", "--no-new-privs"]  # fmt: skip
    try:
        with pytest.raises(RuntimeError, match="hostapd did not start"):
            server.start()
    finally:
        server.cleanup()
