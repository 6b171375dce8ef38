"""The rendered mosquitto.conf and first boot's passwd/ACL/certificates on the real broker."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import socket
import ssl
import tempfile
from pathlib import Path

import pytest

from gateway.appliance.firstboot import FirstBoot, run
from gateway.appliance.render import mosquitto_conf
from gateway.appliance.secrets import Secrets, SecretsLayout, load_secrets, secrets_dir
from gateway.config.model import GatewayConfig
from tests.appliance.conftest import AP_ADDRESS, NOW, Broker, Client, appliance_config

pytestmark = pytest.mark.integration

Appliance = tuple[GatewayConfig, Secrets]


def connect(
    clients: list[Client], broker: Broker, user: str | None, password: str | None, **kw: object
) -> Client:
    host = str(kw.pop("host", "127.0.0.1"))
    port = int(str(kw.pop("port", broker.config.broker.port)))
    client = Client(host, port, user, password, **kw)  # type: ignore[arg-type]
    clients.append(client)
    return client


def test_anonymous_clients_are_refused(broker: Broker, clients: list[Client]) -> None:
    assert not connect(clients, broker, None, None).connect()


def test_wrong_password_is_refused(broker: Broker, clients: list[Client]) -> None:
    assert not connect(clients, broker, "coordinator", "not-the-password").connect()


def test_coordinator_connects_on_loopback_and_the_ap_address(
    broker: Broker, appliance: Appliance, clients: list[Client]
) -> None:
    password = appliance[1].mqtt_passwords["coordinator"]
    for host in ("127.0.0.1", AP_ADDRESS):
        assert connect(clients, broker, "coordinator", password, host=host).connect()


def test_role_user_reads_only_its_own_topics(
    broker: Broker, appliance: Appliance, clients: list[Client]
) -> None:
    passwords = appliance[1].mqtt_passwords
    role = connect(clients, broker, "sensor", passwords["sensor"])
    admin = connect(clients, broker, "admin", passwords["admin"])
    assert role.connect() and admin.connect()
    role.subscribe("#")  # the broker grants it, and then delivers only what the ACL allows
    admin.subscribe("sensor/#")
    admin.publish("other/x", b"secret")
    admin.publish("sensor/x", b"mine")
    assert role.wait_for("sensor/x") == b"mine"
    assert ("other/x", b"secret") not in role.messages
    # It may announce itself and write its own topics, but not another role's.
    role.publish("other/y", b"forged")
    role.publish("sensor/out", b"ok")
    assert admin.wait_for("sensor/out") == b"ok"
    admin.subscribe("other/#")
    role.publish("other/z", b"forged")
    admin.publish("other/marker", b"m")
    admin.wait_for("other/marker")
    assert not [t for t, _ in admin.messages if t in ("other/y", "other/z")]


def test_bridges_read_the_brokers_client_count_and_roles_do_not(
    broker: Broker, appliance: Appliance, clients: list[Client]
) -> None:
    """The health bridge counts the broker's clients from $SYS, which "#" does not match."""
    passwords = appliance[1].mqtt_passwords
    bridge = connect(clients, broker, "bridge-health", passwords["bridge-health"])
    role = connect(clients, broker, "sensor", passwords["sensor"])
    assert bridge.connect() and role.connect()
    role.subscribe("$SYS/broker/clients/connected")
    bridge.subscribe("$SYS/broker/clients/connected")
    # The retained figure may be from before anyone connected: only that it arrives counts.
    assert int(bridge.wait_for("$SYS/broker/clients/connected")) >= 0
    # $SYS messages are retained: the role would have had one at its subscribe, before its
    # next subscription's marker.
    role.subscribe("sensor/#")
    bridge.publish("sensor/marker", b"m")
    role.wait_for("sensor/marker")
    assert not [t for t, _ in role.messages if t.startswith("$SYS")]


