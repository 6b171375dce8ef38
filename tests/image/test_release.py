"""The release files image/build.sh writes beside the image: the ``.img.xz`` a user downloads
and flashes, its SHA-256 in sha256sum's format, and the build report."""

from __future__ import annotations

import hashlib
import lzma
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.image, pytest.mark.timeout(1800)]

CHUNK = 1 << 20


def sha256_of(chunks: object) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:  # type: ignore[attr-defined]
        digest.update(chunk)
    return digest.hexdigest()


def test_the_xz_release_is_the_image_and_its_checksum_verifies(appliance_image: Path) -> None:
    release = appliance_image.with_name(appliance_image.name + ".xz")
    checked = subprocess.run(
        ["sha256sum", "--check", "--strict", f"{release.name}.sha256"],
        cwd=release.parent, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with lzma.open(release) as unpacked:
        from_release = sha256_of(iter(lambda: unpacked.read(CHUNK), b""))
    with appliance_image.open("rb") as image:
        assert from_release == sha256_of(iter(lambda: image.read(CHUNK), b""))


def test_the_build_report_lists_every_package_with_its_version(appliance_image: Path) -> None:
    report = appliance_image.with_name("build-report.txt").read_text(encoding="utf-8")
    debian = re.search(r"^Debian packages \((\d+)\):\n((?:  .+\n)+)", report, re.M)
    assert debian, report[:2000]
    listed = debian.group(2).splitlines()
    assert len(listed) == int(debian.group(1)) > 100
    assert all(re.fullmatch(r"  \S+ \S+", line) for line in listed), listed[:5]
    assert any(re.match(r"  mosquitto(:arm64)? 2\.", line) for line in listed), listed
    python = re.search(
        r"^Python packages in /opt/msgflo-gateway \((\d+)\):\n((?:  .+\n)+)", report, re.M
    )
    assert python, report[-2000:]
    wheels = python.group(2).splitlines()
    assert len(wheels) == int(python.group(1))
    assert any(line.startswith("  msgflo-gateway==") for line in wheels), wheels
