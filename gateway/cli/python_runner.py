"""``msgflo-python FILE.py ROLE``: run the participant class defined in a Python file.

As in msgflo-python, the participant class is found in the file; here it is the first subclass of
``Participant`` *defined in that file* (in source order), so an imported class is never picked by
mistake (the original took the first name, alphabetically, that had ``send`` and ``process``).
Files written for msgflo-python (``import msgflo``) run unmodified.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from gateway.cli.options import EXIT_USAGE
from gateway.errors import GatewayError
from gateway.participant import engine, msgflo_compat
from gateway.participant.participant import Participant

PROG = "msgflo-python"
USAGE = (
    f"usage: {PROG} FILE.py ROLE [--broker URL] [-i IIPS] [--discovery-period SECONDS] [--shared]"
)


def load_module(path: Path) -> ModuleType:
    if not path.is_file():
        raise GatewayError(f"{path}: no such file")
    sys.path.insert(0, str(path.resolve().parent))  # the file may import its neighbours
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise GatewayError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise GatewayError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except ImportError as exc:
        raise GatewayError(f"{path}: cannot import {exc.name!r}: {exc}") from None
    return module


def participant_class(module: ModuleType, path: Path) -> type[Participant]:
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Participant)
        and obj.__module__ == module.__name__
    ]
    classes.sort(key=lambda cls: inspect.getsourcelines(cls)[1])
    if not classes:
        raise GatewayError(f"{path}: defines no subclass of msgflo.Participant")
    return classes[0]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return EXIT_USAGE
    path, role, rest = Path(args[0]), args[1], args[2:]
    msgflo_compat.install()
    try:
        cls = participant_class(load_module(path), path)
    except GatewayError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return engine.main(cls, role, rest)
