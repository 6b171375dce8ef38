"""The image's Python wheels, pinned with their hashes: image/wheels.lock.

    .venv/bin/python image/wheels.py lock     write image/wheels.lock (needs PyPI)
    .venv/bin/python image/wheels.py check    exit 1 if it no longer matches .venv (no network)

The gateway in the image runs on exactly the Python packages its tests ran with: the versions
installed in the dev venv (.venv, made by ./bootstrap.sh). Which packages those are is the
requirement closure of ``msgflo-gateway[ble]``: the gateway's own requirements are read from
pyproject.toml (what image/build.sh builds its wheel from, even before the venv is reinstalled),
everything below them from the installed distributions' metadata (importlib.metadata). Markers
are evaluated for the image, not for the machine running this: Linux on aarch64, Debian
bookworm's CPython 3.11 (so ``dbus-fast; sys_platform == "linux"`` is in, ``pyobjc; sys_platform
== "darwin"`` out, and ``typing-extensions; python_version < "3.13"`` in), extras only where a
requirement names them.

Three kinds of package in that closure are not locked:

- **Debian's** (FROM_DEBIAN: PyYAML and cryptography, python3-yaml and python3-cryptography in
  image/packages.list; the image's venv sees them with --system-site-packages). Their own
  requirements are not followed either: cffi and pycparser come with python3-cryptography. A
  package that something else needs as well is locked through that other path. setuptools
  (colorzero names it, never imports it) is Debian's too: ``python3 -m venv`` puts the one of
  python3-setuptools-whl into the image's venv, which meets the requirement, and customize.sh
  removes it after the install; in .venv it is whatever the host Python's ensurepip bundled,
  which would tie the lock to the developer's Python build.
- **Theengs Decoder**: PyPI has no aarch64 wheel of it; image/decoder-wheel.sh builds one.
  Its requirements are followed (they come from PyPI like the rest).
- **The gateway itself**, built from the repository by image/build.sh.

``lock`` downloads each pinned ``name==version`` as pip would for the image (``--only-binary
:all: --no-deps`` for the manylinux aarch64 platforms of PLATFORMS, CPython 3.11; the
``py3-none-any`` wheel for pure-Python packages), hashes the files (SHA-256) and writes
image/wheels.lock in pip's requirements format, sorted. image/build.sh then runs ``check``
(a dependency bumped in pyproject.toml or .venv without locking again fails the build, and
tests/image/test_wheels_lock.py fails the suite) and fetches the wheels with ``pip download
--require-hashes -r image/wheels.lock``: a wheel that is not byte for byte the one locked (a
replaced upload, a compromised mirror) stops the build, and two builds a month apart install
the same code. To update: install the new versions into .venv (./bootstrap.sh setup), run the
tests, run ``lock``, and commit image/wheels.lock with the change that needed it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import subprocess
import sys
import tempfile
import tomllib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOCK = HERE / "wheels.lock"
ROOT = "msgflo-gateway[ble]"

# The image: Debian bookworm's python3 (3.11.2) on arm64. Every marker variable is given, so
# nothing of the machine running this leaks into the result.
TARGET: Mapping[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "sys_platform": "linux",
}
# image/packages.list's python3-yaml and python3-cryptography (with python3-cffi-backend), and
# the setuptools python3 -m venv installs (python3-setuptools-whl).
FROM_DEBIAN = frozenset(canonicalize_name(n) for n in ("PyYAML", "cryptography", "setuptools"))
# Built by image/build.sh: the gateway from the repository, Theengs Decoder from its source.
BUILT_HERE = frozenset({canonicalize_name("msgflo-gateway"), canonicalize_name("TheengsDecoder")})
# manylinux_2_34: lgpio's only aarch64 wheels (the GPIO bridge; bookworm has glibc 2.36).
# image/build.sh passes the same list to pip download.
PLATFORMS = (
    "manylinux2014_aarch64",
    "manylinux_2_17_aarch64",
    "manylinux_2_28_aarch64",
    "manylinux_2_34_aarch64",
)
PIP_TARGET = ("--python-version", "3.11", "--implementation", "cp")

HEADER = """\
# The Python wheels of the SD-card image (aarch64, CPython 3.11), pinned with their SHA-256.
# Made by `.venv/bin/python image/wheels.py lock` from the versions installed in .venv: the
# closure of msgflo-gateway[ble] without Debian's PyYAML, cryptography and setuptools, Theengs
# Decoder and the gateway itself (image/wheels.py says why). Do not edit: after a dependency
# changes in pyproject.toml or .venv, run that command again and commit this file.
# image/build.sh fetches these with pip download --require-hashes and fails while this file
# is stale (`image/wheels.py check`), and so does tests/image/test_wheels_lock.py.
"""


class WheelsError(Exception):
    """One line that says what is wrong and where it came from."""


@dataclass(frozen=True)
class Dist:
    """An installed distribution as far as the closure needs it."""

    name: str  # canonical (packaging.utils.canonicalize_name)
    version: str
    requires: tuple[Requirement, ...]


@dataclass(frozen=True)
class Locked:
    """One entry of wheels.lock: ``name==version`` and the hashes of its files."""

    name: str  # canonical (packaging.utils.canonicalize_name)
    version: str
    hashes: tuple[str, ...]


# --- the closure (pure) ------------------------------------------------------------------------


def applies(requirement: Requirement, extras: frozenset[str], env: Mapping[str, str]) -> bool:
    """Whether a requirement holds on the target, for a distribution asked for with extras."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**env, "extra": extra}) for extra in {"", *extras})


