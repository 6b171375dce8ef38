"""Device credentials asked of root: by the dashboard, and by the serial bridge over USB.

On the appliance the dashboard runs in the coordinator's process, as ``msgflo-coordinator``,
which may read the role passwords (``coordinator.json``) but not ``secrets.json`` (the WiFi
passphrase, every user's password): it cannot add a broker user. Neither can the serial bridge
(``msgflo-bridge``), which provisions WiFi boards plugged into the gateway's USB
(docs/provisioning.md). So each of them, a :class:`Requester`, adds requests to a file of its
own in a directory it may write, as with adopting a bridge's device
(:mod:`gateway.appliance.adopt`: the same request file code and the same directory lock):

- the dashboard: ``{"action": "add" | "remove" | "show", "role": ...}`` in :data:`REQUESTS`
  (the coordinator's state directory);
- the serial bridge: ``{"action": "provision", "role": ..., "request": ID}`` in
  :data:`PROVISION_REQUESTS` (the bridge's state directory, ``StateDirectory=`` of its
  drop-in).

A newer request for the same role replaces the older. The existence of either file starts the
root ``msgflo-devices.service`` (``msgflo-devices.path`` watches both), which runs
``gateway-run devices``: :func:`apply_device_requests` and :func:`apply_provision_requests`
check each request again and carry it out with :mod:`gateway.appliance.devices` (the functions
``gateway-config device`` uses), then remove the file.

What comes back goes to a directory root makes in the requester's, files root's with the
requester's group (``Owners.as_written``: the group of ``coordinator.json`` or of the bridges'
files), mode 0640, so the requester can read and cannot change them:

- :data:`DOWNLOADS` (0750): per role a ``secrets.h`` (after add and show; removed with the
  device) and the reason a request for it failed (one line), for the dashboard to offer;
- :data:`PROVISION_RESULTS` (0770: the bridge removes what it has read): per role a JSON
  object of :class:`~gateway.bridges.serial.provisioning.DeviceCredentials`' fields and the
  request's ID, or the ID and the ``problem``. *Provision* adds the device, or gives an
  existing device its credentials again: a board wiped and plugged in again gets the password
  the broker already has for its role (``"existing": true``; the role is the one the gateway
  gives the port, not one the board claims).

File names are a hash of the role (a role may hold ``/`` and be 60 000 bytes long).

Off the appliance (``gateway-run coordinator`` and ``gateway-run bridge serial`` run by the
owner of the data directory, without ``--adopt-by-request`` / ``--provision-by-request``) the
requester writes the same request and carries it out itself: one path.
:func:`provision_issuer` is the serial bridge's side, both ways.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.appliance.adopt import add_request, handle_requests, pending_requests
from gateway.appliance.credentials import Owner, Owners
from gateway.appliance.devices import (
    DeviceError,
    Reload,
    SketchSecrets,
    add_device,
    check_role,
    device_secrets,
    remove_device,
    render_secrets_h,
    stored_devices,
)
from gateway.appliance.secrets import load_secrets
from gateway.common.atomic import write_atomic
from gateway.config.model import GatewayConfig
from gateway.errors import ApplianceError, FileWriteError, GatewayError

# The serial bridge's code (its session, Improv, asyncio) only where a board's credentials are
# made: the dashboard's start and gateway-run's other commands import this module too.
if TYPE_CHECKING:
    from gateway.bridges.serial.provisioning import DeviceCredentials, IssueCredentials

log = logging.getLogger(__name__)

FILE_MODE = 0o640
RESULT_WAIT = 30.0  # seconds the bridge waits for root's answer (msgflo-devices.service)
POLL = 0.1  # seconds between looks for the answer: a thread of the bridge, not its loop


@dataclass(frozen=True)
class Requester:
    """A less privileged service that asks root for device credentials: where it writes its
    requests and where root answers (both relative to ``data_dir``), the actions it may ask
    for, and which service group reads the answers."""

    name: str
    requests: Path
    results: Path
    actions: tuple[str, ...]
    reader: Callable[[Owners], Owner]
    results_mode: int  # the results directory's, when a service group reads it


# In the coordinator's state directory (StateDirectory= of its unit).
DASHBOARD = Requester(
    "dashboard",
    Path("coordinator") / "devices.json",
    Path("coordinator") / "devices",
    ("add", "remove", "show"),
    lambda owners: owners.coordinator,
    0o750,  # root's; the coordinator's group may list and read
)
# In the serial bridge's state directory (StateDirectory= of its drop-in provision.conf).
SERIAL_BRIDGE = Requester(
    "serial bridge",
    Path("bridges") / "serial" / "provision.json",
    Path("bridges") / "serial" / "provision",
    ("provision",),
    lambda owners: owners.bridge,
    0o770,  # root's; the bridges' group may also remove the answers it has read
)

REQUESTS = DASHBOARD.requests
DOWNLOADS = DASHBOARD.results
ACTIONS = DASHBOARD.actions
DOWNLOADS_MODE = DASHBOARD.results_mode
PROVISION_REQUESTS = SERIAL_BRIDGE.requests
PROVISION_RESULTS = SERIAL_BRIDGE.results


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
    """role -> action of the dashboard's requests root has not carried out yet."""
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
    return _carry_out(config, DASHBOARD, owners, lambda r, results, owned: _apply(
        config, r, reload, owned, results))  # fmt: skip


