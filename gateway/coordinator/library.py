"""The component library: how to start a participant for a component (protocol.md 6).

Read from the original's ``package.json`` (settings under the key ``msgflo`` or at the top
level) or ``--library FILE.json``, or from a YAML file with the same keys::

    namespace: gw
    variables: {BRIDGE: "gw-bridge --role #ROLE"}
    handlers: {".py": "msgflo-python #FILENAME #ROLE"}
    components: {gw/Relay: "#BRIDGE relay --gpio 17"}

User variables are text: they are expanded first and may hold several words (and built-ins
such as ``#ROLE``). The command is then split like a shell would split it (``shlex``), and the
built-ins are substituted per word, so ``#IIPS`` (JSON with spaces) stays one argument. No
shell is ever run. In YAML, quote templates: `` #`` starts a comment there.
Component names resolve the same way whether the graph says ``Repeat`` or ``ns/Repeat``
(the original crashed on one and skipped the other).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.common.yaml12 import load_yaml
from gateway.errors import DefinitionError, YamlError

DEFAULT_HANDLERS: Mapping[str, str] = {
    ".yml": "msgflo-register --role #ROLE:#FILENAME",
    ".yaml": "msgflo-register --role #ROLE:#FILENAME",
    ".py": "msgflo-python #FILENAME #ROLE",
    ".js": "msgflo-nodejs --name #ROLE #FILENAME",
    ".coffee": "msgflo-nodejs --name #ROLE #FILENAME",
    ".json": "noflo-runtime-msgflo --name #ROLE --graph #COMPONENT --iips #IIPS",
    ".fbp": "noflo-runtime-msgflo --name #ROLE --graph #COMPONENT --iips #IIPS",
}
PSEUDO_COMPONENTS = frozenset({"msgflo/RoundRobin", "msgflo/PubSub"})


@dataclass(frozen=True)
class ComponentLibrary:
    """Component name -> command template, plus the variables the templates use."""

    namespace: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    handlers: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_HANDLERS))
    components: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, Path] = field(default_factory=dict)  # component -> its source file

    def source_file(self, component: str) -> Path | None:
        return next((self.files[n] for n in self._candidates(component) if n in self.files), None)

    def template(self, component: str) -> str | None:
        """The command template for ``component``, with or without the namespace."""
        for name in self._candidates(component):
            if name in self.components:
                return self.components[name]
        return None

    def _candidates(self, component: str) -> list[str]:
        names = [component]
        if self.namespace:
            prefix = f"{self.namespace}/"
            if component.startswith(prefix):
                names.append(component[len(prefix) :])
            else:
                names.append(prefix + component)
        return names

    def command(
        self, component: str, role: str, iips: Mapping[str, Any] | None = None
    ) -> list[str] | None:
        """The argv that starts a participant of ``component`` as ``role``, or ``None`` when
        the library cannot start it (it is expected to announce itself)."""
        template = self.template(component)
        if template is None or component in PSEUDO_COMPONENTS:
            return None
        values = {
            "#ROLE": role,
            "#COMPONENTNAME": component.rsplit("/", 1)[-1],
            "#COMPONENT": component,
            "#IIPS": json.dumps(dict(iips or {})),
        }
        words = _split(_substitute(template, self.variables, prefix="#"))
        return [_substitute(word, values) for word in words]

    def with_component_dir(self, directory: Path) -> ComponentLibrary:
        """Add a component for each file in ``directory`` that has a handler."""
        found, files = dict(self.components), dict(self.files)
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                handler = self.handlers.get(path.suffix)
                if handler is None or not path.is_file():
                    continue
                name = f"{self.namespace}/{path.stem}" if self.namespace else path.stem
                if name not in found:
                    found[name] = handler.replace("#FILENAME", shlex.quote(str(path)))
                    files[name] = path
        return ComponentLibrary(self.namespace, self.variables, self.handlers, found, files)


BUILTIN_DIR = Path(__file__).resolve().parents[1] / "components"
BUILTIN_NAMESPACE = "core"


def with_builtins(library: ComponentLibrary) -> ComponentLibrary:
    """``library`` plus the gateway's own components (``core/Repeat``, ``core/Drop``), unless
    the library defines components of the same names."""
    builtins = ComponentLibrary(namespace=BUILTIN_NAMESPACE).with_component_dir(BUILTIN_DIR)
    components = {**builtins.components, **library.components}
    files = {**builtins.files, **library.files}
    return ComponentLibrary(
        library.namespace, library.variables, library.handlers, components, files
    )


def _split(template: str) -> list[str]:
    try:
        return shlex.split(template)
    except ValueError as exc:
        raise DefinitionError("components", f"cannot split command {template!r}: {exc}") from None


def _substitute(text: str, values: Mapping[str, str], prefix: str = "") -> str:
    # Longest names first, so that #COMPONENTNAME is not read as #COMPONENT + "NAME".
    for name in sorted(values, key=len, reverse=True):
        text = text.replace(prefix + name, values[name])
    return text


def load_library(path: Path) -> ComponentLibrary:
    """Read a library file: ``package.json``-style JSON or the YAML equivalent."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError("", f"{path}: cannot read: {exc.strerror}") from None
    if path.suffix in (".yml", ".yaml"):
        try:
            data = load_yaml(text, str(path))
        except YamlError as exc:
            raise DefinitionError("", f"{exc.where}: not valid YAML: {exc.problem}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DefinitionError("", f"{path}: not valid JSON: {exc}") from None
    return library_from_dict(data, str(path))


def library_from_dict(data: Any, source: str) -> ComponentLibrary:
    if not isinstance(data, Mapping):
        raise DefinitionError("", f"{source}: expected an object at the top level")
    settings = data.get("msgflo", data)
    if not isinstance(settings, Mapping):
        raise DefinitionError("msgflo", f"{source}: expected an object")
    # The original defaults the namespace to package.json's "name"; "" disables it.
    namespace = settings.get("namespace", data.get("name", ""))
    return ComponentLibrary(
        namespace=_text(namespace, "namespace", source),
        variables=_strings(settings.get("variables", {}), "variables", source),
        handlers={**DEFAULT_HANDLERS, **_strings(settings.get("handlers", {}), "handlers", source)},
        components=_strings(settings.get("components", {}), "components", source),
    )


def _text(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str):
        raise DefinitionError(key, f"{source}: must be a string, got {value!r}")
    return value


def _strings(value: Any, key: str, source: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise DefinitionError(key, f"{source}: must be an object of strings")
    return {str(k): _text(v, f"{key}.{k}", source) for k, v in value.items()}
