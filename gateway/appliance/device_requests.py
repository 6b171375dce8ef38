"""Device credentials asked for on the dashboard: the coordinator asks, root writes.

On the appliance the dashboard runs in the coordinator's process, as ``msgflo-coordinator``,
which may read the role passwords (``coordinator.json``) but not ``secrets.json`` (the WiFi
passphrase, every user's password): it cannot add a broker user. So, as with adopting a bridge's
device (:mod:`gateway.appliance.adopt`, the same request file code and the same directory
lock), the dashboard adds ``{"action": "add" | "remove" | "show", "role": ...}`` to
:data:`REQUESTS` in the coordinator's state directory (a newer request for the same role
replaces the older). Its existence starts the root ``msgflo-devices.service``
(``msgflo-devices.path``), which runs ``gateway-run devices``: :func:`apply_device_requests`
checks each request again and carries it out with :mod:`gateway.appliance.devices` (the
functions ``gateway-config device`` uses), then removes the file.

What comes back goes to :data:`DOWNLOADS`, a directory root makes in the coordinator's: per
role a ``secrets.h`` (after add and show; removed with the device) and the reason a request
for it failed (one line). Both are root's, mode 0640, group of ``coordinator.json`` (the
coordinator's: ``Owners.as_written``), so the dashboard can offer the file to its signed-in
user and say what went wrong, and cannot change either. The file names are a hash of the role
(a role may hold ``/`` and be 60 000 bytes long).

Off the appliance (``gateway-run coordinator`` run by the owner of the data directory) the
dashboard writes the same request and calls :func:`apply_device_requests` itself: one path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.appliance.adopt import add_request, handle_requests, pending_requests
from gateway.appliance.credentials import Owner, Owners
from gateway.appliance.devices import (
    DeviceError,
    Reload,
    add_device,
    check_role,
    device_secrets,
    remove_device,
    render_secrets_h,
)
from gateway.common.atomic import write_atomic
from gateway.config.model import GatewayConfig
from gateway.errors import ApplianceError, FileWriteError, GatewayError

log = logging.getLogger(__name__)

# Relative to data_dir: in the coordinator's state directory (StateDirectory= of its unit).
REQUESTS = Path("coordinator") / "devices.json"
DOWNLOADS = Path("coordinator") / "devices"
ACTIONS = ("add", "remove", "show")
DOWNLOADS_MODE = 0o750  # root's, the coordinator's group may list and read
FILE_MODE = 0o640


@dataclass(frozen=True)
class Outcome:
    """What root left for the dashboard about one role."""

    secrets_h: str | None  # the sketch's secrets.h, when there is one to download
    problem: str | None  # why the last request for the role failed


def request_device(data_dir: Path, action: str, role: str) -> None:
    """Ask root to ``action`` the device ``role`` (checked here first: a usage error raises
    GatewayError and writes nothing)."""
    if action not in ACTIONS:
        raise GatewayError(f"unknown device action {action!r} ({', '.join(ACTIONS)})")
    check_role(role)
    path = data_dir / REQUESTS
    path.parent.mkdir(parents=True, exist_ok=True)
    add_request(path, {"action": action, "role": role}, ("role",))


def pending(data_dir: Path) -> dict[str, str]:
    """role -> action of the requests root has not carried out yet."""
    found: dict[str, str] = {}
    for request in pending_requests(data_dir / REQUESTS):
        if isinstance(request, dict):
            action, role = request.get("action"), request.get("role")
            if isinstance(action, str) and isinstance(role, str):
                found[role] = action
    return found


def outcome(data_dir: Path, role: str) -> Outcome:
    """The secrets.h and the last problem root left for ``role`` (None where there is none)."""
    directory = data_dir / DOWNLOADS
    return Outcome(_read(directory / _name(role, ".h")), _read(directory / _name(role, ".error")))


def apply_device_requests(
    config: GatewayConfig, reload: Reload, owners: Owners | None = None
) -> int:
    """Carry out every request in ``<data_dir>/`` :data:`REQUESTS`, then remove the file; the
    number done. One log line per request; a failed one leaves its reason for the dashboard."""
    path = config.data_dir / REQUESTS
    if not path.exists():
        return 0
    owners = Owners.as_written(config.data_dir) if owners is None else owners
    downloads = _downloads(config.data_dir / DOWNLOADS, owners.coordinator)
    done = 0

    def handle(request: Any) -> None:
        nonlocal done
        done += _apply(config, request, reload, owners, downloads)

    handle_requests(path, handle, "device requests")
    return done


def _apply(
    config: GatewayConfig, request: Any, reload: Reload, owners: Owners, downloads: _Downloads
) -> int:
    what = str(request)[:200]
    if not isinstance(request, Mapping) or request.get("action") not in ACTIONS:
        log.error("device request refused: %s: not {'action': add|remove|show, 'role': ...}", what)
        return 0
    action, role = request["action"], request.get("role")
    try:
        if not isinstance(role, str):
            raise GatewayError("'role' must be a string")
        check_role(role)
    except GatewayError as exc:
        log.error("device request refused: %s: %s", what, exc)
        return 0
    try:
        if action == "remove":
            remove_device(config, role, reload, owners)
            downloads.clear(role)
        else:
            _add_or_show(config, action, role, reload=reload, owners=owners, downloads=downloads)
    except GatewayError as exc:
        problem = str(exc).replace("\n", "; ")
        log.error("device %r: %s failed: %s", role, action, problem)
        downloads.put(role, ".error", problem + "\n")
        return 0
    log.info("device %r: %s done", role, action)
    return 1


def _add_or_show(
    config: GatewayConfig,
    action: str,
    role: str,
    *,
    reload: Reload,
    owners: Owners,
    downloads: _Downloads,
) -> None:
    problem = None
    if action == "add":
        try:
            add_device(config, role, reload, owners)
        except DeviceError as exc:
            # Exists already, or added but the broker not reloaded: either way the device
            # exists, and its secrets.h is offered below; the reason is kept beside it.
            problem = str(exc)
    sketch = device_secrets(config, role)  # raises if there is no such device
    downloads.put(role, ".h", render_secrets_h(sketch))
    if problem is not None:
        raise DeviceError(problem)
    downloads.forget(role, ".error")


class _Downloads:
    """The directory of results, root's: files in it are replaced, never followed."""

    def __init__(self, directory: Path, owner: Owner) -> None:
        self.directory = directory
        self.owner = owner

    def put(self, role: str, suffix: str, text: str) -> None:
        mode = FILE_MODE if self.owner is not None else 0o600
        write_atomic(self.directory / _name(role, suffix), text, mode=mode, owner=self.owner)

    def forget(self, role: str, suffix: str) -> None:
        path = self.directory / _name(role, suffix)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise FileWriteError(path, exc.strerror or str(exc), "cannot remove") from exc

    def clear(self, role: str) -> None:
        self.forget(role, ".h")
        self.forget(role, ".error")


def _downloads(directory: Path, owner: Owner) -> _Downloads:
    """The results directory, made if missing. The coordinator owns the directory it is in
    and could have put anything there: only a real directory of this process's user is used
    (not a link to, say, the secrets)."""
    mode = DOWNLOADS_MODE if owner is not None else 0o700
    try:
        os.mkdir(directory, mode)
        if owner is not None:
            os.chown(directory, os.geteuid(), owner[1])
        os.chmod(directory, mode)  # the umask took some
    except FileExistsError:
        pass
    except OSError as exc:
        raise FileWriteError(directory, exc.strerror or str(exc), "cannot make") from exc
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise ApplianceError(f"{directory}: not a directory of user {os.geteuid()}: not used")
    return _Downloads(directory, owner)


def _name(role: str, suffix: str) -> str:
    return hashlib.sha256(role.encode("utf-8")).hexdigest()[:32] + suffix


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("%s: cannot read: %s", path, exc)
        return None
