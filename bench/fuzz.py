"""Fuzzing with a large budget: every parser of outside input, the targets of ``tests/fuzz``.

    .venv/bin/python -m bench.fuzz                  # 20,000 cases per parser, <= 300 s each
    .venv/bin/python -m bench.fuzz --quick             # smoke run: 500 cases per parser
    .venv/bin/python -m bench.fuzz --cases 5000 --only foreign --only config
    .venv/bin/python -m bench.fuzz --save-crashers /tmp/crashers --json out.json

For each target (``tests/fuzz/targets.py``) the script replays the target's corpus
(``tests/fuzz/corpus/<parser>/``) and its built-in worst inputs, then runs ``--cases``
generated cases from the same Hypothesis generators the tests use (generation phase only: no
shrinking, no example database), stopping early once ``--seconds`` have passed for that target.
Each case runs under the tests' oracle (``tests/fuzz/harness.py``): a typed result or one of
the parser's own errors with a one-line message; any other exception, or a message of several
lines, is a crash, and a case over ``--case-cpu`` seconds of CPU time is a hang.

Per target it prints cases run, seconds, cases/s, crashes, hangs and the peak Python heap of
one case (``tracemalloc``; measured on the corpus, the worst inputs and every ``--trace-every``
generated case, since tracing every case would halve the rate). Crashes are grouped by
exception type and first words of the message; the smallest input of each group is shown and,
with ``--save-crashers DIR``, written to ``DIR/<parser>/`` ready to be copied into the corpus.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.fuzz.harness import Outcome, Target, peak_memory, run_case
from tests.fuzz.targets import TARGETS


class _OutOfTime(BaseException):
    """Ends a target's generated cases once its time is up (not an Exception: Hypothesis lets it
    through instead of treating it as a failure to shrink)."""


@dataclass
class Tally:
    name: str
    cases: int = 0
    seconds: float = 0.0
    crashes: int = 0
    hangs: int = 0
    refused: int = 0
    peak_bytes: int = 0
    groups: dict[str, bytes] = field(default_factory=dict)  # crash signature -> smallest input

    def add(self, outcome: Outcome, data: bytes) -> None:
        self.cases += 1
        if outcome.kind == "refused":
            self.refused += 1
        if outcome.kind not in ("crash", "hang"):
            return
        if outcome.kind == "crash":
            self.crashes += 1
        else:
            self.hangs += 1
        key = f"{outcome.kind}: {_signature(outcome.detail)}"
        if key not in self.groups or len(data) < len(self.groups[key]):
            self.groups[key] = data


def _signature(detail: str) -> str:
    """The exception type and the first words of its message, numbers and quotes elided."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "_", detail)
    return " ".join(text.split()[:8])


def _case(target: Target, data: bytes, workdir: Path, tally: Tally, args: argparse.Namespace,
          *, traced: bool) -> None:  # fmt: skip
    if traced:
        outcome, peak = peak_memory(target, data, workdir)
        tally.peak_bytes = max(tally.peak_bytes, peak)
    else:
        outcome = run_case(target, data, workdir, cpu_seconds=args.case_cpu)
    tally.add(outcome, data)


def fuzz_target(target: Target, args: argparse.Namespace, workdir: Path) -> Tally:
    tally = Tally(target.name)
    start = time.perf_counter()
    for data in (*target.seeds(), *target.worst):
        _case(target, data, workdir, tally, args, traced=True)
    deadline = start + args.seconds
    generated = [0]

    @seed(args.seed)
    @settings(
        max_examples=args.cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy())
    def run(data: bytes) -> None:
        if time.perf_counter() > deadline:
            raise _OutOfTime
        generated[0] += 1
        _case(target, data, workdir, tally, args, traced=generated[0] % args.trace_every == 0)

    with contextlib.suppress(_OutOfTime):
        run()
    tally.seconds = time.perf_counter() - start
    return tally


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f}"


def table(tallies: Sequence[Tally]) -> str:
    lines = [
        "| parser | cases | seconds | cases/s | refused | crashes | hangs | peak MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in tallies:
        rate = t.cases / t.seconds if t.seconds else 0.0
        lines.append(
            f"| {t.name} | {t.cases:,} | {t.seconds:.1f} | {rate:,.0f} | {t.refused:,} | "
            f"{t.crashes} | {t.hangs} | {_mib(t.peak_bytes)} |"
        )
    return "\n".join(lines)


def save_crashers(tallies: Sequence[Tally], folder: Path) -> None:
    for t in tallies:
        for n, data in enumerate(t.groups.values()):
            path = folder / t.name / f"crash-{n:02d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=20_000, help="generated cases per parser")
    p.add_argument("--seconds", type=float, default=300.0, help="time per parser at most")
    p.add_argument("--case-cpu", type=float, default=2.0, help="CPU s of one case: a hang above")
    p.add_argument("--trace-every", type=int, default=50, help="tracemalloc every Nth case")
    p.add_argument("--only", action="append", choices=sorted(TARGETS), help="repeatable")
    p.add_argument("--seed", type=int, default=13, help="Hypothesis seed")
    p.add_argument("--quick", action="store_true", help="500 cases per parser")
    p.add_argument("--save-crashers", type=Path, metavar="DIR")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.quick:
        args.cases = min(args.cases, 500)
    names = args.only or list(TARGETS)
    tallies = []
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        for name in names:
            tally = fuzz_target(TARGETS[name], args, Path(tmp))
            tallies.append(tally)
            print(f"{name}: {tally.cases} cases in {tally.seconds:.1f} s, "
                  f"{tally.crashes} crashes, {tally.hangs} hangs", flush=True)  # fmt: skip
            for key, data in tally.groups.items():
                print(f"    {key}  <- {len(data)} bytes: {data[:120]!r}", flush=True)
    print()
    print(table(tallies))
    print(
        f"\n--cases {args.cases}, --seconds {args.seconds:g} per parser, case CPU bound "
        f"{args.case_cpu:g} s, tracemalloc on the corpus, the worst inputs and every "
        f"{args.trace_every}th case, seed {args.seed}; Python {platform.python_version()}"
    )
    if args.save_crashers:
        save_crashers(tallies, args.save_crashers)
    if args.json:
        rows = [{k: v for k, v in asdict(t).items() if k != "groups"} for t in tallies]
        for row, t in zip(rows, tallies, strict=True):
            row["crash_groups"] = {k: len(v) for k, v in t.groups.items()}
        args.json.write_text(json.dumps({"argv": sys.argv[1:], "targets": rows}, indent=2))
    return 1 if any(t.crashes or t.hangs for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
