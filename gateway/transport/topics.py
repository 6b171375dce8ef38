"""MQTT topic names and filters (MQTT 5 sections 4.7 and 4.8.2), pure: what every transport
with MQTT semantics checks and matches the same way."""

from __future__ import annotations

from gateway.errors import TransportError

SHARE_PREFIX = "$share/"
MAX_TOPIC_BYTES = 65_535


def check_filter(subscription: str) -> None:
    """Refuse what an MQTT 5 broker refuses (section 4.7): ``#`` only last and alone in its
    level, ``+`` alone in its level, a share name without ``/``, ``+``, ``#``."""
    group, pattern = split_share(subscription)
    if group is not None and (not group or any(c in group for c in "+#")):
        raise TransportError(f"cannot subscribe to {subscription!r}: not a share name")
    _check_name(pattern, "subscribe to")
    levels = pattern.split("/")
    for n, level in enumerate(levels):
        if "#" in level and (level != "#" or n != len(levels) - 1):
            raise TransportError(f"cannot subscribe to {subscription!r}: '#' must end it")
        if "+" in level and level != "+":
            raise TransportError(f"cannot subscribe to {subscription!r}: '+' must fill a level")


def check_topic(topic: str) -> None:
    """Refuse a topic one cannot publish to: empty, too long, NUL or a wildcard in it."""
    _check_name(topic, "publish to")
    if "+" in topic or "#" in topic:
        raise TransportError(f"cannot publish to {topic!r}: wildcards are for subscribing")


def _check_name(name: str, doing: str) -> None:
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise TransportError(f"cannot {doing} {name!r}: not UTF-8 ({exc.reason})") from None
    if not 0 < size <= MAX_TOPIC_BYTES or "\x00" in name:
        raise TransportError(f"cannot {doing} {name!r}: not a topic")


def split_share(subscription: str) -> tuple[str | None, str]:
    """``$share/<group>/<filter>`` -> (group, filter); anything else -> (None, subscription)."""
    if not subscription.startswith(SHARE_PREFIX):
        return None, subscription
    parts = subscription.split("/", 2)
    if len(parts) < 3:
        raise TransportError(f"cannot subscribe to {subscription!r}: $share/<group>/<filter>")
    return parts[1], parts[2]


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the filter ``pattern`` (MQTT 5 section 4.7; a wildcard at the
    start does not match a topic starting with ``$``)."""
    if topic.startswith("$") and pattern[:1] in ("+", "#"):
        return False
    want, got = pattern.split("/"), topic.split("/")
    for n, level in enumerate(want):
        if level == "#":
            return True  # also matches the parent level: "a/#" matches "a"
        if n >= len(got) or (level != "+" and level != got[n]):
            return False
    return len(want) == len(got)


def shared_subscription_name(topic: str, group: str) -> str:
    """``$share/<group>/<topic>``: each message of ``topic`` to one subscriber of ``group``."""
    if not group or any(c in group for c in "/+#"):
        raise TransportError(f"{group!r} is not a share name (non-empty, no '/', '+', '#')")
    return f"{SHARE_PREFIX}{group}/{topic}"
