"""USB serial devices as msgflo participants.

``link`` and ``description``: the framed serial link (docs/serial-link.md), pure codecs.
``session``: one device's state machine (hello, describe, ready, liveness), pure.
``port``, ``roles``, ``bridge``, ``cli``: the ``msgflo-serial`` daemon (docs/serial-bridge.md).
``fake_device``: the device side of the link in Python, for tests and trying it without hardware.
"""
