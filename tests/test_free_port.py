"""gateway.mosquitto.free_port, which every fixture's broker, runtime and VM forward uses."""

from __future__ import annotations

from gateway.mosquitto import free_port


def test_free_ports_asked_for_in_a_row_differ() -> None:
    # A VM's three port forwards once got the same port twice and QEMU refused to start.
    # Among 1,000 ports the kernel alone repeats some almost surely (~28,000 to choose from).
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)
