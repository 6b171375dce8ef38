"""Boot the appliance image under ``qemu-system-aarch64 -M virt`` and reach it over loopback.

The kernel, initrd and kernel command line are taken from the image's own FAT partition (with
mtools, no mounts), so the test boots what a Pi would boot; only the console and the
devices differ. The guest gets no network beyond QEMU's user-mode stack with
``restrict=on``: it reaches nothing, and the host reaches it only through the loopback ports
forwarded here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.appliance.selftest import ROOM
from gateway.mosquitto import free_port

FAT_OFFSET_BYTES = 4 * 1024 * 1024  # image/assemble.sh puts the boot partition at 4 MiB
# The AP address the broker listens on inside the guest (services/gateway.yaml's default);
# QEMU forwards to it across the virtual NIC, as a WiFi client would reach it.
AP_ADDRESS = "192.168.4.1"


def fat(image: Path) -> str:
    return f"{image}@@{FAT_OFFSET_BYTES}"


def read_boot_file(image: Path, name: str) -> str | None:
    result = subprocess.run(
        ["mtype", "-i", fat(image), f"::/{name}"], capture_output=True, text=True, check=False
    )
    return result.stdout if result.returncode == 0 else None


def write_boot_file(image: Path, name: str, text: str, tmp: Path) -> None:
    source = tmp / name
    source.write_text(text, encoding="utf-8")
    subprocess.run(["mcopy", "-o", "-i", fat(image), str(source), f"::/{name}"], check=True)


def extract_boot(image: Path, into: Path) -> tuple[Path, Path, str]:
    """The kernel, the initrd and the command line the Pi firmware would use."""
    listing = subprocess.run(
        ["mdir", "-b", "-i", fat(image), "::/"], capture_output=True, text=True, check=True
    ).stdout
    names = [line.strip().removeprefix("::/") for line in listing.splitlines()]
    kernel = next(n for n in names if n.startswith("vmlinuz-"))
    initrd = next(n for n in names if n.startswith("initrd.img-"))
    for name in (kernel, initrd):
        subprocess.run(
            ["mcopy", "-o", "-i", fat(image), f"::/{name}", str(into / name)], check=True
        )
    cmdline = read_boot_file(image, "cmdline.txt")
    assert cmdline, "the image's boot partition has no cmdline.txt"
    return into / kernel, into / initrd, cmdline.strip()


def guest_cmdline(pi_cmdline: str, *, extra: str = "") -> str:
    """The Pi's command line with the Pi's consoles swapped for the virt machine's UART."""
    words = [w for w in pi_cmdline.split() if not w.startswith("console=") and w != "quiet"]
    # The access point's radio and the self-test's ROOM stations (its one client is the first).
    words += ["console=ttyAMA0", "modules-load=mac80211_hwsim", f"mac80211_hwsim.radios={1 + ROOM}"]
    return " ".join(words + extra.split())


