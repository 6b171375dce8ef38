#!/usr/bin/env python3
"""Writes the ``secrets.h`` the WiFi examples are compiled with in the host tests, with the
gateway's own ``render_secrets_h`` (what ``gateway-config device add ROLE`` prints): a change of
its macro names breaks the examples' build. With TLS, so the CA's multi-line macro is in it,
and values that need escaping.

    render_example_secrets.py OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.appliance.devices import SketchSecrets, render_secrets_h

CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\\base64+/=\n-----END CERTIFICATE-----\n"


def main() -> None:
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    secrets = SketchSecrets(
        role="sensor",
        user="sensor",
        password='pa"ss\\word',
        wifi_ssid="msgflo-kit",
        wifi_passphrase="a passphrase?",
        broker_address="192.168.4.1",
        broker_hostname="gateway.local",
        port=1883,
        tls_port=8883,
        ca_pem=CA,
    )
    text = render_secrets_h(secrets)
    if not out.exists() or out.read_text() != text:  # unchanged: no rebuild of the examples
        out.write_text(text)


if __name__ == "__main__":
    main()
