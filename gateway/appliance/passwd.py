"""Mosquitto 2.0 password files, hashed here with hashlib instead of running mosquitto_passwd.

A line is ``user:$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512 with 101 iterations, a
12-byte salt and a 64-byte hash, both in standard base64 with padding. These are the values
mosquitto_passwd 2.0 writes (``src/password_mosq.c``: ``PW_DEFAULT_ITERATIONS 101``,
``SALT_LEN 12``) and that the broker checks. Running mosquitto_passwd instead would put each
password on a command line, where any process can read it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64
_SHA512_PBKDF2 = "7"  # mosquitto's id for PBKDF2-HMAC-SHA512 ("6" is a single salted SHA512)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The ``$7$...`` form of ``password``; a fresh random salt unless one is given."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return f"${_SHA512_PBKDF2}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, hashed: str) -> bool:
    """True if ``hashed`` (a ``$7$`` or ``$6$`` entry as mosquitto writes them) matches."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[1] == _SHA512_PBKDF2:
            salt, expected = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            digest = hashlib.pbkdf2_hmac(
                "sha512", password.encode("utf-8"), salt, int(parts[2]), len(expected)
            )
            return hmac.compare_digest(digest, expected)
        if len(parts) == 4 and parts[1] == "6":
            salt, expected = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            digest = hashlib.sha512(password.encode("utf-8") + salt).digest()
            return hmac.compare_digest(digest, expected)
    except (ValueError, binascii.Error):
        return False
    return False


def password_file(passwords: Mapping[str, str]) -> str:
    """The text of a password file for ``user -> password``, one line per user, sorted."""
    for user in passwords:
        check_username(user)
    return "".join(f"{user}:{hash_password(pw)}\n" for user, pw in sorted(passwords.items()))


def parse_password_file(text: str) -> dict[str, str]:
    """``user -> hash`` from a password file's text (blank lines and ``#`` comments skipped)."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            user, _, hashed = line.partition(":")
            entries[user] = hashed
    return entries


def check_username(user: str) -> None:
    """Refuse names a password or ACL file cannot hold (``:`` separates fields; lines end)."""
    if not user or ":" in user or any(c.isspace() for c in user):
        raise ValueError(f"unusable MQTT user name {user!r}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
