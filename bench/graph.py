"""Graph parse and serialize: our .fbp parser and savers against the reference npm ``fbp`` 1.8.0.

    .venv/bin/python -m bench.graph                   # 10,000 processes, 20,000 edges, 5 runs
    .venv/bin/python -m bench.graph --quick           # smoke run (2,000 / 4,000, 1 run)
    .venv/bin/python -m bench.graph --json out.json
    .venv/bin/python -m bench.graph --save-graph big.fbp   # only write the generated graph

The script generates one deterministic .fbp graph (``--seed``) shaped like a large hackerspace
deployment: processes declared inline on first use (``door(dlock13/DoorLock) OUT -> IN ...``)
or on their own line, some with metadata, hub processes (logger, stats, bridges) that get fan-in
from everywhere and sources that fan out, chained connections, a few anonymous nodes, omitted
and indexed ports, several statements on one line, quoted and JSON IIPs, comments, annotations
and exported ports. It writes the graph to a temp file, checks once that both parsers read it
to the same JSON, and then measures, alternating ours and the reference (AB BA AB ...):

ours, in this process (``time.perf_counter``), the library warm as a long-running coordinator
has it:
  * ``parse_fbp(text)``: the public parse: the grammar, pairing, semantic checks and the frozen
    ``Graph``; and separately ``parse_fbp_text(text)``, the raw parse stage alone;
  * ``to_json(graph)`` (canonical: sorted, one item per line) and ``json.dumps(graph_to_dict(
    graph))`` (compact, the analogue of ``JSON.stringify`` of the parse result);
  * ``to_fbp(graph)``;
ours, in a fresh child process doing only this: the first ``parse_fbp`` after start-up and its
peak resident memory (``VmHWM``), then ``to_json``;
the reference, in a fresh node child that times itself (``process.hrtime``, node start-up and
``require`` excluded): its first ``fbp.parse(text, {caseSensitive: false})`` (a JS object,
including the reference's own semantic checks), ``JSON.stringify`` of it, its peak resident
memory (``VmHWM``) after that parse, then ``--warm`` more parses and
stringifies in the same process (V8's JIT has compiled the parser by then), and
``fbp.serialize`` (its lossy .fbp writer) on a copy without the process metadata it cannot handle.

The peak Python heap of one ``parse_fbp`` (``tracemalloc``, which slows the parse down, so it is
measured in a separate untimed pass) is reported too. Every figure is the median over ``--runs``;
ratios are ours / reference, so below 1 means ours is faster or smaller. Reading the file is
excluded on both sides. Every loop is bounded and each child has a timeout.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, machine, node_version
from gateway.graph import Graph, graph_to_dict, parse_fbp, to_fbp, to_json
from gateway.graph.fbp_parser import parse_fbp_text

REFERENCE_MODULE = ROOT / "tests" / "npm" / "node_modules" / "fbp"
CHILD_TIMEOUT = 600.0  # s for one child process at most
GOAL = 1.0  # issue 3: parse faster than the reference, i.e. a time ratio below 1

# -- the generated graph ---------------------------------------------------------------------------

ROOMS = ("lab", "workshop", "kitchen", "hall", "office", "studio", "garden", "garage", "attic")
DEVICES = (
    ("door", "dlock13/DoorLock"),
    ("motion", "sensors/Motion"),
    ("temp", "sensors/DS18B20"),
    ("light", "io/Lamp"),
    ("button", "io/Button"),
    ("sign", "io/Sign"),
    ("relay", "io/Relay"),
    ("fan", "io/Fan"),
    ("Printer", "makers/Printer3D"),
    ("laser", "makers/LaserCutter"),
    ("rfid", "access/RfidReader"),
    ("graph", "ui/Graph"),
    ("timer", "core/Timer"),
    ("filter", "core/Filter"),
    ("mqtt-out", "msgflo/MqttBridge"),
)
HUBS = (
    ("log", "msgflo/Logger"),
    ("stats", "bitraf/Stats"),
    ("announcer", "bitraf/Announcer"),
    ("mqttbridge", "msgflo/MqttBridge"),
    ("alarm", "security/Alarm"),
    ("dashboard", "ui/Dashboard"),
)
OUT_PORTS = ("OUT", "OUT", "OUT", "ERROR", "STATE", "ISOPEN", "MOTION", "VALUE", "changed")
IN_PORTS = ("IN", "IN", "IN", "ON", "OFF", "OPEN", "SET", "VALUE", "enable")
ANON_COMPONENTS = ("core/Debounce", "math/ToFloat", "core/Split", "core/Throttle")
TEXT_IIPS = ("30", "300", "on", "lab light", "it\\'s open", "mqtt://localhost", "#ff8800")
JSON_IIPS = ("5", "-1.5", '"auto"', '{"interval": 5, "unit": "s"}', "[1, 2, 3]", "\ttrue")
HUB_SHARE = 0.15  # share of edge ends that go to a hub (fan-in)
FANOUT_SHARE = 0.1  # share of edge sources drawn from a few busy sources (fan-out)


@dataclass
class GraphSpec:
    processes: int
    edges: int
    seed: int


@dataclass
class Generated:
    text: str
    processes: int
    edges: int
    iips: int
    lines: int


class _Generator:
    """Writes lines until exactly ``edges`` edges exist over exactly ``processes`` processes."""

    def __init__(self, spec: GraphSpec) -> None:
        self.rng = random.Random(spec.seed)
        self.spec = spec
        self.anon_left = max(spec.processes // 400, 1)
        named = spec.processes - self.anon_left
        self.names = [h[0] for h in HUBS][:named]
        self.component = {h[0]: h[1] for h in HUBS[:named]}
        for i in range(named - len(self.names)):
            short, comp = DEVICES[i % len(DEVICES)]
            name = f"{ROOMS[i // len(DEVICES) % len(ROOMS)]}_{short}{i}"
            self.names.append(name)
            self.component[name] = comp
        self.hubs = self.names[: len(HUBS)]
        self.busy = self.names[len(HUBS) : len(HUBS) + 20]
        # 60 % of the processes are declared where they are first used, the rest on own lines.
        self.inline = {n for n in self.names if self.rng.random() < 0.6}
        self.declared: set[str] = set()
        self.edges = 0
        self.iips = 0
        self.cursor = 0  # next process in order, so every process gets used
        self.lines: list[str] = []
        # Line shapes besides the plain "a OUT -> IN b", with their shares of the lines.
        self.shapes: list[tuple[float, Callable[[], str]]] = [
            (0.05, self.iip),
            (0.08, self.chain),
            (0.03, self.default_ports),
            (0.03, self.pair),
            (0.04, self.commented),
            (0.01, self.anonymous),
        ]

    def metadata(self, name: str) -> str:
        r = self.rng.random()
        if r < 0.08:
            return f":x={self.rng.randrange(0, 4000)},y={self.rng.randrange(0, 3000)}"
        if r < 0.1:
            return f":label={name.replace('-', '_')},icon=cog"
        return ""

    def declaration(self, name: str) -> str:
        self.declared.add(name)
        return f"{name}({self.component[name]}{self.metadata(name)})"

    def ref(self, name: str) -> str:
        """A process as written in an edge: inline-declared on first use if so chosen."""
        if name in self.inline and name not in self.declared:
            return self.declaration(name)
        return name

    def pick(self, *, source: bool) -> str:
        r = self.rng.random()
        if r < HUB_SHARE and not source:
            return self.rng.choice(self.hubs)
        if source and r < FANOUT_SHARE:
            return self.rng.choice(self.busy)
        if self.cursor < len(self.names) and self.rng.random() < 0.7:
            self.cursor += 1
            return self.names[self.cursor - 1]
        return self.rng.choice(self.names)

    def port(self, ports: Sequence[str]) -> str:
        port = self.rng.choice(ports)
        return f"{port}[{self.rng.randrange(0, 4)}]" if self.rng.random() < 0.05 else port

    def edge(self) -> str:
        src, tgt = self.pick(source=True), self.pick(source=False)
        self.edges += 1
        return f"{self.ref(src)} {self.port(OUT_PORTS)} -> {self.port(IN_PORTS)} {self.ref(tgt)}"

    def iip(self) -> str:
        self.iips += 1
        tgt = self.ref(self.pick(source=False))
        if self.rng.random() < 0.8:
            return f"'{self.rng.choice(TEXT_IIPS)}' -> {self.port(IN_PORTS)} {tgt}"
        return f"{self.rng.choice(JSON_IIPS)} -> {self.port(IN_PORTS)} {tgt}"

    def chain(self) -> str:
        a, b, c = self.pick(source=True), self.pick(source=False), self.pick(source=False)
        self.edges += 2
        return (
            f"{self.ref(a)} {self.port(OUT_PORTS)} -> {self.port(IN_PORTS)} {self.ref(b)} "
            f"{self.port(OUT_PORTS)} -> {self.port(IN_PORTS)} {self.ref(c)}"
        )

    def anonymous(self) -> str:
        if self.anon_left <= 0:
            return self.edge()
        self.anon_left -= 1
        self.edges += 2
        a, b = self.pick(source=True), self.pick(source=False)
        anon = self.rng.choice(ANON_COMPONENTS)
        return f"{self.ref(a)} {self.port(OUT_PORTS)} -> IN ({anon}) OUT -> {self.ref(b)}"

    def default_ports(self) -> str:
        self.edges += 1
        return f"{self.ref(self.pick(source=True))} -> {self.ref(self.pick(source=False))}"

    def statement(self) -> str:
        """One line's worth of connections, in the mix a large hand-written graph has."""
        r = self.rng.random()
        if self.spec.edges - self.edges < 2:
            return self.edge() if r < 0.9 else self.iip()
        for share, shape in self.shapes:
            if r < share:
                return shape()
            r -= share
        return self.edge()

    def pair(self) -> str:
        return f"{self.edge()}, {self.edge()}"

    def commented(self) -> str:
        return f"{self.edge()}  # {self.rng.choice(ROOMS)} wiring"

    def generate(self) -> Generated:
        self.lines += [
            f"# Generated by bench/graph.py (seed {self.spec.seed}): "
            f"{self.spec.processes} processes, {self.spec.edges} edges",
            "# @runtime msgflo",
            "# @name bench hackerspace",
            "",
        ]
        for i, name in enumerate(self.names[: min(20, len(self.names))]):
            self.lines.append(f"INPORT={name}.IN:IN{i}" if i % 2 else f"OUTPORT={name}.OUT:OUT{i}")
        for n in range(4 * self.spec.edges + 10):  # bounded: each statement adds >= 1 edge or IIP
            if self.edges >= self.spec.edges:
                break
            if n % 400 == 0:
                section = n // 400 + 1
                self.lines += ["", f"# section {section}: {ROOMS[section % len(ROOMS)]}"]
                self.lines += [self.declaration(n) for n in self.undeclared_standalone(40)]
            self.lines.append(self.statement())
        self.finish()
        return Generated(
            "\n".join(self.lines) + "\n",
            self.spec.processes,
            self.edges,
            self.iips,
            len(self.lines),
        )

    def undeclared_standalone(self, count: int) -> list[str]:
        todo = [n for n in self.names[self.cursor :] if n not in self.inline]
        return [n for n in todo[:count] if n not in self.declared]

    def finish(self) -> None:
        while self.anon_left > 0:  # bounded: decrements every turn
            self.anon_left -= 1
            target = self.ref(self.rng.choice(self.names))
            self.lines.append(f"'0' -> IN ({self.rng.choice(ANON_COMPONENTS)}) OUT -> {target}")
            self.iips += 1
            self.edges += 1
        rest = [n for n in self.names if n not in self.declared]
        if rest:
            self.lines += ["", "# declared, not yet wired"]
            self.lines += [self.declaration(n) for n in rest]


