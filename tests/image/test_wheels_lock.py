"""image/wheels.py and the committed image/wheels.lock: no network.

The lock must name exactly the packages .venv's closure of msgflo-gateway[ble] has, at the same
versions: a dependency bumped in pyproject.toml or .venv without locking again fails here, not
only in the image build. The closure itself is checked on synthetic metadata: fake .dist-info
directories that importlib.metadata reads from a tmp path, as it reads site-packages.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from image import wheels as w

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "image" / "wheels.lock"
FIX = "run `.venv/bin/python image/wheels.py lock` and commit image/wheels.lock"


def test_the_committed_lock_is_the_closure_of_the_venv() -> None:
    locked = {e.name: e.version for e in w.parse_lock(LOCK.read_text(encoding="utf-8")).values()}
    stale = w.differences(locked, w.gateway_closure())
    assert not stale, "image/wheels.lock is stale:\n" + "\n".join(stale) + f"\n{FIX}"


def test_every_lock_entry_has_sha256_hashes_and_the_file_is_as_lock_writes_it() -> None:
    text = LOCK.read_text(encoding="utf-8")
    entries = w.parse_lock(text)
    assert entries
    for entry in entries.values():
        assert entry.hashes, entry.name
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in entry.hashes), entry
    # Sorted, canonical names, the header: hand edits show up as a diff to the generated form.
    assert w.render_lock(entries.values()) == text, FIX


def test_the_lock_leaves_out_what_debian_and_the_build_provide() -> None:
    names = set(w.parse_lock(LOCK.read_text(encoding="utf-8")))
    assert not names & {"pyyaml", "cryptography", "cffi", "pycparser", "setuptools"}
    assert not names & {"theengsdecoder", "msgflo-gateway"}
    # Linux-only dependencies are in, although markers could exclude them elsewhere.
    assert {"dbus-fast", "bluetooth-adapters", "lgpio"} <= names


def test_build_sh_downloads_the_lock_by_hash_for_the_platforms_lock_used() -> None:
    script = (REPO / "image" / "build.sh").read_text(encoding="utf-8")
    body = script[script.index("wheelhouse() {") :]
    body = body[: body.index("\n}\n")]
    assert '"$here/wheels.py" check' in body
    assert '--require-hashes -r "$here/wheels.lock"' in body
    assert tuple(re.findall(r"--platform (\S+)", body)) == w.PLATFORMS
    assert "--python-version 3.11 --implementation cp" in body
    assert " ".join(w.PIP_TARGET) == "--python-version 3.11 --implementation cp"


# --- the closure on synthetic metadata ----------------------------------------------------------

FAKE = {
    "msgflo-gateway": [
        "lib-a>=1",
        'linux-only; sys_platform == "linux"',
        'arm-only; platform_machine == "aarch64"',
        'x86-only; platform_machine == "x86_64"',
        'darwin-only; sys_platform == "darwin"',
        'old-python; python_version < "3.11"',
        "PyYAML>=6",
        "cryptography>=38",
        'TheengsDecoder>=0.9; extra == "ble"',
        'pytest; extra == "test"',
    ],
    "lib-a": ["Lib_B[fast]"],
    "lib-b": ['lib-c; extra == "fast"', 'lib-d; extra == "slow"'],
    "lib-c": ["lib-a"],  # a cycle
    "theengsdecoder": ["decoder-dep"],
    "cryptography": ["cffi>=1"],
    "cffi": ["pycparser"],
}
INSTALLED = [
    *FAKE,
    *("linux-only", "arm-only", "x86-only", "darwin-only", "old-python", "pyyaml"),
    *("lib-d", "decoder-dep", "pytest", "pycparser"),
]


def fake_site(tmp_path: Path, requires: dict[str, list[str]], version: str = "1.0") -> list[str]:
    for name in INSTALLED:
        info = tmp_path / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        lines = [f"Requires-Dist: {r}" for r in requires.get(name, [])]
        metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *lines]
        (info / "METADATA").write_text("\n".join(metadata) + "\n", encoding="utf-8")
    return [str(tmp_path)]


def test_the_closure_follows_requirements_and_extras_for_aarch64_linux(tmp_path: Path) -> None:
    dists = w.installed(fake_site(tmp_path, FAKE))
    found = w.closure("msgflo-gateway[ble]", dists)
    assert found == {
        "arm-only": "1.0",
        "decoder-dep": "1.0",  # Theengs Decoder is built here, what it needs is not
        "lib-a": "1.0",
        "lib-b": "1.0",
        "lib-c": "1.0",  # lib-b's extra "fast", which lib-a asks for
        "linux-only": "1.0",
    }  # not PyYAML, cryptography, nor cffi and pycparser below it: Debian's


def test_extras_are_followed_only_when_requested(tmp_path: Path) -> None:
    dists = w.installed(fake_site(tmp_path, FAKE))
    assert "decoder-dep" not in w.closure("msgflo-gateway", dists)
    assert "pytest" in w.closure("msgflo-gateway[test]", dists)


def test_markers_are_evaluated_for_the_target_not_the_host(tmp_path: Path) -> None:
    dists = w.installed(fake_site(tmp_path, FAKE))
    x86 = {**w.TARGET, "platform_machine": "x86_64"}
    found = w.closure("msgflo-gateway", dists, x86)
    assert "x86-only" in found
    assert "arm-only" not in found


def test_a_missing_or_too_old_dependency_names_who_requires_it(tmp_path: Path) -> None:
    missing = w.installed(fake_site(tmp_path / "a", {**FAKE, "lib-c": ["lib-z"]}))
    with pytest.raises(w.WheelsError, match=r"^lib-c requires lib-z, which .venv does not have"):
        w.closure("msgflo-gateway", missing)
    old = w.installed(fake_site(tmp_path / "b", {**FAKE, "lib-a": ["lib-b>=2"]}))
    with pytest.raises(w.WheelsError, match=r"^lib-a requires lib-b>=2, .venv has 1.0"):
        w.closure("msgflo-gateway", old)


def test_the_gateway_s_requirements_come_from_pyproject(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "msgflo-gateway"\nversion = "0.1.0"\n'
        'dependencies = ["lib-a>=1"]\n'
        "[project.optional-dependencies]\n"
        "ble = ['TheengsDecoder; sys_platform == \"linux\"']\n"
        'test = ["pytest"]\n',
        encoding="utf-8",
    )
    gateway = w.project(pyproject)
    dists = {**w.installed(fake_site(tmp_path / "site", FAKE)), gateway.name: gateway}
    assert set(w.closure("msgflo-gateway[ble]", dists)) == {
        "lib-a",
        "lib-b",
        "lib-c",
        "decoder-dep",
    }


# --- the lock file and the hashes ---------------------------------------------------------------


def test_differences_say_what_is_missing_extra_or_at_another_version() -> None:
    lines = w.differences({"a": "1.0", "b": "2.0", "d": "1"}, {"a": "1.0", "b": "2.1", "c": "3"})
    assert lines == [
        "b: wheels.lock has 2.0, .venv has 2.1",
        "c==3: in .venv's closure, not in wheels.lock",
        "d==1: in wheels.lock, no longer in .venv's closure",
    ]
    assert w.differences({"a": "1.0"}, {"a": "1"}) == []  # the same version


def test_the_lock_round_trips_and_refuses_an_entry_without_hash() -> None:
    entries = [
        w.Locked("foo-bar", "1.0", ("b" * 64, "a" * 64)),
        w.Locked("baz", "2", ("c" * 64,)),
    ]
    text = w.render_lock(entries)
    assert "baz==2 \\\n    --hash=sha256:" + "c" * 64 + "\nfoo-bar==1.0 \\\n" in text
    parsed = w.parse_lock(text)
    assert parsed["foo-bar"].hashes == ("a" * 64, "b" * 64)
    with pytest.raises(w.WheelsError, match="foo needs --hash"):
        w.parse_lock("foo==1.0\n")
    with pytest.raises(w.WheelsError, match="is not name==version"):
        w.parse_lock("foo>=1.0 --hash=sha256:" + "a" * 64 + "\n")


def test_downloaded_wheels_are_hashed_and_every_file_accounted(tmp_path: Path) -> None:
    pins = {"foo-bar": "1.0", "baz": "2.0.post1"}
    files = {
        "foo_bar-1.0-py3-none-any.whl": b"foo",
        "baz-2.0.post1-cp311-cp311-manylinux_2_34_aarch64.whl": b"baz",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    entries = {e.name: e for e in w.hashed(pins, tmp_path)}
    assert entries["foo-bar"].hashes == (hashlib.sha256(b"foo").hexdigest(),)
    assert entries["baz"].version == "2.0.post1"
    (tmp_path / "other-1.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(w.WheelsError, match=r"other-1\.0-py3-none-any\.whl, which is not pinned"):
        w.hashed(pins, tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(w.WheelsError, match="no wheel downloaded for qux"):
        w.hashed({"qux": "1"}, empty)


def test_check_exits_1_with_one_line_per_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = w.parse_lock(LOCK.read_text(encoding="utf-8"))
    first, second, *rest = entries.values()
    stale = [w.Locked(first.name, "0.0.1", first.hashes), *rest]
    lock = tmp_path / "wheels.lock"
    lock.write_text(w.render_lock(stale), encoding="utf-8")
    assert w.main(["check", "--lock", str(lock)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"{first.name}: wheels.lock has 0.0.1, .venv has {first.version}",
        f"{second.name}=={second.version}: in .venv's closure, not in wheels.lock",
    ]
    assert w.main(["check"]) == 0
