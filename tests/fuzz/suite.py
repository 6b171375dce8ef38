"""The three tests every fuzz module has, made for one target:

* ``test_corpus``: replays each file of ``tests/fuzz/corpus/<parser>/`` (valid examples and
  every crasher found so far); pytest runs it first, as it comes first in the module;
* ``test_worst_inputs``: the target's costliest inputs, each clean and under the target's
  ``memory_bound`` of tracemalloc peak;
* ``test_fuzz``: ``examples`` generated cases (derandomized, so a run is reproducible; the
  large randomized budget is ``bench/fuzz.py``).

A crasher in a module this suite may not fix yet is listed in ``open_crashers`` (file name ->
reason): its corpus case is ``xfail(strict=True)``, so the fix shows up as a failure to remove
the mark, and ``open_signature`` (the start of the crash's detail) is tolerated by
``test_fuzz`` meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.harness import Target, peak_memory, run_case

CLEAN = ("ok", "refused")


def _cases(target: Target, open_crashers: dict[str, str]) -> Iterator[object]:
    for path in target.corpus():
        reason = open_crashers.get(path.name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(path, id=path.name, marks=marks)


def make_suite(
    target: Target,
    *,
    examples: int,
    open_crashers: dict[str, str] | None = None,
    open_signature: str = "",
) -> tuple[Callable[..., None], Callable[..., None], Callable[..., None]]:
    known = open_crashers or {}

    @pytest.mark.parametrize("path", list(_cases(target, known)))
    def test_corpus(path: Path, fuzz_workdir: Path) -> None:
        outcome = run_case(target, path.read_bytes(), fuzz_workdir)
        assert outcome.kind in CLEAN, f"{path.name}: {outcome.kind}: {outcome.detail}"

    worst_ids = [f"worst{n}" for n in range(len(target.worst))]

    @pytest.mark.parametrize("data", target.worst, ids=worst_ids)
    def test_worst_inputs(data: bytes, fuzz_workdir: Path) -> None:
        outcome, peak = peak_memory(target, data, fuzz_workdir)
        assert outcome.kind in CLEAN, f"{outcome.kind}: {outcome.detail}"
        assert peak < target.memory_bound, f"peak {peak} bytes >= {target.memory_bound}"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=target.strategy())
    def test_fuzz(data: bytes, fuzz_workdir: Path) -> None:
        outcome = run_case(target, data, fuzz_workdir)
        if open_signature and outcome.detail.startswith(open_signature):
            return
        assert outcome.kind in CLEAN, f"{outcome.kind} on {data[:300]!r}: {outcome.detail}"

    return test_corpus, test_worst_inputs, test_fuzz
