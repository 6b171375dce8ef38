"""Password hashes in Mosquitto 2.0's format: checked by the real broker and mosquitto_passwd."""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.appliance.passwd import (
    hash_password,
    parse_password_file,
    password_file,
    verify_password,
)
from gateway.mosquitto import find_tool
from tests.appliance.conftest import Broker, Client, appliance_config


def test_format() -> None:
    hashed = hash_password("pw", salt=bytes(12))
    kind, iterations, salt, digest = hashed.split("$")[1:]
    assert (kind, iterations, salt) == ("7", "101", "AAAAAAAAAAAAAAAA")
    assert len(digest) == 88 and digest.endswith("==")  # 64 bytes, padded base64


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_round_trip(password: str) -> None:
    hashed = hash_password(password)
    assert verify_password(password, hashed)
    assert not verify_password(password + "x", hashed)


def test_salts_differ() -> None:
    assert hash_password("same") != hash_password("same")


def test_garbage_does_not_verify() -> None:
    for bad in ("", "$7$101$!!$!!", "$7$x$AA==$AA==", "$5$a$b", "plain"):
        assert not verify_password("pw", bad)


def test_files_made_by_mosquitto_passwd_verify(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(
        [find_tool("mosquitto_passwd"), "-c", "-b", str(path), "alice", "s3cret:ä"],
        check=True,
        capture_output=True,
    )
    entries = parse_password_file(path.read_text())
    assert list(entries) == ["alice"]
    assert entries["alice"].startswith("$7$101$")
    assert verify_password("s3cret:ä", entries["alice"])
    assert not verify_password("s3cret", entries["alice"])


def test_password_file_lines_look_like_mosquitto_passwd_output(tmp_path: Path) -> None:
    ours = password_file({"bob": "x", "alice": "y"})
    path = tmp_path / "passwd"
    subprocess.run([find_tool("mosquitto_passwd"), "-c", "-b", str(path), "alice", "y"], check=True)
    theirs = path.read_text()
    assert [len(part) for part in ours.splitlines()[0].split("$")] == [
        len(part) for part in theirs.splitlines()[0].split("$")
    ]
    assert list(parse_password_file(ours)) == ["alice", "bob"]


def test_unusable_user_names_are_refused() -> None:
    for name in ("", "a:b", "a b"):
        with pytest.raises(ValueError):
            password_file({name: "pw"})


@pytest.mark.integration
def test_the_real_broker_accepts_our_hash_and_refuses_a_wrong_password(
    tmp_path: Path, clients: list[Client]
) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(password_file({"alice": "our password:ä", "bob": "other"}))
    broker = Broker(appliance_config(tmp_path), tmp_path)
    port = broker.config.broker.port
    text = (
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\n"
        f"allow_anonymous false\npassword_file {passwd}\n"
    )
    broker.start(text=text)
    try:
        for user, password, accepted in [
            ("alice", "our password:ä", True),
            ("bob", "other", True),
            ("alice", "our password", False),
            ("alice", "other", False),
        ]:
            client = Client("127.0.0.1", port, user, password)
            clients.append(client)
            assert client.connect() is accepted, (user, password)
    finally:
        broker.stop()
