"""Problems found in a graph, and how they become ``file:line:col`` errors with a caret.

Checks and parsers produce ``Problem`` values: a message, where it is (a text offset, or a key
path such as ``("connections", 3, "tgt", "process")`` that the file format maps to an offset),
and an optional hint. ``SourceText.errors`` turns them into ``GraphError``s that carry the
offending line, so every front end (CLI, coordinator, tests) shows the same messages.
"""

from __future__ import annotations

import bisect
import contextlib
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from gateway.common.problems import KeyPath, format_path
from gateway.errors import GraphError, InvalidGraphError

Path = KeyPath  # e.g. ("connections", 3, "tgt", "process")


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or suspicious) in a graph, before it is tied to a file position."""

    message: str
    path: Path = ()
    offset: int | None = None
    hint: str = ""
    severity: Severity = Severity.ERROR


@dataclass(frozen=True)
class SourceText:
    """The text of one graph file, able to turn offsets into lines and columns."""

    text: str
    file: str = ""
    # Offsets of "\n" (a "\r\n" file shows its lines without the "\r").
    _newlines: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        breaks = [i for i, ch in enumerate(self.text) if ch == "\n"]
        object.__setattr__(self, "_newlines", breaks)

    def locate(self, offset: int) -> tuple[int, int, str]:
        """1-based line and column of ``offset``, and the text of that line."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_left(self._newlines, offset)
        start = self._newlines[line - 1] + 1 if line else 0
        end = self._newlines[line] if line < len(self._newlines) else len(self.text)
        return line + 1, offset - start + 1, self.text[start:end].rstrip("\r")

    def error(self, problem: Problem, locate_path: PathLocator | None = None) -> GraphError:
        offset = problem.offset
        if offset is None and locate_path is not None:
            offset = locate_path(problem.path)
        message = problem.message
        if offset is None:
            if problem.path:
                message = f"{format_path(problem.path)}: {message}"
            return GraphError(message, file=self.file, hint=problem.hint)
        line, col, source_line = self.locate(offset)
        return GraphError(
            message, file=self.file, line=line, col=col, source_line=source_line, hint=problem.hint
        )

    def errors(
        self, problems: Iterable[Problem], locate_path: PathLocator | None = None
    ) -> tuple[GraphError, ...]:
        """Every problem as a located error, in file order (unlocated ones last)."""
        located = [self.error(p, locate_path) for p in problems]
        return tuple(sorted(located, key=lambda e: (e.line == 0, e.line, e.col)))


PathLocator = Callable[[Path], "int | None"]


def path_locator(positions: Mapping[Path, int]) -> PathLocator:
    """Find the offset of a path, falling back to its nearest recorded ancestor."""

    def locate(path: Path) -> int | None:
        for end in range(len(path), 0, -1):
            offset = positions.get(path[:end])
            if offset is not None:
                return offset
        return None

    return locate


def split(problems: Iterable[Problem]) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for p in problems:
        (errors if p.severity is Severity.ERROR else warnings).append(p)
    return errors, warnings


def raise_for(errors: tuple[GraphError, ...]) -> None:
    """Raise ``InvalidGraphError`` carrying all of ``errors`` if there are any."""
    if errors:
        raise InvalidGraphError(errors)


@contextlib.contextmanager
def nesting_guard(file: str) -> Iterator[None]:
    """Turn Python's recursion limit, hit by absurdly nested JSON values, into a graph error."""
    try:
        yield
    except RecursionError:
        problem = "values are nested too deeply to load (more than several hundred levels)"
        raise InvalidGraphError((GraphError(problem, file=file),)) from None
