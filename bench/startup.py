"""Start-up cost of the gateway's services (issue 20, boot to ready), beside the interpreter's.

Every service of the appliance is a Python program, and at boot they start together; under the
boot test's emulator each start costs 30-40 times what it costs here, so the CPU a start takes
on this machine is what decides how long a kit takes to be ready. Measured, each ``--runs``
times, the median of the process's CPU seconds (user + system, read from /proc) and wall
seconds:

- ``python -c pass``: the interpreter alone, the baseline;
- ``import gateway.appliance.run``: what ``gateway-run broker`` (and ``ap``, ``dhcp``) loads
  before it renders a file and execs its daemon;
- ``gateway-enabled bridge-serial``: the check each bridge's and the access point's unit runs;
- ``gateway-run coordinator``: until it tells systemd ``READY=1`` (its runtime protocol
  listens and it is subscribed to the broker), through a ``NOTIFY_SOCKET`` of this script's,
  on the shipped ``gateway.yaml`` and demo graph in a data directory first boot made here,
  against the Mosquitto ``gateway-run broker`` renders and starts.

    .venv/bin/python -m bench.startup [--runs 7]

The CI machine's figures and the boot figures they explain: bench/RESULTS.md, "The lean image".
No figure is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.common import BIN, ROOT, cpu_seconds, machine, markdown_table, median, stop_process
from gateway.common.yaml12 import dump_yaml, load_yaml
from gateway.mosquitto import free_port

READY_TIMEOUT = 60.0  # s; a loaded machine, and the first run compiles no bytecode here
BROKER_TIMEOUT = 20.0  # s for the rendered Mosquitto to listen


def gateway_yaml(data: Path, ports: dict[str, int]) -> str:
    """The shipped config (services/gateway.yaml), on free ports, with state in ``data``."""
    config = load_yaml((ROOT / "services" / "gateway.yaml").read_text(encoding="utf-8"), "shipped")
    config["data_dir"] = str(data)
    config.setdefault("broker", {}).update(
        port=ports["mqtt"], tls_port=ports["tls"], websockets_port=ports["ws"]
    )
    config.setdefault("runtime", {}).update(host="127.0.0.1", port=ports["runtime"])
    config.setdefault("access_point", {})["enabled"] = False
    config.setdefault("coordinator", {}).update(
        graph=str(data / "coordinator" / "graph.fbp"),
        library=str(ROOT / "examples" / "library.yaml"),
    )
    return dump_yaml(config)


@contextlib.contextmanager
def kit(work: Path) -> Iterator[Path]:
    """A first-booted data directory and its running broker; yields the config file."""
    ports = {name: free_port() for name in ("mqtt", "tls", "ws", "runtime")}
    data = work / "data"
    config = work / "gateway.yaml"
    config.write_text(gateway_yaml(data, ports), encoding="utf-8")
    boot = work / "boot"
    boot.mkdir()
    users = ["--broker-user", "", "--coordinator-user", "", "--bridge-user", ""]
    firstboot = [str(BIN / "gateway-firstboot"), "--config", str(config), "--boot-dir", str(boot)]
    subprocess.run([*firstboot, *users], check=True, capture_output=True)
    graph = data / "coordinator" / "graph.fbp"
    graph.parent.mkdir(parents=True, exist_ok=True)
    graph.write_text((ROOT / "examples" / "demo.fbp").read_text(encoding="utf-8"))
    run_dir = work / "run"
    broker = subprocess.Popen(
        [str(BIN / "gateway-run"), "--config", str(config), "--run-dir", str(run_dir), "broker"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(ports["mqtt"], broker)
        yield config
    finally:
        stop_process(broker)


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + BROKER_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gateway-run broker exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise SystemExit(f"the broker did not listen on {port} in {BROKER_TIMEOUT:.0f} s")


def run_to_exit(argv: Sequence[str]) -> tuple[float, float]:
    """Wall and CPU seconds of a command that exits by itself."""
    start = time.perf_counter()
    before = os.times()
    subprocess.run(argv, check=False, capture_output=True)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return time.perf_counter() - start, cpu


def run_to_ready(argv: Sequence[str], work: Path) -> tuple[float, float]:
    """Wall and CPU seconds until the program sends ``READY=1`` to its NOTIFY_SOCKET."""
    path = work / "notify.sock"
    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(path))
        notify.settimeout(READY_TIMEOUT)
        env = {**os.environ, "NOTIFY_SOCKET": str(path)}
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while b"READY=1" not in notify.recv(4096):
                pass
            wall = time.perf_counter() - start
            return wall, cpu_seconds(process.pid)
        finally:
            stop_process(process)


def measure(runs: int) -> list[tuple[str, float, float]]:
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp, kit(Path(tmp)) as config:
        work = Path(tmp)
        commands: list[tuple[str, list[str], bool]] = [
            ("python -c pass (baseline)", [sys.executable, "-c", "pass"], False),
            (
                "import gateway-run's module (its broker, AP and DHCP commands)",
                [sys.executable, "-c", "import gateway.appliance.run"],
                False,
            ),
            (
                "gateway-enabled bridge-serial",
                [str(BIN / "gateway-enabled"), "--config", str(config), "bridge-serial"],
                False,
            ),
            (
                "gateway-run coordinator, to READY=1",
                [str(BIN / "gateway-run"), "--config", str(config), "coordinator"],
                True,
            ),
        ]
        for label, argv, notifies in commands:
            samples = [run_to_ready(argv, work) if notifies else run_to_exit(argv)
                       for _ in range(runs)]  # fmt: skip
            rows.append((label, median([w for w, _ in samples]), median([c for _, c in samples])))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    print(" ".join(f"{k}={v}" for k, v in machine().items()))
    rows = measure(args.runs)
    base = rows[0][2]
    table = [
        (label, f"{cpu * 1000:.0f}", f"{wall * 1000:.0f}", f"{cpu / base:.1f}x")
        for label, wall, cpu in rows
    ]
    print(markdown_table(("process", "CPU ms", "wall ms", "CPU / interpreter's"), table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
