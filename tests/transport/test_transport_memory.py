"""The memory:// broker's MQTT semantics beyond the contract: filters, retained messages,
subscription options, shared subscriptions, backpressure, wills and the broker going away."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from gateway.broker import parse_broker_url, resolve_broker
from gateway.errors import BrokerUrlError, TransportError
from gateway.transport import open_transport
from gateway.transport.base import Transport, Will
from gateway.transport.memory import MemoryBroker, MemoryTransport, memory_broker
from gateway.transport.topics import topic_matches
from tests.support.inbox import Inbox
from tests.support.wait import until


@pytest.fixture
def name() -> str:
    return f"memory-test-{secrets.token_hex(4)}"


@pytest.fixture
def broker(name: str) -> MemoryBroker:
    return memory_broker(name)


def transport(name: str, will: Will | None = None) -> MemoryTransport:
    opened = open_transport(parse_broker_url(f"memory://{name}"), client_id="t", will=will)
    assert isinstance(opened, MemoryTransport)
    return opened


@pytest.fixture
async def pair(name: str) -> AsyncIterator[tuple[Transport, Transport]]:
    async with transport(name) as a, transport(name) as b:
        await asyncio.wait_for(a.wait_connected(), 1)
        await asyncio.wait_for(b.wait_connected(), 1)
        yield a, b


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("a/b", "a/b", True),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("+/+", "/b", True),
        ("#", "$SYS/x", False),
        ("+/x", "$SYS/x", False),
        ("$SYS/#", "$SYS/x", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_topic_filters_match_as_mqtt_5_says(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(pattern, topic) is matches


@pytest.mark.parametrize("bad", ["a/#/b", "a#", "a/b+", "", "$share/g", "$share/g+/t"])
async def test_invalid_filters_are_refused(pair: tuple[Transport, Transport], bad: str) -> None:
    with pytest.raises(TransportError):
        await pair[0].subscribe(bad, Inbox())


async def test_publishing_to_a_wildcard_is_refused(pair: tuple[Transport, Transport]) -> None:
    with pytest.raises(TransportError, match="wildcards"):
        pair[0].publish("a/+", b"x")


async def test_delivery_is_scheduled_never_inside_publish(
    pair: tuple[Transport, Transport],
) -> None:
    pub, sub = pair
    inbox = Inbox()
    await sub.subscribe("t", inbox)
    pub.publish("t", b"1")
    assert inbox.got == []  # a handler that publishes must not be re-entered
    assert await inbox.wait_count(1) == [b"1"]


async def test_one_copy_per_client_and_one_per_other_subscriber(name: str) -> None:
    async with transport(name) as pub, transport(name) as a, transport(name) as b:
        await asyncio.wait_for(b.wait_connected(), 1)
        exact, wild, other = Inbox(), Inbox(), Inbox()
        await a.subscribe("s/+", wild)
        await a.subscribe("s/1", exact)
        await b.subscribe("s/#", other)
        pub.publish("s/1", b"x")
        pub.publish("s/2", b"y")
        await other.wait_count(2)
        await until(lambda: len(exact.got) + len(wild.got) == 2, what="a's copies")
    assert (exact.got, wild.got, other.got) == ([b"x"], [b"y"], [b"x", b"y"])


async def test_retained_messages_are_replayed_unless_asked_not_to(
    pair: tuple[Transport, Transport],
) -> None:
    pub, sub = pair
    pub.publish("r/1", b"kept", retain=True)
    pub.publish("r/2", b"gone", retain=True)
    pub.publish("r/2", b"", retain=True)  # an empty retained message clears it
    replayed, quiet, marker = Inbox(), Inbox(), Inbox()
    await sub.subscribe("r/+", replayed)
    await sub.subscribe("r/1", quiet, replay_retained=False)
    await sub.subscribe("m", marker)
    pub.publish("m", b"done")
    await marker.wait_count(1)
    assert [(d.topic, d.payload, d.retain) for d in replayed.deliveries] == [("r/1", b"kept", True)]
    assert quiet.got == []


async def test_no_local_and_retain_as_published(pair: tuple[Transport, Transport]) -> None:
    me, other = pair
    mine, flags = Inbox(), Inbox()
    await me.subscribe("n", mine, no_local=True)
    await other.subscribe("n", flags, retain_as_published=True)
    me.publish("n", b"from me", retain=True)
    other.publish("n", b"from other")
    await mine.wait_count(1)
    await flags.wait_count(2)
    assert mine.got == [b"from other"]
    assert [d.retain for d in flags.deliveries] == [True, False]


async def test_shared_subscribers_take_turns_and_plain_ones_get_all(name: str) -> None:
    async with transport(name) as pub, transport(name) as w1, transport(name) as w2:
        await asyncio.wait_for(w2.wait_connected(), 1)
        one, two, all_ = Inbox(), Inbox(), Inbox()
        shared = w1.shared_subscription("work", "g")
        assert shared == "$share/g/work"
        await w1.subscribe(shared, one)
        await w2.subscribe(shared, two)
        await w2.subscribe("work", all_)
        pub.publish("work", b"retained is not for groups", retain=True)
        for n in range(4):
            pub.publish("work", str(n).encode())
        await all_.wait_count(5)
        await until(lambda: len(one.got) + len(two.got) == 5, what="the group's share")
    assert len(one.got) in (2, 3) and len(two.got) in (2, 3)
    assert sorted(one.got + two.got) == sorted(all_.got)


async def test_paused_reading_holds_messages_and_loses_none(
    pair: tuple[Transport, Transport],
) -> None:
    pub, sub = pair
    inbox, marker = Inbox(), Inbox()
    await sub.subscribe("p", inbox)
    await pub.subscribe("m", marker)
    sub.pause_reading()
    for n in range(10):
        pub.publish("p", str(n).encode())
    pub.publish("m", b"after")
    await marker.wait_count(1)  # the loop has had its turns: sub would have had them too
    assert inbox.got == []
    sub.resume_reading()
    assert await inbox.wait_count(10) == [str(n).encode() for n in range(10)]


async def test_a_lost_connection_publishes_the_will_and_comes_back(name: str) -> None:
    async with transport(name) as watcher, transport(name, will=Will("status", b"gone")) as dying:
        connects: list[int] = []
        dying.add_connect_listener(lambda: connects.append(1))
        wills = Inbox()
        await watcher.subscribe("status", wills)
        await asyncio.wait_for(dying.wait_connected(), 1)
        dying.lose_connection()  # its network goes away; the broker stays
        assert not dying.connected
        assert await wills.wait_count(1) == [b"gone"]
        await asyncio.wait_for(dying.wait_connected(), 1)
        assert len(connects) == 2


async def test_a_broker_going_down_publishes_no_will(name: str, broker: MemoryBroker) -> None:
    async with transport(name) as watcher, transport(name, will=Will("status", b"gone")) as other:
        wills, marker = Inbox(), Inbox()
        await watcher.subscribe("status", wills)
        await watcher.subscribe("m", marker)
        await asyncio.wait_for(other.wait_connected(), 1)
        await broker.restart()
        await asyncio.wait_for(watcher.wait_connected(), 1)
        await asyncio.wait_for(other.wait_connected(), 1)
        other.publish("m", b"back")
        await marker.wait_count(1)
    assert wills.got == []


async def test_while_the_broker_is_down_qos_0_is_dropped_and_qos_1_kept(
    name: str, broker: MemoryBroker
) -> None:
    async with transport(name) as client:
        connects: list[int] = []
        client.add_connect_listener(lambda: connects.append(1))
        inbox = Inbox()
        await client.subscribe("back", inbox)
        await asyncio.wait_for(client.wait_connected(), 1)
        broker.stop()
        assert not client.connected
        client.publish("back", b"lost", qos=0)
        client.publish("back", b"kept", qos=1)
        flushed = asyncio.create_task(client.flush())
        await asyncio.sleep(0)
        assert not flushed.done()  # waits for the broker
        broker.start()
        await asyncio.wait_for(flushed, 1)
        assert await inbox.wait_count(1) == [b"kept"]  # resubscribed before it was sent
        assert client.stats.dropped == 1
        assert len(connects) == 2


async def test_a_clean_close_publishes_no_will(name: str) -> None:
    async with transport(name) as watcher:
        wills, marker = Inbox(), Inbox()
        await watcher.subscribe("status", wills)
        await watcher.subscribe("m", marker)
        async with transport(name, will=Will("status", b"gone")) as closing:
            await asyncio.wait_for(closing.wait_connected(), 1)
        watcher.publish("m", b"x")
        await marker.wait_count(1)
    assert wills.got == []


def test_command_lines_refuse_memory_urls() -> None:
    with pytest.raises(BrokerUrlError, match=r"memory:// is in-process only, for tests"):
        resolve_broker("memory://x")
    with pytest.raises(BrokerUrlError, match="in-process only"):
        resolve_broker(None, {"MSGFLO_BROKER": "memory://x"})


def test_memory_urls_take_no_options() -> None:
    with pytest.raises(BrokerUrlError, match="unknown option"):
        parse_broker_url("memory://x?clientId=a")
