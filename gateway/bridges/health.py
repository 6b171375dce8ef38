"""``msgflo-bridge@health``: the gateway's health participant on the bridge host, whose one
device is the gateway itself. The participant is :mod:`gateway.health.participant`; this module
is the name ``gateway.bridges.run`` looks up."""

from __future__ import annotations

from gateway.health.participant import device_side

__all__ = ["device_side"]
