"""The control interface protocol without sockets: replies and events in, typed objects out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import GatewayError, HostapdError
from gateway.wifi.hostapd_ctrl import (
    ApDisabled,
    ApEnabled,
    ApState,
    Command,
    MacAddress,
    OtherEvent,
    Reply,
    StationConnected,
    StationDisconnected,
    Terminating,
    encode_command,
    expect_word,
    is_event,
    parse_event,
    parse_station,
    parse_status,
    reply_text,
    station_command,
)

# hostapd 2.10 with driver=none, as the integration tests see it (trimmed in the middle).
STATUS = (
    b"state=ENABLED\nphy=\nfreq=0\nnum_sta_non_erp=0\nolbc=0\nht_op_mode=0x0\n"
    b"cac_time_seconds=0\ncac_time_left_seconds=N/A\nchannel=6\nsecondary_channel=0\n"
    b"ieee80211n=0\nieee80211ac=0\nieee80211ax=0\nbeacon_int=100\ndtim_period=2\n"
    b"bss[0]=gwtest0\nbssid[0]=00:00:00:00:00:00\nssid[0]=gw-test\nnum_sta[0]=0\n"
)

# A station as hostapd_ctrl_iface_sta_mib() prints one with nl80211 (values made up).
STATION = (
    b"02:00:00:00:01:00\nflags=[AUTH][ASSOC][AUTHORIZED][WMM][HT]\naid=1\ncapability=0x421\n"
    b"listen_interval=5\nsupported_rates=82 84 8b 96 0c 12 18 24\ntimeout_next=NULLFUNC POLL\n"
    b"dot11RSNAStatsSTAAddress=02:00:00:00:01:00\nrx_packets=120\ntx_packets=80\n"
    b"rx_bytes=10240\ntx_bytes=20480\ninactive_msec=300\nsignal=-47\n"
    b"rx_rate_info=650 mcs 7 shortGI\ntx_rate_info=720\nconnected_time=42\n"
)


def test_status_from_driver_none() -> None:
    status = parse_status(STATUS)
    assert status.state is ApState.ENABLED
    assert (status.ssid, status.channel, status.freq, status.num_sta) == ("gw-test", 6, 0, 0)
    assert status.bssid == MacAddress("00:00:00:00:00:00")
    assert status.bss[0].ifname == "gwtest0"
    assert status.extra["beacon_int"] == "100"
    assert status.extra["phy"] == ""
    assert "bss[0]" not in status.extra and "state" not in status.extra


def test_status_with_two_bss_counts_stations_on_both() -> None:
    reply = STATUS + b"bss[1]=wlan0_1\nbssid[1]=02:00:00:00:00:01\nssid[1]=guest\nnum_sta[1]=3\n"
    status = parse_status(reply)
    assert [b.ssid for b in status.bss] == ["gw-test", "guest"]
    assert status.num_sta == 3
    assert status.ssid == "gw-test"


def test_a_state_newer_hostapd_may_add_is_unknown_not_an_error() -> None:
    assert parse_status(STATUS.replace(b"ENABLED", b"SOMETHING_NEW")).state is ApState.UNKNOWN


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"FAIL\n", "hostapd: STATUS: answered FAIL"),
        (b"UNKNOWN COMMAND\n", "hostapd: STATUS: unknown command (hostapd built without it?)"),
        (b"\xff\xfe", "hostapd: STATUS: reply is not text"),
        (b"PONG\n", "hostapd: STATUS: line 1 is not key=value: 'PONG'"),
        (b"phy=\n", "hostapd: STATUS: reply has no state= line"),
        (
            STATUS.replace(b"channel=6", b"channel=six"),
            "hostapd: STATUS: channel='six' is not a number",
        ),
        (b"state=ENABLED\n", "hostapd: STATUS: reply names no BSS (no bss[0]= line)"),
        (b"state=ENABLED\nbss[0]=wlan0\n", "hostapd: STATUS: BSS lines lack bssid, num_sta, ssid"),
        (
            STATUS.replace(b"bssid[0]=00:00:00:00:00:00", b"bssid[0]=zz"),
            "hostapd: STATUS: 'zz' is not a MAC address like 02:00:00:00:01:00",
        ),
    ],
)
def test_bad_status_replies_say_what_is_wrong(reply: bytes, message: str) -> None:
    with pytest.raises(HostapdError) as caught:
        parse_status(reply)
    assert str(caught.value) == message
    assert caught.value.command == "STATUS"


def test_station_fields() -> None:
    station = parse_station("STA-FIRST", STATION)
    assert station is not None
    assert station.mac == MacAddress("02:00:00:00:01:00")
    assert station.flags == {"AUTH", "ASSOC", "AUTHORIZED", "WMM", "HT"}
    assert station.authorized
    assert (station.aid, station.connected_time, station.signal) == (1, 42, -47)
    assert (station.rx_bytes, station.tx_bytes) == (10240, 20480)
    assert (station.rx_packets, station.tx_packets, station.inactive_msec) == (120, 80, 300)
    assert station.extra["rx_rate_info"] == "650 mcs 7 shortGI"
    assert station.extra["timeout_next"] == "NULLFUNC POLL"
    assert "flags" not in station.extra


def test_a_station_without_driver_data_has_no_counters() -> None:
    station = parse_station("STA-FIRST", b"02:00:00:00:01:00\nflags=[AUTH]\naid=0\n")
    assert station is not None
    assert (station.signal, station.rx_bytes, station.connected_time) == (None, None, None)
    assert not station.authorized


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("STA-FIRST", b""),  # no stations at all: hostapd sends an empty datagram
        ("STA-NEXT 02:00:00:00:01:00", b""),  # that was the last one
        ("STA-NEXT 02:00:00:00:01:00", b"FAIL\n"),  # it left meanwhile; hostapd_cli stops too
    ],
)
def test_end_of_the_station_list(command: str, reply: bytes) -> None:
    assert parse_station(command, reply) is None


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (b"FAIL\n", "answered FAIL"),
        (b"not-a-mac\nflags=[AUTH]\n", "'not-a-mac' is not a MAC address like 02:00:00:00:01:00"),
        (b"02:00:00:00:01:00\nflags=AUTH\n", "flags='AUTH' is not a list of [FLAG]s"),
        (b"02:00:00:00:01:00\nsignal=-4x\n", "signal='-4x' is not a number"),
    ],
)
def test_bad_station_replies(reply: bytes, problem: str) -> None:
    with pytest.raises(HostapdError) as caught:
        parse_station("STA-FIRST", reply)
    assert caught.value.problem == problem


def test_the_station_walk_starts_with_sta_first_then_follows_the_last_mac() -> None:
    assert station_command(None) == (Command.STA_FIRST, ())
    mac = MacAddress.parse("02:00:00:00:01:0A")
    assert station_command(mac) == (Command.STA_NEXT, ("02:00:00:00:01:0a",))


@pytest.mark.parametrize(
    ("datagram", "event"),
    [
        (
            b"<3>AP-STA-CONNECTED 02:00:00:00:01:00",
            StationConnected(MacAddress("02:00:00:00:01:00")),
        ),
        (
            b"<3>AP-STA-CONNECTED 02:00:00:00:01:00 keyid=home ip_addr=192.168.4.2",
            StationConnected(MacAddress("02:00:00:00:01:00")),
        ),
        (
            b"<3>AP-STA-DISCONNECTED 02:00:00:00:01:00",
            StationDisconnected(MacAddress("02:00:00:00:01:00")),
        ),
        (b"<3>AP-ENABLED ", ApEnabled()),  # hostapd 2.10 sends the trailing space
        (b"<3>AP-DISABLED ", ApDisabled()),
        (b"<3>CTRL-EVENT-TERMINATING ", Terminating()),
        (b"<2>WPS-PBC-ACTIVE", OtherEvent("WPS-PBC-ACTIVE")),
        (b"<3>AP-CSA-FINISHED freq=2437 dfs=0", OtherEvent("AP-CSA-FINISHED freq=2437 dfs=0")),
    ],
)
def test_events(datagram: bytes, event: object) -> None:
    assert is_event(datagram)
    assert parse_event(datagram) == event


def test_other_events_keep_their_name() -> None:
    assert OtherEvent("AP-CSA-FINISHED freq=2437").name == "AP-CSA-FINISHED"


@pytest.mark.parametrize(
    ("datagram", "problem"),
    [
        (b"AP-ENABLED", "'AP-ENABLED' has no <level> prefix"),
        (b"<x>AP-ENABLED", "'<x>AP-ENABLED' has no <level> prefix"),
        (b"<3>", "'<3>' is an empty event"),
        (b"<3>\xff", "event is not text"),
        (b"<3>AP-STA-CONNECTED", "'' is not a MAC address like 02:00:00:00:01:00"),
        (b"<3>AP-STA-DISCONNECTED 1:2:3", "'1:2:3' is not a MAC address like 02:00:00:00:01:00"),
    ],
)
def test_garbage_events(datagram: bytes, problem: str) -> None:
    with pytest.raises(HostapdError) as caught:
        parse_event(datagram)
    assert caught.value.problem == problem
    assert caught.value.command == "event"


def test_replies_are_not_events() -> None:
    assert not is_event(b"PONG\n")
    assert not is_event(b"")
    assert not is_event(STATUS)


def test_commands_and_bare_words() -> None:
    assert encode_command(Command.STA_NEXT, "02:00:00:00:01:00") == b"STA-NEXT 02:00:00:00:01:00"
    with pytest.raises(HostapdError):
        encode_command(Command.STA_NEXT, "02:00\nPING")
    expect_word("PING", b"PONG\n", Reply.PONG)
    with pytest.raises(HostapdError, match="expected PONG, got 'OK'"):
        expect_word("PING", b"OK\n", Reply.PONG)
    assert reply_text("STATUS", b"state=ENABLED\n") == "state=ENABLED\n"


def test_mac_addresses_are_normalised_and_validated() -> None:
    assert str(MacAddress.parse(" 02:AB:00:00:01:00\n")) == "02:ab:00:00:01:00"
    with pytest.raises(HostapdError):
        MacAddress("02:AB:00:00:01:00")


def test_status_is_frozen() -> None:
    status = parse_status(STATUS)
    with pytest.raises(AttributeError):
        status.channel = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        status.extra["phy"] = "phy0"  # type: ignore[index]


# --- property tests: whatever arrives, the parsers answer with an object or a HostapdError ---

# Lines built from the protocol's own pieces, so the parsers get past their first checks.
KEYS = st.sampled_from(
    [
        "state",
        "channel",
        "freq",
        "bss[0]",
        "bssid[0]",
        "ssid[0]",
        "num_sta[0]",
        "bss[1]",
        "flags",
        "signal",
        "aid",
        "rx_bytes",
        "x",
        "",
    ]
)
VALUES = st.sampled_from(
    [
        "ENABLED",
        "6",
        "-47",
        "0x0",
        "00:00:00:00:00:00",
        "[AUTH][ASSOC]",
        "[",
        "",
        "=",
        "é",
        "9" * 30,
    ]
)
LINES = st.lists(st.tuples(KEYS, VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"), max_size=12).map(
    lambda lines: "\n".join(lines).encode()
)
DATAGRAMS = st.binary(max_size=300) | LINES | LINES.map(lambda b: b"02:00:00:00:01:00\n" + b)
EVENTS = st.binary(max_size=100) | st.builds(
    lambda level, name, rest: b"<" + level + b">" + name + rest,
    st.sampled_from([b"3", b"0", b"99", b"", b"x"]),
    st.sampled_from([b"AP-STA-CONNECTED", b"AP-STA-DISCONNECTED", b"AP-ENABLED", b"X", b""]),
    st.binary(max_size=30) | st.just(b" 02:00:00:00:01:00"),
)


def _only_hostapd_errors(parse: object, *args: object) -> None:
    try:
        parse(*args)  # type: ignore[operator]
    except HostapdError as exc:
        assert isinstance(exc, GatewayError)
        assert "\n" not in str(exc)


@given(DATAGRAMS)
def test_status_parser_raises_only_hostapd_error(datagram: bytes) -> None:
    _only_hostapd_errors(parse_status, datagram)


@given(DATAGRAMS, st.sampled_from(["STA-FIRST", "STA-NEXT 02:00:00:00:01:00"]))
def test_station_parser_raises_only_hostapd_error(datagram: bytes, command: str) -> None:
    _only_hostapd_errors(parse_station, command, datagram)


@given(EVENTS)
def test_event_parser_raises_only_hostapd_error(datagram: bytes) -> None:
    _only_hostapd_errors(parse_event, datagram)


@given(
    ssid=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=32),
    channel=st.integers(0, 233),
    freq=st.integers(0, 7115),
    num_sta=st.integers(0, 2007),
    state=st.sampled_from(list(ApState)),
)
def test_status_round_trip(
    ssid: str, channel: int, freq: int, num_sta: int, state: ApState
) -> None:
    reply = (
        f"state={state}\nfreq={freq}\nchannel={channel}\nbss[0]=wlan0\n"
        f"bssid[0]=02:00:00:00:00:01\nssid[0]={ssid}\nnum_sta[0]={num_sta}\n"
    ).encode()
    status = parse_status(reply)
    assert (status.state, status.ssid, status.channel) == (state, ssid, channel)
    assert (status.freq, status.num_sta) == (freq, num_sta)
