"""The access point's limits in gateway.yaml: the station limit, the DHCP range and network
that must hold that many stations, and the broker's connections for them (docs/wifi.md, How
many devices). Each refusal names file, line and key."""

from __future__ import annotations

import pytest

from gateway.config import GatewayConfig, parse_config
from gateway.errors import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gateway.yaml")
    return list(caught.value.problems)


def test_defaults_hold_a_room_of_boards() -> None:
    config = GatewayConfig()
    ap = config.access_point
    assert ap.max_stations == 32
    assert ap.dhcp_addresses == 191 >= ap.max_stations
    assert config.broker.max_connections == 2 * ap.max_stations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "access_point:\n  max_stations: 0\n",
            "gateway.yaml:2: access_point.max_stations: expected an integer 1-2007, got 0",
        ),
        (
            "access_point:\n  max_stations: 2008\n",
            "gateway.yaml:2: access_point.max_stations: expected an integer 1-2007, got 2008",
        ),
        (
            "broker:\n  max_connections: 0\n",
            "gateway.yaml:2: broker.max_connections: expected a positive integer, got 0",
        ),
        (
            "access_point:\n  dhcp_start: 192.168.4.10\n  dhcp_end: 192.168.4.30\n",
            "gateway.yaml:3: access_point.dhcp_end: the range 192.168.4.10-192.168.4.30 holds"
            " 21 addresses, fewer than max_stations 32",
        ),
        (
            "access_point:\n  address: 192.168.4.1/27\n"
            "  dhcp_start: 192.168.4.2\n  dhcp_end: 192.168.4.30\n",
            "gateway.yaml:2: access_point.address: 192.168.4.0/27 has 29 addresses for clients,"
            " fewer than max_stations 32",
        ),
        (
            "broker:\n  max_connections: 20\n",
            "gateway.yaml:2: broker.max_connections: 20 is fewer than access_point.max_stations"
            " 32: each board holds a connection",
        ),
        (
            "access_point:\n  max_stations: 100\n",
            "gateway.yaml:2: access_point.max_stations: 100 is more than"
            " broker.max_connections 64: each board holds a connection",
        ),
    ],
)
def test_limits_that_do_not_fit_are_refused_with_file_and_line(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_a_station_limit_beyond_the_network_is_reported_at_the_limit() -> None:
    # address is not in the file: the problem goes to the key that was changed.
    assert problems("broker: {max_connections: 400}\naccess_point:\n  max_stations: 300\n") == [
        "gateway.yaml:3: access_point.address: 192.168.4.0/24 has 253 addresses for clients,"
        " fewer than max_stations 300 (address is not set; this is its default)"
    ]


def test_limits_that_fit_are_taken() -> None:
    config = parse_config(
        "broker:\n  max_connections: 20\naccess_point:\n  max_stations: 20\n"
        "  address: 10.0.0.1/27\n  dhcp_start: 10.0.0.2\n  dhcp_end: 10.0.0.30\n",
        "gateway.yaml",
    )
    assert (config.broker.max_connections, config.access_point.max_stations) == (20, 20)
    assert config.access_point.dhcp_addresses == 29
    # Without the access point the broker's limit is not tied to stations.
    off = parse_config("broker: {max_connections: 5}\naccess_point: {enabled: false}\n", "g")
    assert off.broker.max_connections == 5