def apply_provision_requests(
    config: GatewayConfig, reload: Reload, owners: Owners | None = None
) -> int:
    """Carry out every request of the serial bridge in ``<data_dir>/``
    :data:`PROVISION_REQUESTS`, then remove the file; the number done. One log line per
    request; each answer, credentials or problem, is left for the bridge."""
    return _carry_out(config, SERIAL_BRIDGE, owners, lambda r, results, owned: _provision(
        config, r, reload, owned, results))  # fmt: skip


def apply_all(config: GatewayConfig, reload: Reload) -> tuple[int, list[GatewayError]]:
    """``gateway-run devices``: every requester's requests; the number done and the errors
    that stopped a requester's file (one requester's broken directory stops no other)."""
    done, errors = 0, []
    for apply in (apply_device_requests, apply_provision_requests):
        try:
            done += apply(config, reload)
        except GatewayError as exc:
            errors.append(exc)
    return done, errors


Handle = Callable[[Any, "_Downloads", Owners], int]


def _carry_out(
    config: GatewayConfig, requester: Requester, owners: Owners | None, handle: Handle
) -> int:
    path = config.data_dir / requester.requests
    if not path.exists():
        return 0
    owners = Owners.as_written(config.data_dir) if owners is None else owners
    results = _downloads(
        config.data_dir / requester.results, requester.reader(owners), requester.results_mode
    )
    done = 0

    def one(request: Any) -> None:
        nonlocal done
        done += handle(request, results, owners)

    handle_requests(path, one, f"{requester.name} device requests")
    return done


def _apply(
    config: GatewayConfig, request: Any, reload: Reload, owners: Owners, downloads: _Downloads
) -> int:
    what = str(request)[:200]
    try:
        if not isinstance(request, Mapping) or request.get("action") not in ACTIONS:
            raise GatewayError("not {'action': add|remove|show, 'role': ...}")
        action, role = request["action"], _role_of(request)
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
        downloads.put(role, ".error", _failed(role, action, exc) + "\n")
        return 0
    log.info("device %r: %s done", role, action)
    return 1


def _role_of(request: Mapping[str, Any]) -> str:
    """A request's role, checked (GatewayError says what is wrong with it)."""
    role = request.get("role")
    if not isinstance(role, str):
        raise GatewayError("'role' must be a string")
    check_role(role)
    return role


def _failed(role: str, action: str, exc: GatewayError) -> str:
    """The one log line for a request that failed; its problem on one line, for the answer."""
    problem = str(exc).replace("\n", "; ")
    log.error("device %r: %s failed: %s", role, action, problem)
    return problem


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


# --- the serial bridge: provisioning over USB ------------------------------------------------


def request_provision(data_dir: Path, role: str, request_id: str) -> None:
    """The bridge asks root for ``role``'s credentials (checked here first: a usage error
    raises GatewayError and writes nothing). ``request_id`` comes back with the answer."""
    check_role(role)
    path = data_dir / PROVISION_REQUESTS
    path.parent.mkdir(parents=True, exist_ok=True)
    add_request(path, {"action": "provision", "role": role, "request": request_id}, ("role",))


def provision_result(data_dir: Path, role: str) -> Path:
    """Where root answers the bridge's request for ``role``."""
    return data_dir / PROVISION_RESULTS / _name(role, ".json")


def _provision(
    config: GatewayConfig, request: Any, reload: Reload, owners: Owners, results: _Downloads
) -> int:
    what = str(request)[:200]
    try:
        if not isinstance(request, Mapping) or request.get("action") not in SERIAL_BRIDGE.actions:
            raise GatewayError("not {'action': 'provision', 'role': ..., 'request': ...}")
        request_id = request.get("request")
        if not isinstance(request_id, str) or not 0 < len(request_id) <= 64:
            raise GatewayError("'request' must be a string of 1-64 characters")
        role = _role_of(request)
    except GatewayError as exc:
        log.error("provision request refused: %s: %s", what, exc)
        return 0
    answer: dict[str, object] = {"request": request_id}
    try:
        sketch, existing, warning = _credentials_for(config, role, reload, owners)
    except GatewayError as exc:
        problem = _failed(role, "provision", exc)
        results.put(role, ".json", json.dumps({**answer, "problem": problem}) + "\n")
        return 0
    answer.update(asdict(credentials_of(sketch)), existing=existing, warning=warning)
    results.put(role, ".json", json.dumps(answer) + "\n")
    how = "an existing device, its credentials given again" if existing else "added"
    log.info("device %r: provision done (%s)", role, how)
    return 1