def generate(spec: GraphSpec) -> Generated:
    return _Generator(spec).generate()


# -- measurements ----------------------------------------------------------------------------------

NODE_SCRIPT = r"""
"use strict";
const fs = require("fs");
const [modulePath, file, warm, dumpPath] = process.argv.slice(2);
const fbp = require(modulePath);
const since = (t) => Number(process.hrtime.bigint() - t) / 1e9;
// Peak RSS of this process image: VmHWM (Linux). resourceUsage().maxRSS is inherited from the
// parent across fork+exec, so a child of a big Python process would report the parent's peak.
const maxrss = () => {
  const m = /VmHWM:\s*(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
};
const out = { rss_start: maxrss() };
let t = process.hrtime.bigint();
const text = fs.readFileSync(file, "utf8");
out.read_s = since(t);
t = process.hrtime.bigint();
let graph = fbp.parse(text, { caseSensitive: false });
out.parse_s = since(t);
out.maxrss_parse = maxrss();
out.heap_used_parse = process.memoryUsage().heapUsed;
t = process.hrtime.bigint();
let json = JSON.stringify(graph);
out.stringify_s = since(t);
out.maxrss_stringify = maxrss();
if (dumpPath) fs.writeFileSync(dumpPath, json);
out.warm_parse_s = [];
out.warm_stringify_s = [];
for (let i = 0; i < Number(warm); i++) {
  t = process.hrtime.bigint();
  graph = fbp.parse(text, { caseSensitive: false });
  out.warm_parse_s.push(since(t));
  t = process.hrtime.bigint();
  json = JSON.stringify(graph);
  out.warm_stringify_s.push(since(t));
}
// fbp.serialize reads metadata.label of every process that has metadata (a TypeError when it
// is absent) and upper-cases ports in place: give it a copy without process metadata.
const copy = JSON.parse(json);
for (const name of Object.keys(copy.processes)) delete copy.processes[name].metadata;
t = process.hrtime.bigint();
fbp.serialize(copy);
out.serialize_s = since(t);
out.maxrss_end = maxrss();
process.stdout.write(JSON.stringify(out));
"""


