#!/usr/bin/env python3
"""The appliance image (issue 7): boot-to-ready seconds under QEMU, next to the OS's own boot.

Boots the SD-card image (``--image``, default image/out/msgflo-gateway.img; build it with
``sudo image/build.sh``) under ``qemu-system-aarch64 -M virt`` (TCG, as the boot test does),
``--boots`` times on one copy: the first boot (first-boot provisioning runs), then boots after a
power-button shutdown. For each boot it reports, from qemu's start:

- ``os``: the login prompt on the serial console (getty started: the OS itself is up), the
  baseline measured in the same boot;
- ``ready``: the broker accepts the kit's admin credentials and the runtime protocol answers
  with the secret (the coordinator is up), through the forwarded loopback ports;

and ``ready / os``. Seconds under TCG on this machine, not a Pi's: the ratio is the figure to
compare. The build report (sizes, build times) is printed when it sits next to the image.

    .venv/bin/python -m bench.appliance [--image PATH] [--boots 2] [--json FILE]

No figure is asserted; see bench/RESULTS.md for recorded runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT as REPO
from tests.image.qemu import sparse_copy
from tests.image.test_boot import Kit, wait_ready


def boot_once(kit: Kit, name: str) -> dict[str, float]:
    guest = kit.boot(name, selftest=False)
    guest.wait_console(r"login:", 600)
    os_up = time.monotonic() - guest.started_at
    ready = wait_ready(kit, name)
    return {"os": os_up, "ready": ready, "ratio": ready / os_up}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", type=Path, default=REPO / "image" / "out" / "msgflo-gateway.img")
    p.add_argument("--boots", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if not args.image.exists():
        print(f"{args.image}: no image; build one with: sudo image/build.sh", file=sys.stderr)
        return 2
    report = args.image.parent / "build-report.txt"
    if report.exists():
        print(report.read_text(encoding="utf-8"))
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-appliance-") as tmp:
        work = Path(tmp)
        image = work / "kit.img"
        sparse_copy(args.image, image)
        kit = Kit(image, work)
        for index in range(args.boots):
            name = "first" if index == 0 else f"boot-{index + 1}"
            try:
                results.append(boot_once(kit, name))
            finally:
                if index < args.boots - 1:
                    kit.running.poweroff()
                else:
                    kit.running.stop()
            row = results[-1]
            print(
                f"{name:>8}: OS up (login prompt) {row['os']:6.1f} s   "
                f"gateway ready {row['ready']:6.1f} s   ready/OS {row['ratio']:.2f}x",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
