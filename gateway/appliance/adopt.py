"""Adopting a device on the appliance: the coordinator asks, root writes.

The coordinator's user may neither write ``gateway.yaml`` nor restart a bridge. So on the
appliance (``gateway-run coordinator --adopt-by-request``) the dashboard's adopt checks the
request as it does elsewhere, then adds it to :data:`REQUESTS` in the coordinator's own state
directory: a JSON list of ``{"bridge": "serial" | "ble" | ..., "id": ..., "role": ...}``. Its
existence starts ``msgflo-adopt.service`` (``msgflo-adopt.path``, ``PathExists=``), which runs
``gateway-run adopt``: :func:`apply_requests` applies each through
:func:`gateway.config.edit.adopt`, the function the dashboard uses off the appliance (checked
again: the bridge must be one that adopts devices and the id one of its ids), logs one line per
adoption or refusal, and removes the file; then ``msgflo-bridge@<bridge>.service`` is restarted
for each bridge that got a device. The bridge names come from the requests, which the less
privileged coordinator writes: only the names of adoptions :mod:`~gateway.config.edit` accepted
(a fixed set) ever reach a unit name.

Both sides hold an exclusive ``flock`` on the state directory while they read and change the
file, so a request added while the root service runs is neither lost nor applied twice; it
makes the file exist again, and ``PathExists=`` starts the service again once it ends.

The request file itself (:func:`add_request`, :func:`handle_requests`, :func:`pending_requests`)
is not about adoption: the dashboard's device credentials
(:mod:`gateway.appliance.device_requests`) go to root the same way, in a file of their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gateway.common.atomic import fsync_directory, write_atomic
from gateway.config import edit
from gateway.errors import FileWriteError, GatewayError

log = logging.getLogger(__name__)

# Relative to data_dir: the coordinator's state directory (StateDirectory= of its unit).
REQUESTS = Path("coordinator") / "adopt.json"
# Readable by others: the root service reads it without CAP_DAC_OVERRIDE.
REQUESTS_MODE = 0o644

Adopt = Callable[[Path, str, str, str], None]  # (config, bridge, device id, role)

BRIDGE_UNIT = "msgflo-bridge@{bridge}.service"  # services/systemd/msgflo-bridge@.service


def bridge_unit(bridge: str) -> str:
    return BRIDGE_UNIT.format(bridge=bridge)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on the directory of ``path``, between the coordinator and root."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def request_adoption(path: Path, bridge: str, device_id: str, role: str) -> None:
    """Add a request to the file at ``path`` (a newer one for the same device replaces it)."""
    add_request(path, {"bridge": bridge, "id": device_id, "role": role}, ("bridge", "id"))


def apply_requests(path: Path, config: Path, adopt: Adopt = edit.adopt) -> dict[str, int]:
    """Apply every request in ``path`` to the config file ``config``, then remove the file;
    the number of devices adopted by bridge (only bridges with one). One log line per
    adoption, one per refused request."""
    adopted: dict[str, int] = {}

    def handle(request: Any) -> None:
        bridge = _apply(request, config, adopt)
        if bridge is not None:
            adopted[bridge] = adopted.get(bridge, 0) + 1

    handle_requests(path, handle, "adoption requests")
    return adopted


# --- a file of requests, from a less privileged writer to root ----------------------------


def add_request(path: Path, request: dict[str, str], same: tuple[str, ...]) -> None:
    """Add ``request`` to the JSON list at ``path`` (made if missing); a pending one with the
    same values of the keys ``same`` is replaced by it. An unreadable file is replaced."""
    with locked(path):
        try:
            pending = _requests(path)
        except ValueError as exc:
            log.warning("%s: dropping unreadable requests: %s", path, exc)
            pending = []
        key = tuple(request.get(k) for k in same)
        pending = [r for r in pending if not isinstance(r, dict) or
                   tuple(r.get(k) for k in same) != key]  # fmt: skip
        pending.append(request)
        write_atomic(path, json.dumps(pending, indent=1) + "\n", mode=REQUESTS_MODE)


def handle_requests(path: Path, handle: Callable[[Any], None], what: str) -> None:
    """Call ``handle`` with each request of ``path`` in order, then remove the file, all under
    the lock (a request added meanwhile waits, then makes the file anew). ``handle`` gets the
    JSON as written: it checks each and logs one line per request."""
    if not path.exists():
        return
    with locked(path):
        try:
            pending = _requests(path)
        except ValueError as exc:
            log.error("%s: refused, not a list of %s: %s", path, what, exc)
            pending = []
        for request in pending:
            handle(request)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise FileWriteError(path, exc.strerror or str(exc), "cannot remove") from exc
        fsync_directory(path.parent)


def pending_requests(path: Path) -> list[Any]:
    """The requests at ``path`` not handled yet (none if it cannot be read). Without the
    lock: the file is only ever replaced whole."""
    try:
        return _requests(path)
    except ValueError:
        return []


def _apply(request: Any, config: Path, adopt: Adopt) -> str | None:
    """The bridge that got the device, or None (refused, one log line)."""
    what = json.dumps(request)[:200]
    try:
        if not isinstance(request, dict):
            raise GatewayError("not an adoption request (a JSON object)")
        bridge, device_id, role = (request.get(key) for key in ("bridge", "id", "role"))
        if not isinstance(bridge, str) or not isinstance(device_id, str):
            raise GatewayError("'bridge' and 'id' must be strings")
        if not isinstance(role, str):
            raise GatewayError("'role' must be a string")
        adopt(config, bridge, device_id, role)
    except GatewayError as exc:
        log.error("adoption refused: %s: %s", what, str(exc).replace("\n", "; "))
        return None
    log.info("%s device %s adopted as %r in %s", bridge, device_id, role, config)
    return bridge


def _requests(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, list):
        raise ValueError("not a JSON list")
    return data
