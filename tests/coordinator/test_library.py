"""The component library (pure apart from reading files): templates, namespaces, dirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.coordinator.library import ComponentLibrary, library_from_dict, load_library
from gateway.errors import DefinitionError

PACKAGE = {
    "name": "gateway",
    "msgflo": {
        "namespace": "gw",
        "variables": {"BRIDGE": "gw-bridge --role #ROLE --broker mqtt://localhost"},
        "components": {
            "gw/Relay": "#BRIDGE relay --gpio 17",
            "gw/Printer": "gw-printer #ROLE --iips #IIPS",
            "dlock13/DoorLock": "dlock13 #ROLE #ROLE.gpio #COMPONENTNAME",
        },
    },
}


def test_templates_with_variables_and_builtins() -> None:
    library = library_from_dict(PACKAGE, "package.json")
    assert library.command("gw/Relay", "lamp") == [
        "gw-bridge",
        "--role",
        "lamp",
        "--broker",
        "mqtt://localhost",
        "relay",
        "--gpio",
        "17",
    ]
    assert library.command("dlock13/DoorLock", "door") == [
        "dlock13",
        "door",
        "door.gpio",
        "DoorLock",
    ]


def test_iips_stay_one_argument() -> None:
    library = library_from_dict(PACKAGE, "package.json")
    argv = library.command("gw/Printer", "p", {"in": "hello world", "n": 0})
    assert argv == ["gw-printer", "p", "--iips", '{"in": "hello world", "n": 0}']


def test_bare_and_namespaced_names_resolve_alike() -> None:
    library = library_from_dict(PACKAGE, "package.json")
    assert library.command("Relay", "r") == library.command("gw/Relay", "r")
    assert library.command("Unknown", "r") is None


def test_namespace_defaults_to_package_name_and_can_be_disabled() -> None:
    assert library_from_dict({"name": "peers", "msgflo": {}}, "p").namespace == "peers"
    assert library_from_dict({"name": "peers", "msgflo": {"namespace": ""}}, "p").namespace == ""


def test_pseudo_components_are_never_started() -> None:
    library = ComponentLibrary(components={"msgflo/RoundRobin": "whatever"})
    assert library.command("msgflo/RoundRobin", "rr") is None


def test_component_dir_uses_handlers(tmp_path: Path) -> None:
    (tmp_path / "Repeat.py").write_text("")
    (tmp_path / "Door.yml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    library = ComponentLibrary(namespace="").with_component_dir(tmp_path)
    assert library.command("Repeat", "rep") == ["msgflo-python", str(tmp_path / "Repeat.py"), "rep"]
    assert library.command("Door", "d1") == ["msgflo-register", "--role", f"d1:{tmp_path}/Door.yml"]
    assert library.command("notes", "n") is None


def test_yaml_library(tmp_path: Path) -> None:
    # In YAML a " #" starts a comment: templates with variables must be quoted.
    (tmp_path / "library.yaml").write_text("components:\n  Echo: 'echo #ROLE'\n")
    assert load_library(tmp_path / "library.yaml").command("Echo", "e") == ["echo", "e"]


def test_bad_library_files(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{nope")
    with pytest.raises(DefinitionError, match=r"package\.json: not valid JSON"):
        load_library(tmp_path / "package.json")
    (tmp_path / "package.json").write_text(json.dumps({"msgflo": {"components": {"A": 3}}}))
    with pytest.raises(DefinitionError, match=r"components\.A"):
        load_library(tmp_path / "package.json")


def test_builtin_components_are_always_there() -> None:
    from gateway.coordinator.library import BUILTIN_DIR, with_builtins

    library = with_builtins(library_from_dict(PACKAGE, "package.json"))
    assert library.command("core/Repeat", "r") == [
        "msgflo-python",
        str(BUILTIN_DIR / "Repeat.py"),
        "r",
    ]
    assert library.command("core/Drop", "d") is not None
    assert library.command("gw/Relay", "lamp") is not None  # the library's own stay
    assert library.source_file("core/Drop") == BUILTIN_DIR / "Drop.py"