def resolve(requirement: Requirement, parent: str, dists: Mapping[str, Dist]) -> Dist:
    """The installed distribution that meets a requirement; what tested code would import."""
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    wanted = f"{requirement.name}{extras}{requirement.specifier}"  # without its marker
    where = f"{parent} requires {wanted}" if parent else wanted
    dist = dists.get(canonicalize_name(requirement.name))
    if dist is None:
        raise WheelsError(f"{where}, which .venv does not have: ./bootstrap.sh setup")
    try:
        met = requirement.specifier.contains(Version(dist.version), prereleases=True)
    except InvalidVersion as error:
        raise WheelsError(f"{dist.name}: {error}") from None
    if not met:
        raise WheelsError(f"{where}, .venv has {dist.version}: ./bootstrap.sh setup")
    return dist


def closure(
    root: str, dists: Mapping[str, Dist], env: Mapping[str, str] = TARGET
) -> dict[str, str]:
    """name -> installed version of everything ``root`` needs on the target, minus what the
    image takes from Debian (not followed further) and what it builds itself (followed)."""
    pending: deque[tuple[Requirement, str]] = deque([(Requirement(root), "")])
    expanded: set[tuple[str, frozenset[str]]] = set()
    found: dict[str, str] = {}
    # Bounded: each (name, extras) pair is expanded once, and there are finitely many.
    while pending:
        requirement, parent = pending.popleft()
        if canonicalize_name(requirement.name) in FROM_DEBIAN:
            continue
        dist = resolve(requirement, parent, dists)
        extras = frozenset(canonicalize_name(extra) for extra in requirement.extras)
        if (dist.name, extras) in expanded:
            continue
        expanded.add((dist.name, extras))
        if dist.name not in BUILT_HERE:
            found[dist.name] = dist.version
        pending.extend((r, dist.name) for r in dist.requires if applies(r, extras, env))
    return dict(sorted(found.items()))