def _credentials_for(
    config: GatewayConfig, role: str, reload: Reload, owners: Owners
) -> tuple[SketchSecrets, bool, str | None]:
    """``role``'s credentials, the device added first if there is none: (what the board
    needs, whether the device existed, a warning such as the broker not reloaded)."""
    stored = load_secrets(config.data_dir)
    if role in stored_devices(stored):
        return device_secrets(config, role, stored), True, None
    try:
        return add_device(config, role, reload, owners), False, None
    except DeviceError as exc:
        # Added but the broker not told (it reads the files when it next starts), or added
        # meanwhile by someone else: the device exists either way, and the board gets it.
        stored = load_secrets(config.data_dir)
        if role not in stored_devices(stored):
            raise  # not added (the access point is off): that is the answer
        return device_secrets(config, role, stored), False, str(exc)


def credentials_of(sketch: SketchSecrets) -> DeviceCredentials:
    """What a board is sent over USB: the plain MQTT port on the access point (the CA for
    TLS does not fit Improv's packets, docs/provisioning.md)."""
    from gateway.bridges.serial.provisioning import DeviceCredentials

    return DeviceCredentials(
        ssid=sketch.wifi_ssid,
        passphrase=sketch.wifi_passphrase,
        broker_host=sketch.broker_address,
        broker_port=sketch.port,
        user=sketch.user,
        password=sketch.password,
        role=sketch.role,
    )


def provision_issuer(
    config: GatewayConfig, *, by_request: bool, reload: Reload, wait: float = RESULT_WAIT
) -> IssueCredentials:
    """The serial bridge's issuer (``IssueCredentials``: called in a thread, raises to
    refuse). It writes the request; ``by_request`` (the appliance) it waits up to ``wait``
    seconds for root to answer, else it carries the request out itself with ``reload`` (the
    caller owns the data directory). It removes the answer once read."""
    data_dir = config.data_dir

    def issue(role: str) -> DeviceCredentials:
        request_id = secrets.token_hex(8)
        result = provision_result(data_dir, role)
        _remove(result)  # an answer to an earlier request that was given up on
        request_provision(data_dir, role, request_id)
        if not by_request:
            apply_provision_requests(config, reload)
        answer = _answer(result, request_id, wait if by_request else 0.0)
        _remove(result)
        return _credentials(answer, result, role)

    return issue


def _answer(path: Path, request_id: str, wait: float) -> Mapping[str, Any]:
    """Root's answer to ``request_id``, waited for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        answer = _read_answer(path)
        if answer is not None and answer.get("request") == request_id:
            return answer
        # Another answer (an older request's, root catching up): root replaces it with ours.
        if time.monotonic() >= deadline:
            raise ApplianceError(
                f"{path}: no answer from msgflo-devices.service (gateway-run devices) "
                f"within {wait:g} s"
            )
        time.sleep(POLL)


def _read_answer(path: Path) -> Mapping[str, Any] | None:
    try:
        answer = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ApplianceError(f"{path}: cannot read the answer: {exc}") from None
    if not isinstance(answer, dict):
        raise ApplianceError(f"{path}: not a JSON object")
    return answer


def _credentials(answer: Mapping[str, Any], path: Path, role: str) -> DeviceCredentials:
    from gateway.bridges.serial.provisioning import DeviceCredentials

    problem = answer.get("problem")
    if problem is not None:
        raise DeviceError(str(problem))
    if answer.get("existing") is True:
        log.info("device %r exists: the board gets its credentials again", role)
    if answer.get("warning"):
        log.warning("device %r: %s", role, answer["warning"])
    values: dict[str, Any] = {
        field.name: answer.get(field.name) for field in fields(DeviceCredentials)
    }
    wrong = [name for name, value in values.items()
             if not isinstance(value, int if name == "broker_port" else str)]  # fmt: skip
    if wrong:
        raise ApplianceError(f"{path}: missing or of the wrong type: {', '.join(wrong)}")
    credentials = DeviceCredentials(**values)
    if credentials.role != role:
        raise ApplianceError(f"{path}: an answer for role {credentials.role!r}, not {role!r}")
    return credentials


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise FileWriteError(path, exc.strerror or str(exc), "cannot remove") from exc


# --- results ----------------------------------------------------------------------------------


class _Downloads:
    """The directory of results, root's: files in it are replaced, never followed."""

    def __init__(self, directory: Path, owner: Owner) -> None:
        self.directory = directory
        self.owner = owner

    def put(self, role: str, suffix: str, text: str) -> None:
        # This process's file (root's), readable by the requester's group: never its own.
        owner = None if self.owner is None else (os.geteuid(), self.owner[1])
        mode = FILE_MODE if owner is not None else 0o600
        write_atomic(self.directory / _name(role, suffix), text, mode=mode, owner=owner)

    def forget(self, role: str, suffix: str) -> None:
        _remove(self.directory / _name(role, suffix))

    def clear(self, role: str) -> None:
        self.forget(role, ".h")
        self.forget(role, ".error")


def _downloads(directory: Path, owner: Owner, shared_mode: int = DOWNLOADS_MODE) -> _Downloads:
    """The results directory, made if missing. The requester owns the directory it is in and
    could have put anything there: only a real directory of this process's user is used
    (not a link to, say, the secrets)."""
    mode = shared_mode if owner is not None else 0o700
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
