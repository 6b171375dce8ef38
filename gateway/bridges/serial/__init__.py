"""The USB serial bridge: the framed serial link (``link``, ``description``); the daemon follows."""