def differences(locked: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """One line per package whose lock entry is missing, extra or at another version."""
    lines = []
    for name in sorted(locked.keys() | wanted.keys()):
        have, want = locked.get(name), wanted.get(name)
        if have is None:
            lines.append(f"{name}=={want}: in .venv's closure, not in wheels.lock")
        elif want is None:
            lines.append(f"{name}=={have}: in wheels.lock, no longer in .venv's closure")
        elif Version(have) != Version(want):
            lines.append(f"{name}: wheels.lock has {have}, .venv has {want}")
    return lines


# --- wheels.lock (pure) ------------------------------------------------------------------------


def render_lock(entries: Iterable[Locked]) -> str:
    """pip's requirements format: ``name==version \\`` and one ``--hash`` line per file."""
    blocks = []
    for entry in sorted(entries, key=lambda e: e.name):
        hashes = [f"    --hash=sha256:{digest}" for digest in sorted(entry.hashes)]
        blocks.append(" \\\n".join([f"{entry.name}=={entry.version}", *hashes]))
    return HEADER + "".join(f"{block}\n" for block in blocks)


def parse_lock(text: str, source: str = "wheels.lock") -> dict[str, Locked]:
    """The entries of a lock file that render_lock wrote (comments, continuations)."""
    logical = text.replace("\\\n", " ").splitlines()
    entries: dict[str, Locked] = {}
    for number, line in enumerate(logical, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        entry = parse_entry(words, f"{source}: entry {number}")
        if entry.name in entries:
            raise WheelsError(f"{source}: {entry.name} twice")
        entries[entry.name] = entry
    return entries


def parse_entry(words: Sequence[str], where: str) -> Locked:
    name, sep, version = words[0].partition("==")
    hashes = tuple(w.removeprefix("--hash=sha256:") for w in words[1:])
    if not sep or not name or not version:
        raise WheelsError(f"{where}: {words[0]!r} is not name==version")
    if not hashes or any(not w.startswith("--hash=sha256:") for w in words[1:]):
        raise WheelsError(f"{where}: {name} needs --hash=sha256:... and nothing else")
    return Locked(canonicalize_name(name), version, hashes)


# --- I/O ----------------------------------------------------------------------------------------


def installed(path: list[str] | None = None) -> dict[str, Dist]:
    """The distributions importlib.metadata finds on ``path`` (default sys.path); the first of
    a name wins, as it does for imports."""
    found: dict[str, Dist] = {}
    dists = importlib.metadata.distributions(path=path if path is not None else sys.path)
    for dist in dists:
        name = canonicalize_name(dist.metadata["Name"])
        if name not in found:
            found[name] = Dist(name, dist.version, requirements(dist.requires or [], name))
    return found


def requirements(lines: Iterable[str], source: str) -> tuple[Requirement, ...]:
    try:
        return tuple(Requirement(line) for line in lines)
    except InvalidRequirement as error:
        raise WheelsError(f"{source}: {error}") from None


def project(pyproject: Path) -> Dist:
    """The gateway as pyproject.toml declares it (extras as ``extra == "..."`` markers)."""
    try:
        table = tomllib.loads(read(pyproject))["project"]
    except (tomllib.TOMLDecodeError, KeyError) as error:
        raise WheelsError(f"{pyproject}: no [project] table: {error}") from None
    name = canonicalize_name(table["name"])
    requires = list(requirements(table.get("dependencies", []), str(pyproject)))
    for extra, lines in table.get("optional-dependencies", {}).items():
        for requirement in requirements(lines, f"{pyproject}: {extra}"):
            condition = f'extra == "{extra}"'
            marker = requirement.marker
            try:
                requirement.marker = Marker(f"({marker}) and {condition}" if marker else condition)
            except InvalidMarker as error:
                raise WheelsError(f"{pyproject}: {extra}: {error}") from None
            requires.append(requirement)
    return Dist(name, str(table["version"]), tuple(requires))


def gateway_closure(pyproject: Path = REPO / "pyproject.toml") -> dict[str, str]:
    """The packages the image needs from PyPI, at .venv's versions."""
    gateway = project(pyproject)
    return closure(ROOT, {**installed(), gateway.name: gateway})


def download(pins: Mapping[str, str], dest: Path) -> None:
    """pip download, as image/build.sh does it (but without hashes: they are being made)."""
    platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest)]
    command += ["--only-binary=:all:", "--no-deps", *platforms, *PIP_TARGET]
    command += [f"{name}=={version}" for name, version in pins.items()]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise WheelsError(f"pip download failed:\n{result.stderr.strip()}")


def hashed(pins: Mapping[str, str], directory: Path) -> list[Locked]:
    """One entry per pin with the SHA-256 of its file in ``directory``; every file accounted."""
    digests: dict[str, list[str]] = {name: [] for name in pins}
    for wheel in sorted(directory.iterdir()):
        try:
            name, version, _, _ = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename as error:
            raise WheelsError(f"pip download left {wheel.name}: {error}") from None
        if name not in pins or version != Version(pins[name]):
            raise WheelsError(f"pip download left {wheel.name}, which is not pinned")
        digests[name].append(hashlib.sha256(wheel.read_bytes()).hexdigest())
    missing = sorted(name for name, found in digests.items() if not found)
    if missing:
        raise WheelsError(f"no wheel downloaded for {', '.join(missing)}")
    return [Locked(canonicalize_name(n), pins[n], tuple(d)) for n, d in digests.items()]


def lock(path: Path) -> int:
    pins = gateway_closure()
    with tempfile.TemporaryDirectory(prefix="msgflo-wheels.") as temp:
        download(pins, Path(temp))
        entries = hashed(pins, Path(temp))
    path.write_text(render_lock(entries), encoding="utf-8")
    print(f"{path}: {len(entries)} wheels", file=sys.stderr)
    return 0


def check(path: Path) -> int:
    entries = parse_lock(read(path), path.name).values()
    locked: dict[str, str] = {entry.name: entry.version for entry in entries}
    lines = differences(locked, gateway_closure())
    for line in lines:
        print(line, file=sys.stderr)
    return 1 if lines else 0


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise WheelsError(f"{path}: {error.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=("lock", "check"))
    parser.add_argument("--lock", type=Path, default=LOCK, help="default: image/wheels.lock")
    args = parser.parse_args(argv)
    try:
        return lock(args.lock) if args.command == "lock" else check(args.lock)
    except (WheelsError, OSError) as error:
        print(f"image/wheels.py: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
