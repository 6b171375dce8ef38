"""The data partition full: a graph save, the registry file or a secret write fails with one
line naming the file, and the previous file stays whole. A real filesystem that fills up: a
small tmpfs mounted for the test (root only, as the appliance's services and CI run)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.common.atomic import write_atomic
from gateway.coordinator.registry import Registry
from gateway.coordinator.registry_file import encode_registry, write_registry
from gateway.coordinator.service import save_service_graph
from gateway.errors import GatewayError
from gateway.graph import load_graph, parse_fbp
from gateway.participant.definition import define

SIZE = 64 * 1024


@pytest.fixture
def partition(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "data"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def fill(directory: Path) -> None:
    """Fill the filesystem up to its last byte."""
    with contextlib.suppress(OSError), (directory / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
            os.fsync(filler.fileno())


def big_graph() -> str:
    return "\n".join(f"n{i}(Repeat) OUT -> IN n{i + 1}(Repeat)" for i in range(2000)) + "\n"


def registry_of(count: int) -> bytes:
    registry = Registry()
    for i in range(count):
        registry.observe(define(f"r{i}", "C", outports=["out"], participant_id=f"r{i}-1"), now=0)
    return encode_registry(registry)


def attempts(partition: Path) -> list[tuple[str, bytes, Callable[[Path], object]]]:
    graph = parse_fbp(big_graph(), file="big.fbp")
    return [
        ("graph.fbp", b"a(Repeat) OUT -> IN b(Repeat)\n", lambda p: save_service_graph(graph, p)),
        ("participants.json", registry_of(1), lambda p: write_registry(p, registry_of(900))),
        ("secrets.json", b'{"old": true}', lambda p: write_atomic(p, b"x" * SIZE)),
    ]


def test_a_full_partition_fails_each_write_in_one_line_and_keeps_the_old_file(
    partition: Path,
) -> None:
    files = attempts(partition)
    for name, old, _ in files:
        (partition / name).write_bytes(old)
    fill(partition)
    for name, old, write in files:
        path = partition / name
        with pytest.raises(GatewayError) as caught:
            write(path)
        message = str(caught.value)
        assert "No space left on device" in message and name in message, message
        assert "\n" not in message
        assert path.read_bytes() == old  # the previous file, whole
    leftovers = sorted(p.name for p in partition.iterdir())
    assert leftovers == sorted(["filler", *(name for name, _, _ in files)])  # no temp files
    assert load_graph(partition / "graph.fbp").processes.keys() == {"a", "b"}
