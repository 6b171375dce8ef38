"""The .fbp parser's shortcut: the statements nearly every line consists of, one pattern each.

Trying the grammar's alternatives rule by rule costs several times more per line than one
regular expression. The patterns here match only text for which the full grammar
(``fbp_parser``) gives the same result, so the parser tries them first on every line and falls
back to the grammar otherwise; ``parse_fbp_text(..., fast=False)`` switches them off, which the
tests use to check that both give the same result.
"""

from __future__ import annotations

import re

from gateway.graph.fbp_result import FbpParseResult
from gateway.graph.fbp_tokens import js_index, json_parse
from gateway.graph.model import PortRef

# Every repetition is possessive and every optional part greedy, as the PEG's are, so a pattern
# never finds a reading the grammar would not (``a->b`` reads ``a-`` as the name, then fails).
# What they cover, in the grammar's terms (``fbp/grammar/fbp.peg``):
#
# * a source: a named node (with or without a component) and an optional port, or a quoted IIP,
#   or a JSON number IIP: the first alternative of ``source`` that matches there;
# * any number of middle nodes ``IN b OUT`` (the first ``bridge`` alternative) followed by
#   ``->``, as ``connection`` tries them before ``destination``;
# * a named target: ``PORT name``, ``name(Comp)`` or a bare ``name`` not followed by a space
#   (otherwise ``inport`` reads the name as a port and fails, which the grammar reports);
# * the ``LineTerminator``: spaces, an optional comma, an optional comment, a line break or the
#   end of the text. A statement that ends without a line break must end with a comma (then the
#   next statement on the line follows: after a comma ``source -> ...`` cannot continue, so the
#   grammar ends the statement there too); ``FastLines.line`` takes a line only if all its
#   statements match, so the grammar's failure bookkeeping (which never reaches past a line
#   break here) stays what it would have been.
_NAME = r"[a-zA-Z_][a-zA-Z0-9_\-]*+"
_PORT = r"[a-zA-Z_][a-zA-Z.0-9_]*+"
_NL = r"\n\r\u2028\u2029"


def _node(name: str) -> str:
    return (
        rf"(?P<{name}>{_NAME})"
        rf"(?:\((?P<{name}c>[a-zA-Z/\-0-9_]*+)(?::(?P<{name}m>[a-zA-Z/=_,0-9]++))?+\))?+"
    )


def _port(name: str) -> str:
    return rf"(?P<{name}>{_PORT})(?:\[(?P<{name}i>[0-9]++)\])?+"


_TERMINATOR = rf" *+(?P<comma>,)?+(?: *+#[^{_NL}]*+)?+(?P<nl>[{_NL}]|\Z)?+"
_MIDDLE = rf" *+-> *+{_port('mi')} ++{_node('m')} ++{_port('mo')}(?= *+->)"

# One statement: "src(Comp) PORT[i] -> PORT[j] mid(Comp) PORT[k] -> ... -> PORT[l] tgt(Comp)".
FAST_EDGE = re.compile(
    rf" *+(?:{_node('s')}(?: ++{_port('sp')})?+"
    r"|'(?P<iip>(?:\\'|[^'])*+)'"
    r"|(?P<num>-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+))"
    rf"(?P<chain>(?:{_MIDDLE})*+)"
    rf" *+-> *+(?:{_port('tp')} ++{_node('t')}|{_node('u')}(?(uc)|(?! )))" + _TERMINATOR
)
# One middle node of FAST_EDGE's chain, to walk it.
FAST_MIDDLE = re.compile(_MIDDLE)
# "name(Comp)" alone: declares the node, adds no edge.
FAST_DECLARATION = re.compile(rf" *+{_node('t')}(?(tc)|(?!))" + _TERMINATOR)


class FastLines:
    """Reads the lines the patterns cover into ``result``, as the grammar would."""

    def __init__(self, text: str, result: FbpParseResult, *, case_sensitive: bool) -> None:
        self.text = text
        self.result = result
        self.case_sensitive = case_sensitive

    def line(self, pos: int, default_in: str, default_out: str) -> int | None:
        """Take the line at ``pos`` if the patterns cover all its statements; where it ends.

        All or nothing: if any statement of the line is not covered, the grammar reads the
        whole line, so its failure bookkeeping is exactly what it would have been.
        """
        text = self.text
        found: list[re.Match[str]] = []
        for _ in range(len(text) - pos + 1):  # bounded: every statement takes some text
            match = FAST_EDGE.match(text, pos) or FAST_DECLARATION.match(text, pos)
            if match is None or (match["nl"] is None and match["comma"] is None):
                return None
            found.append(match)
            pos = match.end()
            if match["nl"] is not None:
                break
        if not self.case_sensitive:
            default_in, default_out = default_in.lower(), default_out.lower()
        for match in found:
            if match.re is FAST_EDGE:
                self.edge(match, default_in, default_out)
            else:
                self.node(match, "t")
        return pos

    def edge(self, match: re.Match[str], default_in: str, default_out: str) -> None:
        """The connections of one ``FAST_EDGE`` statement, in the order the grammar pairs them."""
        src: PortRef | None = None
        data: object = None
        if match["s"] is not None:
            # With a component the grammar also yields a target item before the source (the
            # bridge rule); nothing comes before it in the statement, so it never pairs.
            if match["sc"] is not None:
                self.node(match, "s")
            offset = match.start("s")
            src = self.ref(match, "s", "sp", "spi", default_out)
        elif match["iip"] is not None:
            data = match["iip"].replace("\\'", "'")
            offset = match.start("iip") - 1
        else:
            data = json_parse(match["num"])
            offset = match.start("num")
        if match["chain"]:
            src, data, offset = self.chain(match, src, data, offset)
        node = "t" if match["t"] is not None else "u"
        if match[node + "c"] is not None:
            self.node(match, node)
        if node == "t":
            tgt = self.ref(match, "t", "tp", "tpi", default_in)
        else:
            tgt = self.ref(match, "u", "", "", default_in)
        self.result.connect(src, data, offset, tgt, match.start(node))

    def chain(
        self, match: re.Match[str], src: PortRef | None, data: object, offset: int
    ) -> tuple[PortRef, None, int]:
        """The middle nodes of a chain: each the target of one edge and the source of the next."""
        pos, end = match.span("chain")
        for _ in range(end - pos):  # bounded: every middle takes some text
            middle = FAST_MIDDLE.match(self.text, pos)
            assert middle is not None  # FAST_EDGE matched these very middles
            self.node(middle, "m")
            node_offset = middle.start("m")
            tgt = self.ref(middle, "m", "mi", "mii", "")
            self.result.connect(src, data, offset, tgt, node_offset)
            src, data, offset = self.ref(middle, "m", "mo", "moi", ""), None, node_offset
            pos = middle.end()
            if pos >= end:
                break
        assert src is not None
        return src, None, offset

    def ref(
        self, match: re.Match[str], node: str, port_group: str, index_group: str, default: str
    ) -> PortRef:
        """The port of a node matched as group ``node``; ``default`` (already in the right case)
        if there is no ``port_group`` or it did not match."""
        port = match[port_group] if port_group else None
        if port is None:
            return PortRef(match[node], default)
        index = match[index_group]
        return PortRef(
            match[node],
            port if self.case_sensitive else port.lower(),
            None if index is None else js_index(index),
        )

    def node(self, match: re.Match[str], side: str) -> None:
        component = match[side + "c"]
        if component is not None:
            meta = match[side + "m"]
            items = None if meta is None else meta.split(",")
            self.result.add_node(match[side], match.start(side), component, items)
