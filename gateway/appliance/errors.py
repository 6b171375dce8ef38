"""The appliance's one error class; a ``GatewayError``, so CLIs print it as one line.

Defined here rather than in ``gateway/errors.py`` while that file is being reworked; it belongs
in the tree drawn there as ``GatewayError -> ApplianceError``.
"""

from __future__ import annotations

from gateway.errors import GatewayError


class ApplianceError(GatewayError):
    """Provisioning or a service file failed; the message names the file and the problem."""
