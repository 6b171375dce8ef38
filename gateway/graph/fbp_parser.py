"""The .fbp language, parsed exactly as the reference parser (npm ``fbp`` 1.8.0) parses it.

The reference is a PEG grammar (``fbp/grammar/fbp.peg``). This is a hand-written recursive
descent over the same grammar with the same ordered choices, the same greedy and committed
optionals, and the same semantic actions, so graphs that deployments wrote against the reference
load identically here, quirks included:

* Connections are collected as a flat list of ``src``/``data``/``tgt`` items and then paired
  (``processEdges``): a source followed by a target makes one connection. So in
  ``a -> b OUT -> c`` the edge ``a -> b`` is dropped, as in the reference. Every statement ends
  with a target, which pairs with nothing after it, so pairing each statement's items on its
  own gives the reference's list; that is what happens here.
* A line that is only a node (``door(DoorLock)``) declares it and adds no edge.
* ``true``/``false``/``null`` are node names, while numbers, ``"strings"``, arrays and objects
  are JSON IIPs (the grammar's ``JSON_text`` alternative); a tab before ``true`` makes it JSON.
* Port names are lower-cased unless ``case_sensitive``; node names keep their case.

Unlike the reference (which stops at the first problem), a line that does not parse is reported
and parsing resumes on the next line, so a file's errors come out all at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.graph.diagnostics import Problem
from gateway.graph.fbp_diagnose import describe_failure
from gateway.graph.fbp_fast import FastLines
from gateway.graph.fbp_result import (
    Endpoint,
    FbpParseResult,
    Item,
    ParsedExport,
)
from gateway.graph.fbp_tokens import (
    ANNOTATION,
    ANON_RUN,
    COMPONENT,
    INDEX,
    JSON_WS,
    META,
    NEWLINE,
    NODE_NAME,
    PORT_NAME,
    QUOTED_IIP,
    REST_OF_LINE,
    SPACES,
    js_index,
    json_parse,
    json_value_end,
    skip,
)
from gateway.graph.model import PortRef

Leaves = list[Item]
_Port = tuple[str, int | None]
_PortRule = Callable[[], _Port | None]


class _FbpParser:
    """One parse of one text. Method names follow the grammar's rule names."""

    def __init__(self, text: str, *, case_sensitive: bool, fast: bool = True) -> None:
        self.text = text
        self.end = len(text)
        self.pos = 0
        self.case_sensitive = case_sensitive
        self.fail_pos = 0
        self.expected: set[str] = set()
        self.result = FbpParseResult()
        self.fast = FastLines(text, self.result, case_sensitive=case_sensitive) if fast else None
        self.default_in = "IN"
        self.default_out = "OUT"
        self.anon_counts: dict[str, int] = {}
        self.anon_names: dict[int, str] = {}
        self.open_quote: int | None = None

    # -- failure bookkeeping, as PEG parsers do: report the furthest position reached ---------

    def fail(self, what: str, pos: int | None = None) -> None:
        at = self.pos if pos is None else pos
        if at > self.fail_pos:
            self.fail_pos = at
            self.expected = {what}
        elif at == self.fail_pos:
            self.expected.add(what)

    def peek(self, literal: str) -> bool:
        if self.text.startswith(literal, self.pos):
            return True
        self.fail(repr(literal))
        return False

    def take(self, literal: str) -> bool:
        if self.peek(literal):
            self.pos += len(literal)
            return True
        return False

    def spaces(self) -> int:
        """The grammar's ``_`` (zero or more spaces); returns how many."""
        start = self.pos
        self.pos = skip(SPACES, self.text, start)
        return self.pos - start

    def regex(self, pattern: re.Pattern[str], what: str) -> re.Match[str] | None:
        match = pattern.match(self.text, self.pos)
        if match is None:
            self.fail(what)
            return None
        self.pos = match.end()
        return match

    # -- the file -------------------------------------------------------------------------------

    def parse(self) -> FbpParseResult:
        while self.pos < self.end:
            start = self.pos
            # Like the reference, the furthest failure counts even if it happened on the line
            # before (which then matched a shorter alternative): "INPORT=a.IN[0]:X" reads
            # "INPORT" as a lone node, but the useful error is at "[".
            if not self.line():
                self.report_syntax_error(start)
                self.fail_pos, self.expected, self.open_quote = self.pos, set(), None
        return self.result

    def line(self) -> bool:
        start = self.pos
        if self.fast is not None:
            end = self.fast.line(start, self.default_in, self.default_out)
            if end is not None:
                self.pos = end
                return True
        for alternative in (
            self.export_line,
            self.default_port_line,
            self.annotation_line,
            self.comment_line,
            self.blank_line,
            self.connection_line,
        ):
            if alternative():
                return True
            self.pos = start
        return False

    def line_terminator(self) -> None:
        # LineTerminator = _ ","? comment? newline?  (every part optional)
        self.spaces()
        if self.text.startswith(",", self.pos):
            self.pos += 1
        self.comment()
        self.newline()

    def newline(self) -> bool:
        if self.pos < self.end and self.text[self.pos] in NEWLINE:
            self.pos += 1
            return True
        self.fail("end of line")
        return False

    def comment(self) -> bool:
        start = self.pos
        self.spaces()
        if self.text.startswith("#", self.pos):
            self.pos = skip(REST_OF_LINE, self.text, self.pos + 1)
            return True
        self.pos = start
        return False

    def comment_line(self) -> bool:
        if not self.comment():
            return False
        self.newline()
        return True

    def blank_line(self) -> bool:
        self.spaces()
        return self.newline()

    def annotation_line(self) -> bool:
        match = ANNOTATION.match(self.text, self.pos)
        if match is None:
            return False
        self.pos = match.end()
        self.register_annotation(match.group(1), match.group(2))
        return True

    def register_annotation(self, key: str, value: str) -> None:
        props = self.result.properties
        if props is None:
            props = self.result.properties = {}
        # "# @runtime x" is how .fbp states environment.type; every other key is stored as is.
        if key == "runtime":
            props["environment"] = {"type": value}
        else:
            props[key] = value

    def export_line(self) -> bool:
        self.spaces()
        start = self.pos
        for keyword, exports in (
            ("INPORT=", self.result.inports),
            ("OUTPORT=", self.result.outports),
        ):
            if self.text.startswith(keyword, self.pos):
                self.pos += len(keyword)
                return self.export_rest(start, keyword[:-1], exports)
        return False

    def export_rest(self, start: int, kind: str, exports: dict[str, ParsedExport]) -> bool:
        node = self.node()
        if node is None or not self.take("."):
            return False
        port = self.regex(PORT_NAME, "a port name")
        if port is None or not self.take(":"):
            return False
        public = self.regex(PORT_NAME, "a public port name")
        if public is None:
            return False
        self.spaces()
        self.line_terminator()
        pub, inner = public.group(), port.group()
        if not self.case_sensitive:
            pub, inner = pub.lower(), inner.lower()
        first = exports.get(pub)
        if first is not None:
            line = self.text.count("\n", 0, first.offset) + 1
            message = f"{kind.lower()} {pub!r} is exported twice"
            hint = f"the first {kind}={first.process}.{first.port}:{pub} is on line {line}"
            self.result.problems.append(Problem(message, offset=start, hint=hint))
        exports[pub] = ParsedExport(pub, node[0], inner, start, node[1])
        return True

    def default_port_line(self) -> bool:
        self.spaces()
        for keyword in ("DEFAULT_INPORT=", "DEFAULT_OUTPORT="):
            if self.text.startswith(keyword, self.pos):
                self.pos += len(keyword)
                name = self.regex(PORT_NAME, "a port name")
                if name is None:
                    return False
                self.spaces()
                self.line_terminator()
                if keyword == "DEFAULT_INPORT=":
                    self.default_in = name.group()
                else:
                    self.default_out = name.group()
                return True
        return False

    def connection_line(self) -> bool:
        self.spaces()
        found = self.connection()
        if found is None:
            return False
        leaves, is_array = found
        self.spaces()
        self.line_terminator()
        # registerEdges keeps only array results: a lone node is a declaration, not an edge.
        if is_array:
            self.pair(leaves)
        return True

    # -- connections ----------------------------------------------------------------------------

    def connection(self) -> tuple[Leaves, bool] | None:
        """``source -> source -> ... -> destination``; iterative form of the recursive rule."""
        leaves: Leaves = []
        while True:
            start = self.pos
            source = self.source()
            if source is not None:
                self.spaces()
                if self.take("->"):
                    self.spaces()
                    leaves.extend(source)
                    continue
            self.pos = start
            # destination = inport / bridge; a bridge needs a node, and wherever there is one
            # inport already matches, so trying inport alone is the same.
            dest = self.inport()
            if dest is None:
                return None
            if leaves:
                return [*leaves, dest], True
            return [dest], False

    def source(self) -> Leaves | None:
        start = self.pos
        bridge = self.bridge()
        if bridge is not None:
            return bridge
        self.pos = start
        out = self.outport()
        if out is not None:
            return [out]
        self.pos = start
        iip = self.iip()
        return None if iip is None else [iip]

    def bridge(self) -> Leaves | None:
        start = self.pos
        in_port = self.port_space()
        if in_port is not None:
            node = self.node()
            out_port = self.space_port() if node is not None else None
            if node is not None and out_port is not None:
                return self.bridge_items(node, in_port, out_port)
        self.pos = start
        in_port = self.optional(self.port_space)
        node = self.node_with_component()
        if node is None:
            return None
        return self.bridge_items(node, in_port, self.optional(self.space_port))

    def bridge_items(
        self, node: tuple[str, int], in_port: _Port | None, out_port: _Port | None
    ) -> Leaves:
        tgt = self.endpoint(node, in_port, self.default_in)
        src = self.endpoint(node, out_port, self.default_out)
        return [Item("tgt", tgt, offset=node[1]), Item("src", src, offset=node[1])]

    def outport(self) -> Item | None:
        node = self.node()
        if node is None:
            return None
        port = self.optional(self.space_port)
        return Item("src", self.endpoint(node, port, self.default_out), offset=node[1])

    def inport(self) -> Item | None:
        # (port__)? node -- the optional is committed: once "name " is read as a port, a node
        # must follow (which is why "a -> b " with a trailing space is an error).
        port = self.optional(self.port_space)
        node = self.node()
        if node is None:
            return None
        return Item("tgt", self.endpoint(node, port, self.default_in), offset=node[1])

    def optional(self, rule: _PortRule) -> _Port | None:
        start = self.pos
        found = rule()
        if found is None:
            self.pos = start
        return found

    def endpoint(self, node: tuple[str, int], port: _Port | None, default: str) -> Endpoint:
        if port is None:
            name = default if self.case_sensitive else default.lower()
            return Endpoint(node[0], name, None, node[1])
        return Endpoint(node[0], port[0], port[1], node[1])

    # -- IIPs -----------------------------------------------------------------------------------

    def iip(self) -> Item | None:
        start = self.pos
        if self.text.startswith("'", start):
            return self.quoted_iip(start)
        self.fail("an IIP ('text' or JSON)")
        value_start = skip(JSON_WS, self.text, start)
        value_end = json_value_end(self.text, value_start)
        if value_end is None:
            return None
        self.pos = skip(JSON_WS, self.text, value_end)
        data = json_parse(self.text[value_start:value_end])
        return Item("data", None, data=data, offset=value_start)

    def quoted_iip(self, start: int) -> Item | None:
        # iipchar = \' (a quote) / any character but '; other backslashes stay as they are.
        match = QUOTED_IIP.match(self.text, start)
        if match is None:
            self.open_quote = start
            self.fail("a closing quote", self.end)
            return None
        self.pos = match.end()
        return Item("data", None, data=match.group(1).replace("\\'", "'"), offset=start)

    # -- nodes and ports ------------------------------------------------------------------------

    def node(self) -> tuple[str, int] | None:
        """node = nodeNameAndComponent / nodeName / nodeComponent; returns (name, offset)."""
        start = self.pos
        named = self.node_name_and_component()
        if named is not None:
            return named
        self.pos = start
        name = self.regex(NODE_NAME, "a process name")
        if name is not None:
            return name.group(), start
        return self.node_component()

    def node_with_component(self) -> tuple[str, int] | None:
        start = self.pos
        named = self.node_name_and_component()
        if named is not None:
            return named
        self.pos = start
        return self.node_component()

    def node_name_and_component(self) -> tuple[str, int] | None:
        start = self.pos
        name = self.regex(NODE_NAME, "a process name")
        if name is None:
            return None
        component = self.component()
        if component is None:
            return None
        self.result.add_node(name.group(), start, *component)
        return name.group(), start

    def node_component(self) -> tuple[str, int] | None:
        start = self.pos
        component = self.component()
        if component is None:
            return None
        # The reference names anonymous nodes by source offset, so re-parsing the same text
        # while backtracking finds the same node instead of counting a new one.
        name = self.anon_names.get(start)
        if name is None:
            base = ANON_RUN.sub("_", component[0], count=1)
            self.anon_counts[base] = self.anon_counts.get(base, 0) + 1
            name = self.anon_names[start] = f"_{base}_{self.anon_counts[base]}"
            self.result.add_node(name, start, *component)
        return name, start

    def component(self) -> tuple[str, list[str] | None] | None:
        if not self.take("("):
            return None
        name = self.regex(COMPONENT, "a component name")
        assert name is not None  # "*" always matches
        meta: list[str] | None = None
        if self.text.startswith(":", self.pos):
            self.pos += 1
            items = self.regex(META, "metadata (key=value,...)")
            if items is None:
                self.pos -= 1
            else:
                meta = items.group().split(",")
        if not self.take(")"):
            return None
        return name.group(), meta

    def port(self) -> _Port | None:
        name = self.regex(PORT_NAME, "a port name")
        if name is None:
            return None
        index = None
        match = INDEX.match(self.text, self.pos)
        if match is None:
            self.fail("'['")
        else:
            self.pos = match.end()
            index = js_index(match.group(1))
        port = name.group() if self.case_sensitive else name.group().lower()
        return port, index

    def port_space(self) -> _Port | None:
        port = self.port()
        if port is None:
            return None
        if not self.spaces():
            self.fail("' '")
            return None
        return port

    def space_port(self) -> _Port | None:
        if not self.spaces():
            self.fail("' '")
            return None
        return self.port()

    # -- after the parse ------------------------------------------------------------------------

    def pair(self, leaves: Leaves) -> None:
        """processEdges on one statement: a src/data item followed by a tgt item is a connection."""
        i = 1
        while i < len(leaves):  # bounded: i grows every turn
            left, right = leaves[i - 1], leaves[i]
            if left.kind != "tgt" and right.kind == "tgt":
                assert right.endpoint is not None
                src = None if left.endpoint is None else _port_ref(left.endpoint)
                tgt = _port_ref(right.endpoint)
                self.result.connect(src, left.data, left.offset, tgt, right.endpoint.offset)
                i += 1
            i += 1

    def report_syntax_error(self, start: int) -> None:
        at = max(self.fail_pos, start)
        message, hint = describe_failure(self.text, at, self.expected, self.open_quote)
        line_start = self.text.rfind("\n", 0, at) + 1
        unclosed = self.open_quote is not None and "a closing quote" in self.expected
        where = self.open_quote if unclosed and self.open_quote is not None else at
        self.result.problems.append(Problem(message, offset=where, hint=hint))
        resume = self.text.find("\n", at)
        self.pos = self.end if resume < 0 else resume + 1
        self.result.failed_text.append(self.text[line_start : self.pos])


def _port_ref(endpoint: Endpoint) -> PortRef:
    return PortRef(endpoint.process, endpoint.port, endpoint.index)


def parse_fbp_text(text: str, *, case_sensitive: bool = False, fast: bool = True) -> FbpParseResult:
    """The raw parse of .fbp ``text``: nodes, connections, exports, properties, with offsets,
    and the syntax problems (semantic checks are the caller's).

    ``fast=False`` turns off the shortcut for common lines (``fbp_fast``), leaving the grammar;
    the tests use it to check that both give the same result.
    """
    return _FbpParser(text, case_sensitive=case_sensitive, fast=fast).parse()