def run_child(argv: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure_npm(
    node: str, script: Path, file: Path, warm: int, dump: Path | None
) -> dict[str, Any]:
    argv = [node, str(script), str(REFERENCE_MODULE), str(file), str(warm)]
    return run_child(argv + ([str(dump)] if dump else []))


def measure_ours_child(file: Path) -> dict[str, Any]:
    return run_child([sys.executable, "-m", "bench.graph", "_parse", str(file)])


def child_parse(file: str) -> None:
    """The fresh process: start-up done, then only the parse (and a to_json after it)."""
    out: dict[str, Any] = {"rss_start": maxrss()}
    start = time.perf_counter()
    text = Path(file).read_text(encoding="utf-8")
    out["read_s"] = time.perf_counter() - start
    start = time.perf_counter()
    graph = parse_fbp(text, file=file)
    out["parse_s"] = time.perf_counter() - start
    out["maxrss_parse"] = maxrss()
    start = time.perf_counter()
    to_json(graph)
    out["to_json_s"] = time.perf_counter() - start
    out["maxrss_end"] = maxrss()
    print(json.dumps(out))


def maxrss() -> int:
    """Peak resident memory of this process image so far, in bytes.

    ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` is carried over from the parent across
    fork and exec, so in a child of this (large) benchmark process it would report the
    parent's peak. ``ru_maxrss`` only where there is no /proc.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure_ours(text: str) -> dict[str, Any]:
    parse_s, graph = timed(lambda: parse_fbp(text))
    assert isinstance(graph, Graph)
    figures = {"parse_s": parse_s, **serialize_times(graph)}
    graph = None  # the raw parse runs with the same heap as the full one did
    figures["raw_parse_s"], _ = timed(lambda: parse_fbp_text(text))
    return figures


def serialize_times(graph: Graph) -> dict[str, float]:
    return {
        "to_json_s": timed(lambda: to_json(graph))[0],
        "dumps_s": timed(lambda: json.dumps(graph_to_dict(graph), ensure_ascii=False))[0],
        "to_fbp_s": timed(lambda: to_fbp(graph))[0],
    }


def traced_peak(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def same_as_reference(text: str, reference_json: str) -> bool:
    ours = json.loads(json.dumps(graph_to_dict(parse_fbp(text))))
    return bool(ours == json.loads(reference_json))


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Settings:
    processes: int
    edges: int
    runs: int
    warm: int
    seed: int


def run_all(settings: Settings, workdir: Path) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (REFERENCE_MODULE / "package.json").is_file():
        raise SystemExit("node or the reference parser is missing: run ./bootstrap.sh setup")
    generated = generate(GraphSpec(settings.processes, settings.edges, settings.seed))
    file, script, dump = workdir / "bench.fbp", workdir / "time_fbp.js", workdir / "npm.json"
    file.write_text(generated.text, encoding="utf-8")
    script.write_text(NODE_SCRIPT, encoding="utf-8")
    graph = parse_fbp(generated.text)
    check = {
        "processes": len(graph.processes),
        "edges": len(graph.edges),
        "iips": len(graph.initials),
        "lines": generated.lines,
        "bytes": len(generated.text.encode("utf-8")),
    }
    del graph
    print(f"graph: {check}", file=sys.stderr)
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "npm": []}
    for run in range(settings.runs):
        for side in ("ours", "npm") if run % 2 == 0 else ("npm", "ours"):
            if side == "npm":
                dumped = dump if run == 0 else None
                runs[side].append(measure_npm(node, script, file, settings.warm, dumped))
            else:
                child = measure_ours_child(file)
                runs[side].append({**measure_ours(generated.text), "child": child})
            print(
                f"run {run + 1} {side}: {progress(side, runs[side][-1])}",
                file=sys.stderr,
                flush=True,
            )
    same = same_as_reference(generated.text, dump.read_text(encoding="utf-8"))
    tracemalloc_peak = traced_peak(lambda: parse_fbp(generated.text))
    return {
        "graph": check,
        "same_json_as_reference": same,
        "ours": runs["ours"],
        "npm": runs["npm"],
        "tracemalloc_peak_parse": tracemalloc_peak,
    }


def progress(side: str, r: dict[str, Any]) -> str:
    if side == "npm":
        warm = statistics.median(r["warm_parse_s"]) if r["warm_parse_s"] else float("nan")
        return (
            f"parse {r['parse_s']:.3f} s (warm {warm:.3f}), stringify {r['stringify_s']:.3f} s, "
            f"maxRSS {r['maxrss_parse'] / 2**20:.0f} MB"
        )
    c = r["child"]
    return (
        f"parse {c['parse_s']:.3f} s fresh / {r['parse_s']:.3f} s warm "
        f"(raw {r['raw_parse_s']:.3f}), to_json {r['to_json_s']:.3f} s, "
        f"dumps {r['dumps_s']:.3f} s, to_fbp {r['to_fbp_s']:.3f} s, "
        f"maxRSS {c['maxrss_parse'] / 2**20:.0f} MB"
    )


# -- summary ---------------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    ours: list[float]
    npm: list[float]
    unit: str = "s"


def _warm(r: dict[str, Any], key: str) -> float:
    values = r[key]
    return float(statistics.median(values)) if values else float("nan")


def rows(results: dict[str, Any]) -> list[Row]:
    ours, npm = results["ours"], results["npm"]
    child = [r["child"] for r in ours]
    mb = 2**20

    def col(runs: list[dict[str, Any]], key: str, scale: float = 1.0) -> list[float]:
        return [r[key] / scale for r in runs]

    return [
        Row("parse, fresh process (1st parse)", col(child, "parse_s"), col(npm, "parse_s")),
        Row("parse, warm", col(ours, "parse_s"), [_warm(r, "warm_parse_s") for r in npm]),
        Row(
            "raw parse stage, warm",
            col(ours, "raw_parse_s"),
            [_warm(r, "warm_parse_s") for r in npm],
        ),
        Row(
            "to JSON text, canonical",
            col(ours, "to_json_s"),
            [_warm(r, "warm_stringify_s") for r in npm],
        ),
        Row(
            "to JSON text, compact",
            col(ours, "dumps_s"),
            [_warm(r, "warm_stringify_s") for r in npm],
        ),
        Row(
            ".fbp -> JSON text, fresh process",
            [c["parse_s"] + c["to_json_s"] for c in child],
            [r["parse_s"] + r["stringify_s"] for r in npm],
        ),
        Row("to .fbp text", col(ours, "to_fbp_s"), col(npm, "serialize_s")),
        Row(
            "peak RSS after the parse",
            col(child, "maxrss_parse", mb),
            col(npm, "maxrss_parse", mb),
            "MB",
        ),
        Row(
            "RSS at start (runtime + parser loaded)",
            col(child, "rss_start", mb),
            col(npm, "rss_start", mb),
            "MB",
        ),
        Row(
            "peak RSS growth by the parse",
            [(c["maxrss_parse"] - c["rss_start"]) / mb for c in child],
            [(r["maxrss_parse"] - r["rss_start"]) / mb for r in npm],
            "MB",
        ),
    ]


def fmt(value: float, unit: str) -> str:
    return f"{value:.3f} s" if unit == "s" else f"{value:.0f} MB"


def format_table(results: dict[str, Any]) -> str:
    lines = [
        "| measurement | ours | npm fbp 1.8.0 | ours/npm | per-run ratios |",
        "|---|---|---|---|---|",
    ]
    for row in rows(results):
        ours, npm = statistics.median(row.ours), statistics.median(row.npm)
        per_run = ", ".join(f"{o / n:.2f}" for o, n in zip(row.ours, row.npm, strict=True))
        lines.append(
            f"| {row.label} | {fmt(ours, row.unit)} | {fmt(npm, row.unit)} | "
            f"{ours / npm:.2f}x | {per_run} |"
        )
    return "\n".join(lines)


LEGEND = """\
Times are medians over {runs} run(s), ours and npm alternating; ratios are ours/npm (below 1:
ours is faster or smaller); reading the file is excluded on both sides.
- parse, fresh process: the first parse in a new process after start-up. Ours: parse_fbp(text),
  i.e. the grammar plus the semantic checks (components declared, edges and exports to declared
  processes) into the immutable Graph. npm: fbp.parse(text), the grammar plus its own checks of
  the same things, into a plain JS object. Same input, same checks, so this is the fair pair;
  ours also builds the frozen model, the reference does not.
- parse, warm: the same, in a process that has parsed before (npm: median of {warm} more parses
  after the first, with V8's JIT warmed up; ours: this process).
- raw parse stage: ours without checks and model (parse_fbp_text); npm as in "parse, warm".
- to JSON text: ours to_json(graph) (canonical: sorted, one item per line) or
  json.dumps(graph_to_dict(graph)) (compact); npm JSON.stringify of its parse result (native
  code, nothing to convert).
- .fbp -> JSON text: parse plus JSON text in the fresh processes (what `msgflo-graph convert`
  does; ours to_json, npm JSON.stringify).
- to .fbp text: ours to_fbp(graph); npm fbp.serialize (lossy: no declarations of unwired
  processes, no metadata, no indices; given a copy without process metadata, which it cannot
  handle). Not the same output, only an order of magnitude.
- RSS: peak resident memory (VmHWM of /proc/self/status) of the fresh processes;
  growth = peak after the parse minus the peak at start (Python + gateway.graph imported,
  node + fbp required)."""


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> tuple[Settings, Path | None, Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.graph",
        description="Parse and serialize a generated .fbp graph: ours vs npm fbp 1.8.0.",
    )
    parser.add_argument("--processes", type=int, default=10_000, help="processes in the graph")
    parser.add_argument("--edges", type=int, default=20_000, help="edges in the graph")
    parser.add_argument("--runs", type=int, default=5, help="alternating repetitions")
    parser.add_argument("--warm", type=int, default=3, help="extra npm parses per node process")
    parser.add_argument("--seed", type=int, default=3, help="seed of the generated graph")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000/4,000, 1 run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--save-graph", type=Path, help="only write the generated graph here")
    args = parser.parse_args(argv)
    if args.quick:
        args.processes, args.edges, args.runs = 2000, 4000, 1
    if args.processes < len(HUBS) + 30 or args.edges < 10 or args.runs < 1 or args.warm < 0:
        parser.error("--processes must be >= 36, --edges >= 10, --runs >= 1, --warm >= 0")
    settings = Settings(args.processes, args.edges, args.runs, args.warm, args.seed)
    return settings, args.json, args.save_graph


def main(argv: Sequence[str]) -> int:
    settings, json_path, save_path = parse_args(argv)
    if save_path is not None:
        spec = GraphSpec(settings.processes, settings.edges, settings.seed)
        save_path.write_text(generate(spec).text, encoding="utf-8")
        return 0
    print(
        f"graph benchmark: {settings.processes} processes, {settings.edges} edges, "
        f"{settings.runs} run(s)",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="bench-graph-") as tmp:
        results = run_all(settings, Path(tmp))
    host = {**machine(), "node": node_version()}
    print()
    print(", ".join(f"{k} {v}" for k, v in host.items()))
    print(f"command: {Path(sys.executable).name} -m bench.graph {' '.join(argv)}".rstrip())
    print(f"graph: {', '.join(f'{v:,} {k}' for k, v in results['graph'].items())}")
    same = "yes" if results["same_json_as_reference"] else "NO"
    print(f"same JSON as the reference parser: {same}")
    print()
    print(format_table(results))
    print()
    verdicts = []
    for row in rows(results)[:2]:
        ratio = statistics.median(row.ours) / statistics.median(row.npm)
        verdicts.append(f"{row.label}: {ratio:.2f}x ({'meets' if ratio < GOAL else 'misses'})")
    print(f"goal (issue 3), parse faster than the reference (ours/npm time): {'; '.join(verdicts)}")
    peak = results["tracemalloc_peak_parse"] / 2**20
    print(f"ours: tracemalloc peak of one parse_fbp: {peak:.0f} MB (Python heap only)")
    print()
    print(LEGEND.format(runs=settings.runs, warm=settings.warm))
    if json_path is not None:
        document = {"machine": host, "settings": asdict(settings), **results}
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if results["same_json_as_reference"] else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_parse":
        child_parse(sys.argv[2])
    else:
        raise SystemExit(main(sys.argv[1:]))
