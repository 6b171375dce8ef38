"""Edge identifiers for ``network:data``, in the FBP-language form NoFlo and msgflo send.

``Hello() OUT -> IN World()`` for an edge and ``DATA -> IN Hello()`` for an IIP delivery: port
names upper-case and ``()`` after node names, as the original coordinator and NoFlo write them
(protocol.md 8.2; the fbp-protocol test suite compares these strings exactly). An array port's
index follows its name in brackets, as in .fbp (``IN[2]``).
"""

from __future__ import annotations

from gateway.graph.model import PortRef


def _port(ref: PortRef) -> str:
    index = f"[{ref.index}]" if ref.index is not None else ""
    return f"{ref.port.upper()}{index}"


def edge_id(src: PortRef, tgt: PortRef) -> str:
    """``Src() OUT -> IN Tgt()``."""
    return f"{src.process}() {_port(src)} -> {_port(tgt)} {tgt.process}()"


def initial_id(tgt: PortRef) -> str:
    """``DATA -> IN Tgt()`` for an IIP delivered to ``tgt``."""
    return f"DATA -> {_port(tgt)} {tgt.process}()"
