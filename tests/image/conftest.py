"""The appliance image for the boot tests: built once per test session with image/build.sh.

``MSGFLO_IMAGE=/path/to/msgflo-gateway.img`` uses an image built before (a developer's loop);
otherwise the image is built here: about 2 minutes with the base root filesystem cached in
/var/cache/msgflo-gateway-image, 6-8 minutes on a fresh machine (CI). Building needs root (a
chroot, device nodes, file owners): without it the boot tests are skipped and say so; every
tool it needs is installed by ./bootstrap.sh, so a missing one fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("qemu-system-aarch64", "mmdebstrap", "mcopy", "mkfs.vfat", "sfdisk", "mkfs.ext4")


@pytest.fixture(scope="session")
def appliance_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("MSGFLO_IMAGE")
    if given:
        return Path(given)
    if os.geteuid() != 0:
        pytest.skip("building the SD-card image needs root (chroot, device nodes, file owners)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"image tools missing (./bootstrap.sh setup installs them): {missing}"
    out = tmp_path_factory.mktemp("image")
    build = subprocess.run(
        [str(REPO / "image" / "build.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=3000,
        check=False,
    )
    assert build.returncode == 0, f"image/build.sh failed:\n{build.stderr[-6000:]}"
    print((out / "build-report.txt").read_text(encoding="utf-8"))
    return out / "msgflo-gateway.img"