def test_browsers_over_websockets_get_web_and_fbp_only(
    broker: Broker, appliance: Appliance, clients: list[Client]
) -> None:
    """The dashboard's virtual devices: the web user over WebSockets on the access point's
    address may announce and use web/#, and cannot touch another participant's topics."""
    config, secrets = appliance
    port = config.broker.websockets_port
    assert port is not None
    password = secrets.mqtt_passwords["web"]  # generated at first boot like the others
    assert not connect(
        clients, broker, None, None, host=AP_ADDRESS, port=port, transport="websockets"
    ).connect()
    assert not connect(
        clients, broker, "web", "wrong", host=AP_ADDRESS, port=port, transport="websockets"
    ).connect()
    page = connect(
        clients, broker, "web", password, host=AP_ADDRESS, port=port, transport="websockets"
    )
    admin = connect(clients, broker, "admin", secrets.mqtt_passwords["admin"])
    assert page.connect() and admin.connect()
    admin.subscribe("#")
    page.subscribe("#")  # granted, and then only what the ACL lets it read arrives
    page.publish("fbp", b'{"role": "web-0123abcd-button"}')
    page.publish("web/web-0123abcd/button/out", b"pressed")
    page.publish("sensor/in", b"forged")
    admin.publish("sensor/out", b"private")
    admin.publish("web/web-0123abcd/led/in", b"on")
    assert admin.wait_for("fbp") == b'{"role": "web-0123abcd-button"}'
    assert admin.wait_for("web/web-0123abcd/button/out") == b"pressed"
    assert page.wait_for("web/web-0123abcd/led/in") == b"on"
    admin.publish("web/marker", b"m")  # after everything above: the broker kept the order
    page.wait_for("web/marker")
    admin.wait_for("web/marker")
    assert ("sensor/in", b"forged") not in admin.messages
    assert not [t for t, _ in page.messages if t.startswith(("sensor/", "fbp"))]
    # Not on loopback's plain port either with someone else's name: it is just a role user.
    assert not connect(clients, broker, "sensor", password).connect()


def test_tls_listener_on_the_ap_address_with_the_device_ca(
    broker: Broker, appliance: Appliance, clients: list[Client]
) -> None:
    config, secrets = appliance
    ca = SecretsLayout.at(config.data_dir).ca_crt
    port = config.broker.tls_port
    client = connect(
        clients, broker, "admin", secrets.mqtt_passwords["admin"], host=AP_ADDRESS, port=port, ca=ca
    )
    assert client.connect()
    client.subscribe("t/x")
    client.publish("t/x", b"over tls")
    assert client.wait_for("t/x") == b"over tls"


def test_tls_certificate_is_refused_without_the_device_ca(
    appliance: Appliance, broker: Broker
) -> None:
    port = appliance[0].broker.tls_port or 0
    context = ssl.create_default_context()  # the system's CAs only
    with (
        socket.create_connection((AP_ADDRESS, port), 5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname=AP_ADDRESS).close()


def test_tls_certificate_names_the_gateway(appliance: Appliance, broker: Broker) -> None:
    config = appliance[0]
    context = ssl.create_default_context(cafile=SecretsLayout.at(config.data_dir).ca_crt)
    port = config.broker.tls_port or 0
    for name in (config.access_point.hostname, "localhost", AP_ADDRESS):
        with socket.create_connection((AP_ADDRESS, port), 5) as raw:
            context.wrap_socket(raw, server_hostname=name).close()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to start mosquitto as its own user")
def test_mosquitto_dropping_to_its_user_reads_first_boots_files(
    clients: list[Client],
) -> None:
    # What the device does: mosquitto started as root switches to "mosquitto" and must still
    # read the password file, ACL and server key that first boot wrote for its group.
    try:
        entry = pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user")
    root = Path(tempfile.mkdtemp(prefix="msgflo-appliance-"))  # pytest's tmp is 0700
    try:
        root.chmod(0o755)
        config = appliance_config(root)
        owner = (entry.pw_uid, entry.pw_gid)
        job = FirstBoot(root / "gateway.yaml", root, owner, lambda _: config, lambda: NOW)
        assert run(job, io.StringIO(), io.StringIO()) == 0
        broker = Broker(config, root)
        broker.persistence.mkdir()
        os.chown(broker.persistence, *owner)
        text = mosquitto_conf(config, secrets_dir(config.data_dir), broker.persistence)
        broker.start(text=text)
        try:
            password = load_secrets(config.data_dir).mqtt_passwords["admin"]
            client = connect(clients, broker, "admin", password)
            assert client.connect()
        finally:
            broker.stop()
    finally:
        shutil.rmtree(root)
