"""The gateway's own health: readings, alarms and the orderly shutdown (docs/health.md).

``readers`` reads each source once for everyone (the participant and the dashboard), from an
injectable root directory; ``ina219`` is the UPS HAT's battery monitor; ``sample`` is one
reading of every source; ``core`` decides what to send and when (pure); ``status`` is the
retained summary the dashboard shows; ``participant`` runs it all as
``msgflo-bridge@health``.
"""
