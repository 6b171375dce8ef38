"""YAML as every file of the gateway is read: YAML 1.2 scalars, bounded documents, one-line errors.

Participant descriptions, component libraries, ``gateway.yaml`` and the provisioning file are
written by hand, and PyYAML's YAML 1.1 rules misread them: ``on``/``off``/``yes``/``no`` become
booleans (the port ``on``, Norway's ``NO``) and ``0755`` an octal number. Here they stay strings
and ``0755`` is 755. Documents are bounded (:class:`Yaml12Loader`), so a hostile file is refused
with a line number instead of eating the memory. Errors are :class:`~gateway.errors.YamlError`,
``source:line:col: problem`` on one line; callers add what the file was for.

``dump_yaml`` writes what either rule set would misread quoted, so the text reads back the same
with this loader and with YAML 1.1 tools.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from gateway.errors import YamlError

MAX_YAML_DEPTH = 100  # levels of nested lists and mappings, aliases expanded
MAX_YAML_VALUES = 100_000  # values in a document once its aliases are expanded
MAX_YAML_BYTES = 1 << 20  # a hand-written description or config file is a few kilobytes


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and integers, and bounded documents.

    Aliases are allowed (``&anchor``/``*alias`` to share a port definition), but a document
    whose aliases would expand to more than ``MAX_YAML_VALUES`` values (a "billion laughs"),
    that refers to itself, or that nests deeper than ``MAX_YAML_DEPTH`` is refused with a
    ``ComposerError`` naming the line, before anything is built from it.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                problem = f"values are nested more than {MAX_YAML_DEPTH} levels deep"
                raise ComposerError(None, None, problem, mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            check_expansion(node)
        return node


def check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand too far: too many values, too deep, or a cycle.

    Sizes and depths are computed once per distinct node (aliases share nodes), without
    recursion, so the check costs as much as the document's text, not its expansion.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_YAML_VALUES:
                problem = f"aliases expand to more than {MAX_YAML_VALUES} values"
                raise ComposerError(None, None, problem, node.start_mark)
            if depth[key] > MAX_YAML_DEPTH:
                problem = f"aliases nest values more than {MAX_YAML_DEPTH} levels deep"
                raise ComposerError(None, None, problem, node.start_mark)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise ComposerError(None, None, "an alias refers to a value that contains it",
                                node.start_mark)  # fmt: skip
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _restrict_resolvers() -> None:
    resolvers = {
        key: [(tag, rx) for tag, rx in value if tag not in _REPLACED]
        for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Yaml12Loader.yaml_implicit_resolvers = resolvers
    Yaml12Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    Yaml12Loader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
        list("-+0123456789"),
    )


_REPLACED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"}
_restrict_resolvers()


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    try:
        if text.startswith("0o"):
            return int(text[2:], 8)
        return int(text, 0) if text.startswith("0x") else int(text, 10)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits())
        problem = f"an integer of {len(text)} characters is too long"
        raise ConstructorError(None, None, problem, node.start_mark) from None


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str, source: str) -> Any:
    """The value of YAML 1.2 ``text``; ``YamlError`` names ``source:line:column``."""
    try:
        return yaml.load(text, Loader=Yaml12Loader)  # safe: a SafeLoader subclass
    except (yaml.YAMLError, RecursionError) as exc:
        raise yaml_error(exc, text, source) from None


def compose_yaml(text: str, source: str) -> yaml.Node | None:
    """The node tree of ``text`` (values keep their line numbers), as ``load_yaml`` reads it."""
    try:
        return yaml.compose(text, Loader=Yaml12Loader)
    except (yaml.YAMLError, RecursionError) as exc:
        raise yaml_error(exc, text, source) from None


def yaml_error(exc: Exception, text: str, source: str) -> YamlError:
    """One line for what PyYAML raised: where it saw the problem, and the problem.

    Not the source line PyYAML's own message quotes: it may hold a passphrase, and this goes
    to logs."""
    if isinstance(exc, RecursionError):  # not expected with the depth bound; never a traceback
        return YamlError(source, "values are nested too deeply to read")
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        return YamlError(where, str(exc.problem or exc.context))
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return YamlError(f"{source}:{line}", f"character #x{exc.character:04x} is not allowed")
    # Not raised while loading; the type only, since a message could quote a secret's line.
    return YamlError(source, type(exc).__name__)


class Yaml12Dumper(yaml.SafeDumper):
    """Quotes a string if either YAML 1.1 or :class:`Yaml12Loader` would not read it back as a
    string: the dumper quotes whatever its resolvers resolve to another type."""


for _first, _pairs in Yaml12Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _pairs:
        Yaml12Dumper.add_implicit_resolver(_tag, _regexp, [_first])


def dump_yaml(data: object) -> str:
    """``data`` as block-style YAML in its own key order, read back the same by either rules."""
    return yaml.dump(
        data, Dumper=Yaml12Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
