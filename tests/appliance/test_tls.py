"""The per-device CA and the server certificate: what a client checks."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.appliance.tls import make_ca, make_server_cert
from gateway.config.model import AccessPointConfig

NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)


def test_ca_and_server_certificate() -> None:
    ca = make_ca("0123456789abcdef0123456789abcdef", NOW)
    server = make_server_cert(ca, AccessPointConfig(), NOW)
    ca_cert, cert = ca.certificate, server.certificate
    basic = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca and basic.path_length == 0
    assert isinstance(ca_cert.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert ca_cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    # The test environment has cryptography >= 42 (the *_utc properties); the device code
    # itself uses only cryptography 38's API.
    start = NOW - datetime.timedelta(days=1)
    assert ca_cert.not_valid_before_utc == cert.not_valid_before_utc == start
    assert ca_cert.not_valid_after_utc - start >= datetime.timedelta(days=3650)
    assert cert.issuer == ca_cert.subject
    cert.verify_directly_issued_by(ca_cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["gateway.msgflo", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("192.168.4.1"),
    ]
    assert b"PRIVATE KEY" in server.key_pem and b"ENCRYPTED" not in server.key_pem
