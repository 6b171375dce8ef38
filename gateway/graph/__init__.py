"""Graphs: which roles exist, what components they run, and how their ports connect.

Load with ``load_graph(path)`` (``.fbp`` or FBP JSON by extension) or ``parse_fbp`` /
``parse_json`` from text; save with ``save_graph`` (atomic) or ``to_fbp`` / ``to_json``.
Every load error is an ``InvalidGraphError`` whose ``problems`` each say ``file:line:col``.
"""

from __future__ import annotations

from gateway.graph.checks import check_graph
from gateway.graph.fbp_format import fbp_with_warnings, parse_fbp, read_fbp, to_fbp
from gateway.graph.files import is_fbp, load_graph, read_graph, render_graph, save_graph
from gateway.graph.json_format import graph_from_dict, graph_to_dict, parse_json, read_json, to_json
from gateway.graph.model import (
    Connection,
    Edge,
    ExportedPort,
    Graph,
    Group,
    Initial,
    PortRef,
    Process,
    Properties,
)

__all__ = [
    "Connection",
    "Edge",
    "ExportedPort",
    "Graph",
    "Group",
    "Initial",
    "PortRef",
    "Process",
    "Properties",
    "check_graph",
    "fbp_with_warnings",
    "graph_from_dict",
    "graph_to_dict",
    "is_fbp",
    "load_graph",
    "parse_fbp",
    "parse_json",
    "read_fbp",
    "read_graph",
    "read_json",
    "render_graph",
    "save_graph",
    "to_fbp",
    "to_json",
]
