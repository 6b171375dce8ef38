"""Run one fuzz case under bounds and say what happened; shared by ``tests/fuzz`` and
``bench/fuzz.py``.

A case is one input (bytes) given to one parser target. The outcome is one of

* ``ok``: the parser returned its typed result;
* ``refused``: it raised one of the target's own errors (a ``GatewayError``) whose message is
  one non-empty line;
* ``crash``: any other exception, or an own error whose message is empty or spans lines;
* ``hang``: it used more than the CPU-time bound (``ITIMER_PROF``: process CPU time, so a busy
  neighbour on a shared machine does not make a case "hang").

The CPU bound is enforced by a ``SIGPROF`` timer whose handler raises :class:`CaseTimeout`, a
``BaseException`` so a parser's ``except Exception`` cannot swallow it. Signals only work in the
main thread; elsewhere only the measured time decides.
"""

from __future__ import annotations

import signal
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from hypothesis import strategies as st

from gateway.errors import GatewayError

CASE_CPU_SECONDS = 2.0  # CPU time one case may take before it is a hang
CORPUS = Path(__file__).resolve().parent / "corpus"


class CaseTimeout(BaseException):
    """Raised inside a parser that ran past the case's CPU-time bound."""


@dataclass(frozen=True)
class Target:
    """One parser of outside input, as the fuzzer drives it.

    ``run(data, workdir)`` feeds the bytes to the parser (writing them to a file in
    ``workdir`` first when the parser's entry point reads files) and returns its result;
    ``result`` is the type that result must have and ``errors`` the exceptions that count as a
    clean refusal. ``memory_bound`` is the tracemalloc peak in bytes one case may reach (checked
    on the corpus and on ``worst``, the inputs built to cost the most).
    """

    name: str
    run: Callable[[bytes, Path], object]
    result: type | tuple[type, ...]
    errors: tuple[type[GatewayError], ...]
    memory_bound: int
    inputs: Callable[[list[bytes]], st.SearchStrategy[bytes]]  # seeds -> generator
    worst: tuple[bytes, ...] = ()  # the inputs that cost the most memory or time

    def seeds(self) -> list[bytes]:
        return [p.read_bytes() for p in self.corpus()]

    def strategy(self) -> st.SearchStrategy[bytes]:
        return self.inputs(self.seeds())

    def corpus(self) -> list[Path]:
        """The seed inputs for this target, in name order (valid examples, then crashers)."""
        folder = CORPUS / self.name
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


@dataclass(frozen=True)
class Outcome:
    kind: str  # ok, refused, crash, hang
    detail: str  # the exception type and message for refused, crash and hang
    seconds: float  # CPU seconds


def one_line(message: str) -> bool:
    """Whether ``message`` is one non-empty line (no line break of any kind)."""
    return bool(message.strip()) and len(message.splitlines()) == 1


@contextmanager
def cpu_bound(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the block once it has used ``seconds`` of CPU time."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    armed = [True]

    def fire(signum: int, frame: FrameType | None) -> None:
        if armed[0]:
            raise CaseTimeout(f"more than {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, fire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def run_case(  # noqa: PLR0911 (one return per outcome)
    target: Target, data: bytes, workdir: Path, *, cpu_seconds: float = CASE_CPU_SECONDS
) -> Outcome:
    """Feed ``data`` to ``target`` within the CPU bound and classify what happened."""
    start = time.process_time()
    try:
        with cpu_bound(cpu_seconds):
            result = target.run(data, workdir)
    except CaseTimeout as exc:
        return Outcome("hang", str(exc), time.process_time() - start)
    except target.errors as exc:
        took = time.process_time() - start
        message = str(exc)
        if not one_line(message):
            return Outcome("crash", f"{type(exc).__name__} not one line: {message!r}", took)
        return Outcome("refused", f"{type(exc).__name__}: {message}", took)
    except RecursionError as exc:  # before Exception: no traceback formatting at depth
        return Outcome("crash", f"RecursionError: {exc}", time.process_time() - start)
    except Exception as exc:
        return Outcome("crash", f"{type(exc).__name__}: {exc}"[:500], time.process_time() - start)
    took = time.process_time() - start
    if took > cpu_seconds:
        return Outcome("hang", f"{took:.2f} s of CPU time", took)
    if not isinstance(result, target.result):
        return Outcome("crash", f"returned {type(result).__name__}", took)
    return Outcome("ok", "", took)


def peak_memory(target: Target, data: bytes, workdir: Path) -> tuple[Outcome, int]:
    """The outcome of one case and the tracemalloc peak (bytes) it reached."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        outcome = run_case(target, data, workdir, cpu_seconds=CASE_CPU_SECONDS * 5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if started:
            tracemalloc.stop()
    return outcome, peak


def assert_clean(target: Target, data: bytes, workdir: Path) -> Outcome:
    """The test oracle: a typed result or a one-line own error, nothing else."""
    outcome = run_case(target, data, workdir)
    assert outcome.kind in ("ok", "refused"), (
        f"{target.name}: {outcome.kind} on {data[:200]!r}: {outcome.detail}"
    )
    return outcome
