"""``gateway-firstboot``: make this device's secrets, broker files and certificates, once.

Runs before the broker, the access point and the coordinator (the systemd unit has
``ConditionPathExists=!<data_dir>/provisioned``). If ``<data_dir>/provisioned`` exists it
changes nothing. Otherwise it applies ``<boot>/msgflo-provision.yaml`` (then deletes it),
writes ``<data_dir>/secrets/`` (see ``gateway.appliance.secrets`` and
``gateway.appliance.credentials``), tells a human the WiFi name and passphrase (the console
named by ``--console`` and ``<boot>/msgflo-gateway.txt``; stdout, which the journal keeps, gets
the name only), and writes the marker last. A run cut short by a power cut runs again from the
start at the next boot; only an already complete ``secrets.json`` is kept, because the
provisioning file that may have fixed its values is gone by then.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from gateway.appliance import provision_file, tls
from gateway.appliance.credentials import (
    Owner,
    Owners,
    add_service_users,
    group_readable,
    system_user,
    write_user_files,
)
from gateway.appliance.provision_file import Provision, parse_provision
from gateway.appliance.secrets import (
    Secrets,
    SecretsLayout,
    ensure_secrets_dir,
    generate_secrets,
    load_secrets,
    passphrase,
    runtime_secret,
    save_secrets,
    ssid,
)
from gateway.appliance.users import ADMIN, user_names
from gateway.cli.options import run_tool
from gateway.common.atomic import ensure_dir, fsync_directory, write_atomic
from gateway.common.yaml12 import dump_yaml, load_yaml
from gateway.config import DEFAULT_PATH, GatewayConfig, load_config
from gateway.errors import ApplianceError, YamlError

PROG = "gateway-firstboot"
MARKER = "provisioned"
INFO_FILE = "msgflo-gateway.txt"
DEFAULT_BOOT_DIR = Path("/boot/firmware")

ConfigLoader = Callable[[Path], GatewayConfig]


@dataclass(frozen=True)
class FirstBoot:
    """One first-boot run's inputs; ``load_config`` and ``now`` are injected for tests.

    ``console`` is where the WiFi passphrase is shown (``/dev/console`` on the appliance: the
    screen and serial console, not the journal); ``None`` shows it nowhere but the text file.
    """

    config_path: Path
    boot_dir: Path
    broker_owner: Owner
    load_config: ConfigLoader
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    coordinator_owner: Owner = None
    bridge_owner: Owner = None
    console: Path | None = None

    @property
    def owners(self) -> Owners:
        return Owners(self.broker_owner, self.coordinator_owner, self.bridge_owner)


def run(job: FirstBoot, out: TextIO, err: TextIO) -> int:
    """Provision unless already done; problems in the provisioning file go to ``err``."""
    config = job.load_config(job.config_path)
    marker = config.data_dir / MARKER
    if marker.exists():
        print("already provisioned", file=out)
        return 0
    ensure_dir(config.data_dir, 0o755)
    provision, problems = read_provision(job.boot_dir)
    for problem in problems:
        print(f"{PROG}: error: {problem}", file=err)
    config = apply_to_config(job, config, provision)
    secrets = make_secrets(config, provision, job.owners.shared)
    remove_provision_file(job.boot_dir)
    write_broker_files(config, secrets, job.owners, job.now())
    tell_human(job.boot_dir, config, secrets, out, job.console)
    write_atomic(marker, f"{job.now().isoformat()}\n", 0o644)
    return 0


def read_provision(boot_dir: Path) -> tuple[Provision, tuple[str, ...]]:
    path = boot_dir / provision_file.FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Provision(), ()
    except (OSError, UnicodeDecodeError) as exc:
        return Provision(), (f"{path}: cannot read: {exc}",)
    return parse_provision(text, str(path))


def remove_provision_file(boot_dir: Path) -> None:
    """Delete the provisioning file: it holds a passphrase on a FAT partition anyone can read."""
    path = boot_dir / provision_file.FILE_NAME
    if path.exists():
        path.unlink()
        fsync_directory(boot_dir)


def apply_to_config(job: FirstBoot, config: GatewayConfig, provision: Provision) -> GatewayConfig:
    """Write a provisioned SSID and country into the config file and load it again."""
    changes = {
        key: value
        for key, value in (("ssid", provision.ssid), ("country", provision.country))
        if value is not None
    }
    if not changes:
        return config
    update_config_file(job.config_path, {"access_point": changes})
    return job.load_config(job.config_path)


def update_config_file(path: Path, changes: dict[str, dict[str, str]]) -> None:
    """Merge ``changes`` (section -> key -> value) into the YAML file at ``path``, atomically.

    The file is rewritten from its parsed form, so comments in it are lost. A link is
    followed: /etc/msgflo-gateway/gateway.yaml is one to the data partition, and replacing the
    link itself would write to the read-only root (lost at the next boot, refused by the
    sandbox).
    """
    path = path.resolve()
    data = _read_yaml_mapping(path)
    for section, values in changes.items():
        current = data.setdefault(section, {})
        if not isinstance(current, dict):
            raise ApplianceError(f"{path}: {section} must be a mapping to set {', '.join(values)}")
        current.update(values)
    ensure_dir(path.parent, 0o755)
    write_atomic(path, dump_yaml(data), 0o644)


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    # Read as the config loader reads it: YAML 1.1 would turn ``country: NO`` into false.
    try:
        data: Any = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        return {}
    except YamlError as exc:
        raise ApplianceError(f"{exc.where}: cannot update: {exc.problem}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplianceError(f"{path}: cannot update: {' '.join(str(exc).split())}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ApplianceError(f"{path}: cannot update: the file is not a mapping")
    return data


def make_secrets(config: GatewayConfig, provision: Provision, owner: Owner) -> Secrets:
    """Secrets for every MQTT user, with the provisioned values; saved to secrets.json.

    The graph's roles are not stored: their passwords are derived from the coordinator's
    (``gateway.appliance.credentials``), so roles added later get one too."""
    users = user_names(config)
    secrets = _existing_secrets(config.data_dir) or generate_secrets(users)
    passwords = dict(secrets.mqtt_passwords)
    if provision.admin_password is not None:
        passwords[ADMIN] = provision.admin_password
    secrets = replace(
        secrets,
        wifi_passphrase=provision.wifi_passphrase or secrets.wifi_passphrase,
        runtime_secret=provision.runtime_secret or secrets.runtime_secret,
        mqtt_passwords=passwords,
    ).with_users(users)
    save_secrets(config.data_dir, secrets, owner)
    return secrets


def _existing_secrets(data_dir: Path) -> Secrets | None:
    # Only an interrupted earlier run leaves one; it is complete (written atomically) or absent.
    try:
        return load_secrets(data_dir)
    except ApplianceError:
        return None


def write_broker_files(
    config: GatewayConfig, secrets: Secrets, owners: Owners, now: datetime.datetime
) -> None:
    """Password file, ACL, the services' credentials, CA and server certificate; each service
    user can read what it needs and nothing else."""
    files = SecretsLayout(ensure_secrets_dir(config.data_dir, owners.shared))
    write_user_files(config, secrets, owners)
    broker_mode, broker_owner = group_readable(owners.broker)
    ca = tls.make_ca(secrets.device_id, now)
    server = tls.make_server_cert(ca, config.access_point, now)
    write_atomic(files.ca_key, ca.key_pem, 0o600)
    write_atomic(files.ca_crt, ca.cert_pem, 0o644)
    write_atomic(files.server_key, server.key_pem, broker_mode, broker_owner)
    write_atomic(files.server_crt, server.cert_pem, 0o644)


def tell_human(
    boot_dir: Path, config: GatewayConfig, secrets: Secrets, out: TextIO, console: Path | None
) -> None:
    """Everything in the text file; the WiFi name and passphrase on the console. ``out`` (the
    journal, on the appliance) gets the name only: the journal is readable by more than root
    (the ``adm`` and ``systemd-journal`` groups) and is sent on by anything that collects logs.
    """
    ap = config.access_point
    ca_pem = SecretsLayout.at(config.data_dir).ca_crt.read_text(encoding="ascii")
    # FAT has no permissions: the mode is for a test directory; the docs say who can read it.
    write_atomic(boot_dir / INFO_FILE, info_text(config, secrets, ca_pem), 0o600)
    name = f"WiFi name: {ssid(ap, secrets)}"
    shown = console is not None and show_on_console(
        console, f"{name}\nWiFi passphrase: {passphrase(ap, secrets)}\n", out
    )
    where = "on the console and in" if shown else "in"
    print(f"{name} (the passphrase is {where} {boot_dir / INFO_FILE})", file=out)


def show_on_console(console: Path, text: str, out: TextIO) -> bool:
    """Write ``text`` straight to the console device (not through stdout: the service
    manager would copy that to the journal)."""
    try:
        with console.open("a", encoding="utf-8") as device:
            device.write(text)
    except OSError as exc:
        print(f"cannot show the passphrase on {console}: {exc.strerror or exc}", file=out)
        return False
    return True


def info_text(config: GatewayConfig, secrets: Secrets, ca_pem: str) -> str:
    """What someone holding the SD card needs to use the gateway."""
    ap, broker = config.access_point, config.broker
    host = ap.hostname
    lines = [
        "msgflo gateway",
        "",
        f"WiFi name:        {ssid(ap, secrets)}" + ("" if ap.enabled else " (access point off)"),
        f"WiFi passphrase:  {passphrase(ap, secrets)}",
        f"Gateway address:  {ap.address.ip}",
        f"Gateway hostname: {host}",
        "",
        # Port 80 is systemd's socket for the coordinator (msgflo-dashboard.socket).
        f"Dashboard:      http://{host}/",
        f"Runtime:        ws://{host}:{config.runtime.port} (FBP runtime protocol)",
        f"Runtime secret: {runtime_secret(config.runtime, secrets)}",
        "",
        f"MQTT:           mqtt://{host}:{broker.port}",
        *(
            [f"MQTT over TLS:  mqtts://{host}:{broker.tls_port} (CA below)"]
            if broker.tls_port
            else []
        ),
        f"MQTT user:      {ADMIN}",
        f"MQTT password:  {secrets.mqtt_passwords[ADMIN]}",
        "",
        "This file can be read by anyone holding the SD card. Delete it once noted.",
        "",
        "The gateway's certificate authority (for mqtts://):",
        ca_pem.strip(),
    ]
    return "\n".join(lines) + "\n"


def load_or_default(path: Path) -> GatewayConfig:
    """A missing config file means the defaults (a first boot with no file yet)."""
    return load_config(path) if path.exists() else GatewayConfig()


def broker_owner(user: str) -> Owner:
    """``(uid, gid)`` of the broker's system user; ``None`` for ``""`` (a laptop, a test)."""
    return system_user(user, "--broker-user")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, metavar="FILE")
    parser.add_argument("--boot-dir", type=Path, default=DEFAULT_BOOT_DIR, metavar="DIR")
    parser.add_argument(
        "--broker-user",
        default="mosquitto",
        metavar="USER",
        help="system user Mosquitto runs as; it may read the password, ACL and key files "
        "('' for none)",
    )
    add_service_users(parser)
    parser.add_argument(
        "--console",
        default="",
        metavar="DEVICE",
        help="show the WiFi passphrase here (/dev/console on the appliance; default: only in "
        "msgflo-gateway.txt); never on stdout, which the journal keeps",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def job() -> int:
        first_boot = FirstBoot(
            args.config,
            args.boot_dir,
            broker_owner(args.broker_user),
            load_or_default,
            coordinator_owner=system_user(args.coordinator_user, "--coordinator-user"),
            bridge_owner=system_user(args.bridge_user, "--bridge-user"),
            console=Path(args.console) if args.console else None,
        )
        return run(first_boot, sys.stdout, sys.stderr)

    return run_tool(PROG, job)


if __name__ == "__main__":
    sys.exit(main())
