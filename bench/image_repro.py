#!/usr/bin/env python3
"""Is the SD-card image reproducible? Two builds of the same commit, compared byte for byte.

Runs ``image/build.sh`` twice (as root, one after the other, each into its own directory, with
the base root filesystem from the build cache as any rebuild has it) and prints, side by side:
each build's time, the SHA-256 of ``msgflo-gateway.img`` and ``msgflo-gateway.img.xz``, and,
when the images differ, which partitions differ and how many bytes in each, so the step that
leaks time or randomness can be found (docs/appliance.md, "Reproducible").

    sudo .venv/bin/python -m bench.image_repro [--keep DIR]

A measurement, never a test assertion: the exit status is 0 when both images are identical,
1 when they differ, 2 when a build failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, markdown_table

BUILD = ROOT / "image" / "build.sh"
IMAGE = "msgflo-gateway.img"
CHUNK = 1 << 20
BLOCK = 4096


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build(out: Path) -> float:
    """Seconds for one ``image/build.sh OUT``; raises on failure with the log's tail."""
    started = time.monotonic()
    done = subprocess.run(
        [str(BUILD), str(out)], capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"image/build.sh {out} failed:\n{done.stderr[-4000:]}")
    return time.monotonic() - started


def partitions(image: Path) -> list[tuple[int, int]]:
    """(start, size) in bytes of each partition, from the MBR."""
    table = json.loads(
        subprocess.run(["sfdisk", "-J", str(image)], capture_output=True, check=True).stdout
    )
    return [(p["start"] * 512, p["size"] * 512) for p in table["partitiontable"]["partitions"]]


def differing_blocks(a: Path, b: Path, start: int, size: int) -> int:
    """How many 4 KiB blocks differ between ``a`` and ``b`` in [start, start + size)."""
    count = 0
    with a.open("rb") as fa, b.open("rb") as fb:
        fa.seek(start)
        fb.seek(start)
        for _ in range(0, size, CHUNK):
            ca, cb = fa.read(CHUNK), fb.read(CHUNK)
            if ca != cb:
                count += sum(ca[i : i + BLOCK] != cb[i : i + BLOCK] for i in range(0, CHUNK, BLOCK))
    return count


def compare(first: Path, second: Path) -> list[list[str]]:
    rows = []
    names = ("boot (FAT32)", "root (ext4)", "data (ext4)")
    table_a, table_b = partitions(first), partitions(second)
    if table_a != table_b:
        return [["partition table", f"{table_a} vs {table_b}"]]
    rows.append(["MBR and gaps", str(differing_blocks(first, second, 0, table_a[0][0]))])
    for name, (start, size) in zip(names, table_a, strict=False):
        rows.append([name, str(differing_blocks(first, second, start, size))])
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--keep", type=Path, help="build into DIR/1 and DIR/2 and keep them")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="image-repro-", dir="/var/tmp") as tmp:
        where = args.keep or Path(tmp)
        outs = [where / "1", where / "2"]
        try:
            seconds = [build(out) for out in outs]
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 2
        files = [IMAGE, f"{IMAGE}.xz"]
        sums = {name: [sha256(out / name) for out in outs] for name in files}
        rows = [["build time", f"{seconds[0]:.0f} s", f"{seconds[1]:.0f} s", ""]]
        for name in files:
            a, b = sums[name]
            rows.append([name, a[:16], b[:16], "identical" if a == b else "DIFFERENT"])
        print(markdown_table(["", "build 1", "build 2", ""], rows))
        identical = all(a == b for a, b in sums.values())
        if not identical:
            print()
            parts = compare(outs[0] / IMAGE, outs[1] / IMAGE)
            print(markdown_table(["part", "4 KiB blocks differing"], parts))
        print(f"\nreproducible: {'yes' if identical else 'no'}")
        return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
