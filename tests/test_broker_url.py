"""Broker URLs: parsing, defaults, resolution order, one-line errors (pure)."""

from __future__ import annotations

import pytest

from gateway.broker import parse_broker_url, resolve_broker
from gateway.errors import BrokerUrlError
from gateway.transport.base import mqtt_client_id


def test_full_mqtt_url() -> None:
    url = parse_broker_url(
        "mqtt://dlock:s3cr%40t@broker.local:1884?clientId=dlock13-%25i&keepAlive=30"
    )
    assert (url.scheme, url.host, url.port) == ("mqtt", "broker.local", 1884)
    assert (url.username, url.password) == ("dlock", "s3cr@t")
    assert url.options == {"clientId": "dlock13-%i", "keepAlive": "30"}
    assert "s3cr" not in str(url) and "s3cr" not in repr(url)


@pytest.mark.parametrize(
    ("raw", "port", "tls"),
    [
        ("mqtt://h", 1883, False),
        ("mqtts://h", 8883, True),
        ("amqp://h", 5672, False),
        ("amqps://h", 5671, True),
    ],
)
def test_default_ports(raw: str, port: int, tls: bool) -> None:
    url = parse_broker_url(raw)
    assert (url.port, url.tls) == (port, tls)


def test_amqps_url_with_tls_options_and_vhost() -> None:
    url = parse_broker_url("amqps://u:p@rabbit:5671/prod?ca_certs=/ca.pem&heartbeat=30")
    assert (url.scheme, url.vhost, url.tls) == ("amqps", "prod", True)
    assert url.options == {"ca_certs": "/ca.pem", "heartbeat": "30"}


@pytest.mark.parametrize("version", ["3", "5.0", ""])
def test_protocol_version_is_4_or_5(version: str) -> None:
    assert parse_broker_url("mqtt://h?protocolVersion=4").options["protocolVersion"] == "4"
    with pytest.raises(BrokerUrlError, match=r"protocolVersion must be 4 \(MQTT 3.1.1\) or 5"):
        parse_broker_url(f"mqtt://h?protocolVersion={version}")


def test_with_option_sets_and_checks_one_option() -> None:
    url = parse_broker_url("amqp://u:pw@h/?heartbeat=5")
    assert url.with_option("prefetch", "8").options == {"heartbeat": "5", "prefetch": "8"}
    assert url.options == {"heartbeat": "5"}  # frozen: a new URL
    with pytest.raises(BrokerUrlError, match="prefetch must be"):
        url.with_option("prefetch", "-1")


def test_with_option_is_in_the_url_handed_on_to_children() -> None:
    # The option used to be lost in secret_url, the URL started participants get.
    url = parse_broker_url("mqtt://a%40b:p%3Aw@h:1883?clientId=x-%25i&sessionExpiry=1")
    handed_on = parse_broker_url(url.with_option("sessionExpiry", "300").secret_url)
    assert (handed_on.username, handed_on.password) == ("a@b", "p:w")
    assert handed_on.options == {"clientId": "x-%i", "sessionExpiry": "300"}


def test_ipv6_host() -> None:
    url = parse_broker_url("mqtt://[::1]:1883")
    assert url.host == "::1"
    assert url.redacted() == "mqtt://[::1]:1883"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("localhost:1883", "expected scheme://host"),
        ("http://localhost", "scheme 'http' is not supported"),
        ("mqtt://", "no host name"),
        ("mqtt://h:99999", "port must be a number 1..65535, not '99999'"),
        ("mqtt://h:port", "port must be a number 1..65535, not 'port'"),
        ("mqtt://h?keepalive=3", "unknown option 'keepalive'"),
        ("mqtt://h?keepAlive=0", "keepAlive must be"),
        ("amqps://h?cafile=ca.pem", "unknown option 'cafile'"),
        ("amqp://h?keepAlive=30", "unknown option 'keepAlive'"),
        ("amqp://h?heartbeat=soon", "heartbeat must be 0..65535 seconds"),
        ("amqp://h?prefetch=0", "prefetch must be 1..65535 messages, not '0'"),
        ("mqtt://h?prefetch=5", "unknown option 'prefetch'"),
    ],
)
def test_invalid_urls_give_one_line_naming_url_and_problem(raw: str, problem: str) -> None:
    with pytest.raises(BrokerUrlError) as err:
        parse_broker_url(raw)
    message = str(err.value)
    assert raw in message
    assert problem in message
    assert "\n" not in message


def test_password_never_shown_in_errors() -> None:
    with pytest.raises(BrokerUrlError) as err:
        parse_broker_url("http://user:hunter2@host")
    assert "hunter2" not in str(err.value)


def test_resolution_order() -> None:
    assert resolve_broker(None, {}).host == "localhost"
    assert resolve_broker(None, {"MSGFLO_BROKER": "mqtt://envhost"}).host == "envhost"
    assert resolve_broker("mqtt://cli", {"MSGFLO_BROKER": "mqtt://envhost"}).host == "cli"


def test_client_id_digits_are_random_unless_a_session_is_to_be_resumed() -> None:
    url = parse_broker_url("mqtt://h?clientId=node-%25i")
    once, twice = mqtt_client_id(url, "x"), mqtt_client_id(url, "x")
    assert once.startswith("node-") and once != twice
    kept = mqtt_client_id(url, "x", persistent=True)
    assert kept.startswith("node-") and kept == mqtt_client_id(url, "x", persistent=True)
    other = parse_broker_url("mqtt://h?clientId=other-%25i")
    assert mqtt_client_id(other, "x", persistent=True)[-8:] != kept[-8:]
    assert mqtt_client_id(parse_broker_url("mqtt://h"), "plain", persistent=True) == "plain"
