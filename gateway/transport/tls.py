"""The client side of ``mqtts://`` and ``amqps://``: one TLS context from the URL's options.

Options as msgflo-python names them, the same on both transports: ``ca_certs`` (the CA file
that signed the broker's certificate; the system's CAs when absent), ``certfile`` and
``keyfile`` (a client certificate, for brokers that ask for one), ``insecure=1`` (skip the host
name check only, as paho's ``tls_insecure_set``: the certificate must still come from the CA).
"""

from __future__ import annotations

import ssl

from gateway.broker import BrokerUrl
from gateway.errors import BrokerUrlError

TRUE_WORDS = frozenset({"1", "true", "yes"})


def tls_context(url: BrokerUrl) -> ssl.SSLContext | None:
    """The verified client context for a TLS URL, None for a plain one.

    Raises :class:`BrokerUrlError` naming the URL when a file is missing or not a certificate
    or key, so the mistake shows at start and not as a handshake failure on every retry."""
    if not url.tls:
        return None
    opts = url.options
    try:
        context = ssl.create_default_context(cafile=opts.get("ca_certs") or None)
        if opts.get("certfile"):
            context.load_cert_chain(opts["certfile"], opts.get("keyfile") or None)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise BrokerUrlError(str(url), f"TLS setup failed: {exc}") from None
    if opts.get("insecure", "").lower() in TRUE_WORDS:
        context.check_hostname = False
    return context