@dataclass
class Guest:
    image: Path
    workdir: Path
    mqtt_port: int = field(default_factory=free_port)
    runtime_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)  # the guest's port 80
    process: subprocess.Popen[bytes] | None = None
    console_path: Path = field(init=False)
    started_at: float = 0.0

    def __post_init__(self) -> None:
        self.console_path = self.workdir / "console.log"

    def start(self, *, extra_cmdline: str = "", console_name: str = "console.log") -> None:
        kernel, initrd, cmdline = extract_boot(self.image, self.workdir)
        self.console_path = self.workdir / console_name
        forwards = (
            f"hostfwd=tcp:127.0.0.1:{self.mqtt_port}-{AP_ADDRESS}:1883,"
            f"hostfwd=tcp:127.0.0.1:{self.runtime_port}-:3569,"
            # As a phone on the WiFi opens http://gateway.msgflo/.
            f"hostfwd=tcp:127.0.0.1:{self.dashboard_port}-{AP_ADDRESS}:80"
        )
        argv = [
            shutil.which("qemu-system-aarch64") or "qemu-system-aarch64",
            "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
            "-accel", "tcg,thread=multi",
            "-nographic", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", guest_cmdline(cmdline, extra=extra_cmdline),
            "-drive", f"file={self.image},format=raw,if=virtio,cache=unsafe",
            "-netdev", f"user,id=n0,restrict=on,{forwards}",
            "-device", "virtio-net-pci,netdev=n0,romfile=",
            "-qmp", f"unix:{self.workdir / 'qmp.sock'},server=on,wait=off",
            "-serial", f"file:{self.console_path}",
            "-monitor", "none",
        ]  # fmt: skip
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def console(self) -> str:
        try:
            return self.console_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_console(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            found = rx.search(self.console())
            if found:
                return found
            self.check_running()
            time.sleep(0.5)
        raise AssertionError(f"no {pattern!r} on the console in {timeout:.0f} s:\n{self.tail()}")

    def check_running(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            stderr = self.process.stderr.read().decode() if self.process.stderr else ""
            raise AssertionError(
                f"qemu exited ({self.process.returncode}): {stderr}\n{self.tail()}"
            )

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.console().splitlines()[-lines:])

    def power_cut(self) -> None:
        """SIGKILL: the guest gets no chance to flush or unmount, like pulling the plug."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.release()

    def poweroff(self, timeout: float = 90) -> None:
        """The power button (ACPI-less virt: a GPIO key); logind shuts the system down."""
        assert self.process is not None
        with contextlib.suppress(OSError):
            qmp(self.workdir / "qmp.sock", "system_powerdown")
        try:
            self.process.wait(timeout)
            self.release()
        except subprocess.TimeoutExpired:
            self.power_cut()
            message = f"the guest did not power off in {timeout} s:\n{self.tail()}"
            raise AssertionError(message) from None

    def release(self) -> None:
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.power_cut()


def qmp(path: Path, command: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        stream = sock.makefile("rw", encoding="utf-8")
        stream.readline()  # greeting
        for execute in ("qmp_capabilities", command):
            stream.write(json.dumps({"execute": execute}) + "\n")
            stream.flush()
            stream.readline()


@contextlib.contextmanager
def booted(image: Path, workdir: Path, **start: str) -> Iterator[Guest]:
    guest = Guest(image, workdir)
    guest.start(**start)
    try:
        yield guest
    finally:
        guest.stop()


def data_partition(image: Path) -> tuple[int, int]:
    """Start and size in 512-byte sectors of the image's data partition (the third)."""
    table = json.loads(
        subprocess.run(["sfdisk", "-J", str(image)], capture_output=True, check=True).stdout
    )
    part = table["partitiontable"]["partitions"][2]
    return int(part["start"]), int(part["size"])


def _debugfs_data(image: Path, request: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """debugfs ``-R request`` on a copy of the image's data partition."""
    start, size = data_partition(image)
    data = tmp / "data-read.ext4"
    subprocess.run(
        ["dd", f"if={image}", f"of={data}", "bs=512", f"skip={start}", f"count={size}",
         "conv=sparse", "status=none"],
        check=True,
    )  # fmt: skip
    try:
        return subprocess.run(
            ["debugfs", "-R", request, str(data)], capture_output=True, text=True, check=False
        )
    finally:
        data.unlink()


def data_file_mtime(image: Path, path: str, tmp: Path) -> int | None:
    """The mtime of ``path`` on the image's data partition, read with debugfs."""
    found = re.search(r"mtime: 0x([0-9a-f]+)", _debugfs_data(image, f"stat {path}", tmp).stdout)
    return int(found.group(1), 16) if found else None


def data_filesystem_bytes(image: Path, tmp: Path) -> int:
    """The size of the ext4 filesystem on the image's data partition (its superblock's)."""
    stats = _debugfs_data(image, "stats", tmp).stdout
    blocks = re.search(r"^Block count:\s+(\d+)", stats, re.M)
    size = re.search(r"^Block size:\s+(\d+)", stats, re.M)
    assert blocks and size, f"no block count in debugfs stats:\n{stats[:500]}"
    return int(blocks.group(1)) * int(size.group(1))


def write_data_files(image: Path, files: dict[str, tuple[bytes, int]], tmp: Path) -> None:
    """Put ``files`` (path on the data partition -> content, mode) into the image's data
    partition before a boot, with debugfs on a copy written back in place: what someone
    editing the kit's SD card on a Linux machine would do. Owned by root."""
    start, size = data_partition(image)
    data = tmp / "data-edit.ext4"
    where = ["bs=512", f"count={size}", "status=none"]
    subprocess.run(["dd", f"if={image}", f"of={data}", f"skip={start}", *where], check=True)
    folders = {str(Path(path).parent) for path in files} - {"/"}
    commands = [f"mkdir {folder}" for folder in sorted(folders)]
    for number, (path, (content, mode)) in enumerate(sorted(files.items())):
        local = tmp / f"data-file-{number}"
        local.write_bytes(content)
        commands += [
            f"rm {path}",
            f"write {local} {path}",
            f"sif {path} mode 0{0o100000 | mode:o}",
            f"sif {path} uid 0",
            f"sif {path} gid 0",
        ]
    script = tmp / "debugfs.cmds"
    script.write_text("\n".join(commands) + "\n", encoding="utf-8")
    subprocess.run(["debugfs", "-w", "-f", str(script), str(data)], capture_output=True, check=True)
    subprocess.run(
        ["dd", f"if={data}", f"of={image}", f"seek={start}", "conv=notrunc", *where], check=True
    )
    data.unlink()


def read_data_file(image: Path, path: str, tmp: Path) -> str | None:
    """The text of ``path`` on the image's data partition (debugfs cat), None if absent."""
    done = _debugfs_data(image, f"cat {path}", tmp)
    return done.stdout if done.returncode == 0 and done.stdout else None


def sparse_copy(source: Path, target: Path) -> None:
    subprocess.run(["cp", "--sparse=always", str(source), str(target)], check=True)
    os.sync()
