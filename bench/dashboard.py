"""The dashboard (issue 15): time to the first drawn graph, CPU while messages flow over watched
edges, and page weight, each beside a baseline measured in the same run.

    .venv/bin/python -m bench.dashboard            # 5 loads per graph, 2 rounds of 20 s windows
    .venv/bin/python -m bench.dashboard --quick    # smoke run, about a minute
    .venv/bin/python -m bench.dashboard --json out.json

Everything runs on 127.0.0.1: a private mosquitto, our coordinator as its command runs for a
user (``.venv/bin/msgflo --graph G --broker URL --host 127.0.0.1 --port P --secret S``, which
serves the dashboard on the runtime protocol's port) and Debian's Chromium, headless, driven by
Playwright for Python (``executable_path=/usr/bin/chromium``; no browser is ever downloaded;
``--no-sandbox`` only as root, where Chromium refuses to start without it).

1. Time to the first drawn graph, for two graphs:
   * ``demo``: ``examples/demo.fbp`` with its four participant processes, which the coordinator
     starts from ``examples/components`` (``--library examples/library.yaml``);
   * ``generated``: ``--nodes`` nodes and ``--edges`` edges (200 / 400), a deterministic
     layered graph (each node's outports lead to nodes further down, every outport to one
     edge), whose participants this process announces on ``fbp`` itself (discovery messages
     from ``gateway.participant.define`` and ``encode_discovery``; no participant process).
   Page: a fresh browser context (empty cache) whose sessionStorage holds the secret, as after
   a sign-in (an init script); the time from ``page.goto`` to the first animation frame in
   which every node of the graph is a ``g.node`` of the SVG (``wait_for_function``, polled
   every frame). In-page: the same moment as ``performance.now()`` (from the navigation's
   start). Floor: the same graph read through the runtime protocol by ``msgflo-info``: its
   ``gather`` (connect with the secret, ``runtime:getruntime``, ``component:list``,
   ``component:getsource``) timed in this process, and the ``msgflo-info`` command (Python's
   start included). The page and the floors alternate, ``--repeats`` times; medians, and the
   ratio page / gather. Then, in one more open page, ``RENDERS`` renders of the same graph by
   the page's own code (``static/graph.js``: dagre's layout and the SVG) on a detached ``<svg>``,
   timed warm: the part of the time that is layout and drawing. For the generated graph, also
   the size of one ``/api/status`` answer as served (the page polls it every 2.5 s).
2. CPU while ``--rate`` msg/s flow over watched edges, on the generated graph: a paced publisher
   (its own thread) sends compact JSON messages round-robin to every outport's queue, so each
   message crosses one edge (400 edges, each about every 4 s at 100 msg/s); the coordinator
   forwards them to the inports' queues, where this process counts their arrival. Over a
   ``--window`` of seconds: the coordinator's CPU (utime + stime of its process, ``/proc``) and
   the browser's (the sum over every Chromium process started under this one, ``/proc``; the
   Playwright driver is not counted), as % of one core. ``no dashboard``: the browser has only
   ``about:blank`` open (the baseline); ``dashboard``: the page is open on the graph, signed in,
   and watches every edge (the page sends ``network:edges`` for all of them; the coordinator
   then sends a ``network:data`` per forwarded message), after ``SETTLE`` s for the first
   layout. The two alternate (order reversed every round) over ``--rounds``; medians, ratios.
   Then once ``dashboard, no traffic``: the page open with the publisher paused.
3. Page weight: one more cold load of the demo's page, every request it made until the network
   was idle, with the bytes of each response body as they came over the wire (Playwright's
   ``request.sizes()``; compressed as served) and its headers; then a reload in the same context
   (what revalidation costs). Beside it, the total of all assets: every file the page can load
   (``tests/dashboard/test_assets.py``'s ``page_files``: index.html and what it references,
   mqtt.js included, which only the Phone view loads) as the coordinator serves it (fetched with
   ``Accept-Encoding: gzip``, not decompressed) and gzip -9 as that test computes it, against
   the issue's 300 KB.

Nothing here asserts a time: the script prints figures next to their baselines. Every loop is
bounded in count and time, every process it starts is stopped in a ``finally`` block.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import importlib.metadata
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from playwright.async_api import Browser, BrowserContext, Page, Request, async_playwright
from playwright.async_api import Error as PlaywrightError

from bench.common import (
    BIN,
    ROOT,
    LoggedProcess,
    cpu_seconds,
    markdown_table,
    median,
    mqtt_machine,
)
from gateway.cli.info import gather
from gateway.graph import load_graph
from gateway.graph.model import Initial
from gateway.mosquitto import Mosquitto, free_port
from gateway.participant import define, encode_discovery
from gateway.participant.discovery import DISCOVERY_TOPIC
from gateway.runtime_protocol.client import RuntimeClient
from tests.dashboard.test_assets import MAX_PAGE_BYTES, STATIC, page_files

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # Debian's chromium only
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXAMPLES = ROOT / "examples"
SECRET = "bench-dashboard-secret"
SECRET_KEY = "msgflo-gateway-secret"  # the page's sessionStorage key (static/runtime.js)
VIEWPORT = {"width": 1280, "height": 800}
DEMO_INTERVAL = "1.0"  # s between the demo devices' readings (the demo's default)
DISCOVERY_PERIOD = 900  # s: the simulated participants stay online for the whole run
READY_TIMEOUT = 60.0  # s for a coordinator to answer and list every participant online
DRAW_TIMEOUT = 60.0  # s for a page to draw the graph
FLOOR_TIMEOUT = 30.0  # s for one msgflo-info
ANNOUNCE_AGAIN = 2.0  # s between announcements while a coordinator does not list them all
SETTLE = 3.0  # s between the graph drawn and a CPU window (the first layout, the first poll)
IDLE_NET_TIMEOUT = 15.0  # s for the weighed page to reach network idle
STOP_TIMEOUT = 10.0  # s for a coordinator to exit after SIGTERM
PACER_LIFE = 900.0  # s the publisher thread lives at most
PACE_SLACK = 10  # sends the publisher may fall behind before it gives up on catching up
SEED = 15
TOPIC_OUT = "bdash/out"  # bdash/out/<role>/<port>: outports' queues (the publisher sends here)
TOPIC_IN = "bdash/in"  # bdash/in/<role>/<port>: inports' queues (forwarded messages arrive)
INPORTS = 3  # inports of every generated node
COMPONENTS = ("bench/Sensor", "bench/Filter", "bench/Logic", "bench/Actuator")

CPU_KEYS = (
    "coordinator_pct",
    "browser_pct",
    "browser_renderer_pct",
    "browser_gpu-process_pct",
    "browser_browser_pct",
    "browser_utility_pct",
    "sent_per_s",
    "arrived_per_s",
    "active_edges",
)

# The page's own drawing code (static/graph.js: dagre's layout, then the SVG), run again in the
# open page on the same graph, on a detached <svg>: what one render costs once warm.
RENDER_JS = """async ([code, times]) => {
  const { GraphModel, GraphView } = await import('/static/graph.js');
  const model = new GraphModel();
  model.load(JSON.parse(code));
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  document.body.append(svg);
  const view = new GraphView(svg, () => {});
  const took = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    view.render(model, false);
    took.push(performance.now() - start);
  }
  svg.remove();
  return took;
}"""
RENDERS = 3  # warm renders timed per graph

DRAWN_JS = """(ids) => {
  const have = new Set();
  for (const g of document.querySelectorAll('#graph g.node')) have.add(g.dataset.id);
  return ids.every((id) => have.has(id)) ? performance.now() : false;
}"""


@dataclass
class Settings:
    repeats: int
    window: float
    rounds: int
    rate: float
    nodes: int
    edges: int
    idle: bool
    quick: bool = False


# -- the generated graph -------------------------------------------------------------------------


@dataclass
class Generated:
    fbp: str
    roles: list[str]
    announcements: list[bytes]
    outport_topics: list[str]  # one per edge


def generate(nodes: int, edges: int, seed: int = SEED) -> Generated:
    """A layered graph: the last ``nodes // 20`` nodes are sinks, every other node has
    ``edges // senders`` outports (one more for the first ``edges % senders``), each outport
    wired to one inport of a node at most ``nodes // 8`` further down (a DAG, as a hackerspace's
    sensors -> filters -> actuators)."""
    rng = random.Random(seed)
    sinks = max(1, nodes // 20)
    senders = nodes - sinks
    span = max(2, nodes // 8)
    roles = []
    for i in range(nodes):
        kind = COMPONENTS[min(len(COMPONENTS) - 1, i * len(COMPONENTS) // nodes)]
        roles.append(f"{kind.split('/')[1].lower()}{i}")
    lines = [
        f"# Generated by bench/dashboard.py (seed {seed}): {nodes} nodes, {edges} edges",
        "# @runtime msgflo",
        "# @name bench dashboard",
        "",
    ]
    for i, role in enumerate(roles):
        lines.append(f"{role}({COMPONENTS[min(3, i * len(COMPONENTS) // nodes)]})")
    outports: list[list[str]] = [[] for _ in range(nodes)]
    for i in range(senders):
        for k in range(edges // senders + (1 if i < edges % senders else 0)):
            target = rng.randint(i + 1, min(i + span, nodes - 1))
            inport = rng.randrange(INPORTS)
            outports[i].append(f"out{k}")
            lines.append(f"{roles[i]} OUT{k} -> IN{inport} {roles[target]}")
    announcements, topics = [], []
    for i, role in enumerate(roles):
        ins = [
            {"id": f"in{p}", "type": "any", "queue": f"{TOPIC_IN}/{role}/in{p}"}
            for p in range(INPORTS)
        ]
        outs = [{"id": p, "type": "any", "queue": f"{TOPIC_OUT}/{role}/{p}"} for p in outports[i]]
        topics += [str(port["queue"]) for port in outs]
        definition = define(
            role,
            COMPONENTS[min(3, i * len(COMPONENTS) // nodes)],
            inports=ins,
            outports=outs,
            participant_id=f"{role}-bench",
        )
        definition = replace(definition, extra={"discoveryPeriod": DISCOVERY_PERIOD})
        announcements.append(encode_discovery(definition))
    return Generated("\n".join(lines) + "\n", roles, announcements, topics)


# -- processes -----------------------------------------------------------------------------------


class CoordinatorProcess:
    """``.venv/bin/msgflo`` on ``graph`` with the runtime protocol (and the dashboard) on a free
    port, in a session of its own (so that the participants it starts are stopped with it)."""

    def __init__(self, graph: Path, broker_url: str, extra: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.address = f"ws://127.0.0.1:{self.port}"
        self.url = f"http://127.0.0.1:{self.port}/"
        cmd = [
            sys.executable,
            str(BIN / "msgflo"),
            "--graph",
            str(graph),
            "--broker",
            broker_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--secret",
            SECRET,
            *extra,
        ]
        self.process = LoggedProcess(
            cmd,
            cwd=graph.parent,
            log=graph.parent / f"{graph.stem}-msgflo.log",
            env={**os.environ, "DEMO_INTERVAL": DEMO_INTERVAL},
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self, limit: int = 2000) -> str:
        return self.process.output(limit)

    def stop(self) -> None:
        self.process.stop(STOP_TIMEOUT, group=True)


@contextlib.contextmanager
def coordinator(
    graph: Path, broker_url: str, extra: Sequence[str] = ()
) -> Iterator[CoordinatorProcess]:
    process = CoordinatorProcess(graph, broker_url, extra)
    try:
        yield process
    finally:
        process.stop()


async def status(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(
        base + "api/status", headers={"Authorization": f"Bearer {SECRET}"}
    ) as response:
        response.raise_for_status()
        found = await response.json()
        assert isinstance(found, dict)
        return found


async def status_size(coord: CoordinatorProcess) -> tuple[int, str]:
    """Bytes of one ``/api/status`` answer as served to a browser, and its encoding."""
    headers = {"Authorization": f"Bearer {SECRET}", "Accept-Encoding": "gzip, deflate"}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(coord.url + "api/status", headers=headers) as response,
    ):
        return len(await response.read()), response.headers.get("Content-Encoding", "")


async def wait_online(
    coord: CoordinatorProcess, roles: Sequence[str], again: Callable[[], None] = lambda: None
) -> float:
    """Until ``/api/status`` lists every role online (calling ``again`` every
    ``ANNOUNCE_AGAIN`` s meanwhile: announcements sent before the coordinator subscribed are
    lost); returns the seconds it took."""
    start = time.monotonic()
    next_again = start + ANNOUNCE_AGAIN
    deadline = start + READY_TIMEOUT
    missing: set[str] = set(roles)
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if not coord.process.alive():
                raise SystemExit(f"the coordinator exited:\n{coord.output()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                found = await status(session, coord.url)
                online = {p["role"] for p in found["participants"] if p.get("online")}
                missing = set(roles) - online
                if not missing:
                    return time.monotonic() - start
            if time.monotonic() >= next_again:
                again()
                next_again = time.monotonic() + ANNOUNCE_AGAIN
            await asyncio.sleep(0.2)
    raise SystemExit(
        f"not online after {READY_TIMEOUT:g} s: {sorted(missing)[:10]}\n{coord.output()}"
    )


# -- MQTT: announcements, the paced publisher, arrivals ------------------------------------------


class Traffic:
    """One paho client on its own network thread: announces, publishes ``rate`` msg/s
    round-robin over ``topics`` from a thread of its own while ``flowing`` is set, and counts
    what arrives on the inports' queues."""

    def __init__(self, broker_url: str, topics: Sequence[str], rate: float) -> None:
        parts = urlsplit(broker_url)
        self.topics, self.rate = list(topics), rate
        self.sent = 0
        self.arrived = 0
        self.flowing = threading.Event()
        self.stopping = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self.client.on_message = self._on_message
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        self.client.subscribe(f"{TOPIC_IN}/#", 0)
        self.thread = threading.Thread(target=self._pace, name="pacer", daemon=True)
        self.thread.start()

    def _on_message(self, c: paho.Client, u: Any, message: paho.MQTTMessage) -> None:
        self.arrived += 1

    def announce(self, messages: Sequence[bytes]) -> None:
        for message in messages:
            self.client.publish(DISCOVERY_TOPIC, message, 0)

    def _pace(self) -> None:
        gap = 1.0 / self.rate
        end = time.monotonic() + PACER_LIFE
        while not self.stopping.is_set() and time.monotonic() < end:
            if not self.flowing.wait(0.2):
                continue
            next_send = time.monotonic()
            while self.flowing.is_set() and not self.stopping.is_set():
                now = time.monotonic()
                if now >= end:
                    return
                if now < next_send:
                    time.sleep(next_send - now)
                    continue
                topic = self.topics[self.sent % len(self.topics)]
                payload = json.dumps({"seq": self.sent, "t": round(time.time(), 3)})
                self.client.publish(topic, payload.replace(" ", ""), 0)
                self.sent += 1
                next_send = max(next_send + gap, time.monotonic() - PACE_SLACK * gap)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()


# -- the browser ---------------------------------------------------------------------------------


def chromium_pids() -> list[int]:
    """Every Chromium process under this one (the Playwright driver, node, is left out)."""
    children: dict[int, list[int]] = {}
    comms: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        head, rest = stat.rsplit(")", 1)
        pid = int(entry.name)
        comms[pid] = head.split("(", 1)[1]
        children.setdefault(int(rest.split()[1]), []).append(pid)
    found, todo = [], [os.getpid()]
    for _ in range(100_000):  # bounded: each turn takes one pid off the list
        if not todo:
            break
        pid = todo.pop()
        for child in children.get(pid, []):
            todo.append(child)
            if comms.get(child, "").startswith("chrom"):
                found.append(child)
    return found


def chromium_cpu() -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in chromium_pids()}


def chromium_kind(pid: int) -> str:
    """``browser``, ``renderer``, ``gpu-process``, ``utility``, ... from its command line."""
    try:
        # Chromium rewrites its command line (one string, arguments joined by blanks).
        found = re.search(rb"--type=([\w-]+)", Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return "gone"
    return found.group(1).decode() if found else "browser"


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds of a set of processes between two readings (one that started in between
    counts from 0; one that ended in between is lost, there is no reading of it)."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)


async def launch(playwright: Any) -> Browser:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    assert isinstance(browser, Browser)
    return browser


async def signed_in_context(browser: Browser) -> BrowserContext:
    """A fresh context (empty cache) whose pages find the secret in sessionStorage, as after a
    sign-in in that tab."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    await context.add_init_script(
        f"sessionStorage.setItem({json.dumps(SECRET_KEY)}, {json.dumps(SECRET)})"
    )
    return context


async def open_drawn(page: Page, url: str, roles: Sequence[str]) -> tuple[float, float]:
    """``page.goto(url)`` until every role is a ``g.node``: (wall s, in-page s)."""
    start = time.perf_counter()
    await page.goto(url, wait_until="commit", timeout=DRAW_TIMEOUT * 1000)
    handle = await page.wait_for_function(
        DRAWN_JS, arg=list(roles), polling="raf", timeout=DRAW_TIMEOUT * 1000
    )
    wall = time.perf_counter() - start
    in_page = float(await handle.json_value()) / 1000
    return wall, in_page


async def time_page(browser: Browser, url: str, roles: Sequence[str]) -> tuple[float, float]:
    context = await signed_in_context(browser)
    try:
        page = await context.new_page()
        return await open_drawn(page, url, roles)
    finally:
        await context.close()


async def time_gather(address: str, nodes: int) -> float:
    start = time.perf_counter()
    lines = await asyncio.wait_for(gather(address, SECRET), FLOOR_TIMEOUT)
    elapsed = time.perf_counter() - start
    listed = lines.index("edges:") - lines.index("nodes:") - 1
    if listed != nodes:
        raise SystemExit(f"msgflo-info listed {listed} nodes, not {nodes}")
    return elapsed


async def graph_source(address: str) -> str:
    """The graph's FBP JSON as the page gets it (``component:getsource``)."""
    async with RuntimeClient(address, secret=SECRET) as runtime:
        info = await runtime.request("runtime", "getruntime", expect=[("runtime", "runtime")])
        name = info["payload"].get("graph") or "default/main"
        reply = await runtime.request(
            "component", "getsource", {"name": name}, expect=[("component", "source")]
        )
        return str(reply["payload"]["code"])


async def time_render(browser: Browser, coord: CoordinatorProcess, roles: Sequence[str]) -> Any:
    """Milliseconds of ``RENDERS`` warm renders of the graph by the page's own code."""
    code = await asyncio.wait_for(graph_source(coord.address), FLOOR_TIMEOUT)
    context = await signed_in_context(browser)
    try:
        page = await context.new_page()
        await open_drawn(page, coord.url, roles)
        return await page.evaluate(RENDER_JS, [code, RENDERS])
    finally:
        await context.close()


async def time_cli(address: str) -> float:
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "msgflo-info"),
        "--address",
        address,
        "--secret",
        SECRET,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), FLOOR_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise SystemExit(f"msgflo-info failed: {err.decode(errors='replace')[-500:]}")
    return time.perf_counter() - start


async def first_drawn(
    browser: Browser, coord: CoordinatorProcess, name: str, roles: Sequence[str], *, edges: int,
    settings: Settings,
) -> dict[str, Any]:  # fmt: skip
    """Page and floors, alternating in order every repeat."""
    await time_gather(coord.address, len(roles))  # one unmeasured warm-up of the server side
    page: list[float] = []
    in_page: list[float] = []
    floor: list[float] = []
    cli: list[float] = []
    for r in range(settings.repeats):

        async def the_page() -> None:
            wall, inside = await time_page(browser, coord.url, roles)
            page.append(wall)
            in_page.append(inside)

        async def the_floor() -> None:
            floor.append(await time_gather(coord.address, len(roles)))
            cli.append(await time_cli(coord.address))

        steps: list[Callable[[], Awaitable[None]]] = [the_page, the_floor]
        for step in steps if r % 2 == 0 else steps[::-1]:
            await step()
        print(
            f"  {name} #{r + 1}: page {page[-1] * 1e3:.0f} ms (in-page {in_page[-1] * 1e3:.0f}), "
            f"msgflo-info gather {floor[-1] * 1e3:.0f} ms, CLI {cli[-1] * 1e3:.0f} ms",
            file=sys.stderr,
        )
    render = [float(x) / 1000 for x in await time_render(browser, coord, roles)]
    print(
        f"  {name}: warm renders {', '.join(f'{x * 1e3:.0f}' for x in render)} ms", file=sys.stderr
    )
    return {
        "graph": name,
        "render_s": render,
        "nodes": len(roles),
        "edges": edges,
        "page_s": page,
        "in_page_s": in_page,
        "gather_s": floor,
        "cli_s": cli,
    }


# -- page weight ---------------------------------------------------------------------------------


async def weigh_load(page: Page, action: Callable[[], Awaitable[Any]]) -> list[dict[str, Any]]:
    requests: list[Request] = []

    def keep(request: Request) -> None:  # Playwright needs a function it can tag
        requests.append(request)

    page.on("request", keep)
    await action()
    with contextlib.suppress(Exception):
        await page.wait_for_load_state("networkidle", timeout=IDLE_NET_TIMEOUT * 1000)
    page.remove_listener("request", keep)
    rows = []
    for request in list(requests):
        response = await request.response()
        try:
            sizes = await request.sizes()
            body, head = sizes["responseBodySize"], sizes["responseHeadersSize"]
        except PlaywrightError:  # failed or unfinished: nothing came
            body = head = 0
        headers = await response.all_headers() if response is not None else {}
        rows.append(
            {
                "path": urlsplit(request.url).path,
                "status": response.status if response is not None else 0,
                "encoding": headers.get("content-encoding", ""),
                "body": int(body),
                "headers": int(head),
            }
        )
    return rows


async def page_weight(browser: Browser, coord: CoordinatorProcess, roles: Sequence[str]) -> Any:
    context = await signed_in_context(browser)
    try:
        page = await context.new_page()
        drawn = f"() => document.querySelectorAll('#graph g.node').length >= {len(roles)}"

        async def first() -> None:
            await page.goto(coord.url)
            await page.wait_for_function(drawn, timeout=DRAW_TIMEOUT * 1000)

        async def again() -> None:
            await page.reload()
            await page.wait_for_function(drawn, timeout=DRAW_TIMEOUT * 1000)

        cold = await weigh_load(page, first)
        warm = await weigh_load(page, again)
    finally:
        await context.close()
    return {"first": cold, "reload": warm, "assets": await all_assets(coord.url)}


async def all_assets(base: str) -> list[dict[str, Any]]:
    """Every file the page can load: as served (gzip when the server compresses it) and gzip -9
    as tests/dashboard/test_assets.py counts it."""
    rows = []
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for path in sorted(page_files()):
            rel = path.relative_to(STATIC).as_posix()
            url = base if rel == "index.html" else f"{base}static/{rel}"
            async with session.get(url, headers={"Accept-Encoding": "gzip"}) as response:
                body = await response.read()
                rows.append(
                    {
                        "path": rel,
                        "raw": path.stat().st_size,
                        "served": len(body),
                        "encoding": response.headers.get("Content-Encoding", ""),
                        "gzip9": len(gzip.compress(path.read_bytes(), 9)),
                    }
                )
    return rows


# -- CPU -----------------------------------------------------------------------------------------


async def cpu_window(
    coord: CoordinatorProcess, traffic: Traffic, window: float, page: Page | None
) -> dict[str, float]:
    coord_before = cpu_seconds(coord.pid)
    browser_before = chromium_cpu()
    sent, arrived = traffic.sent, traffic.arrived
    start = time.monotonic()
    await asyncio.sleep(window)
    elapsed = time.monotonic() - start
    coord_after = cpu_seconds(coord.pid)
    browser_after = chromium_cpu()
    kinds: dict[str, float] = {}
    for pid, after in browser_after.items():
        kind = f"browser_{chromium_kind(pid)}_pct"
        kinds[kind] = kinds.get(kind, 0.0) + (after - browser_before.get(pid, 0.0)) / elapsed * 100
    figures = {
        "seconds": elapsed,
        "coordinator_pct": (coord_after - coord_before) / elapsed * 100,
        "browser_pct": cpu_between(browser_before, browser_after) / elapsed * 100,
        **kinds,
        "browser_processes": float(len(browser_after)),
        "sent_per_s": (traffic.sent - sent) / elapsed,
        "arrived_per_s": (traffic.arrived - arrived) / elapsed,
    }
    if page is not None:
        active = await page.evaluate("document.querySelectorAll('#graph g.edge.active').length")
        figures["active_edges"] = float(active)
    return figures


async def cpu_phase(
    browser: Browser, coord: CoordinatorProcess, traffic: Traffic, roles: Sequence[str], *,
    phase: str, window: float,
) -> dict[str, Any]:  # fmt: skip
    dashboard = phase != "no dashboard"
    context = await signed_in_context(browser)
    try:
        page = await context.new_page()
        if dashboard:
            await open_drawn(page, coord.url, roles)
        else:
            await page.goto("about:blank")
        await asyncio.sleep(SETTLE)
        figures = await cpu_window(coord, traffic, window, page if dashboard else None)
    finally:
        await context.close()
    parts = ", ".join(
        f"{k.removeprefix('browser_').removesuffix('_pct')} {v:.1f}"
        for k, v in figures.items()
        if k.endswith("_pct") and k.startswith("browser_") and k != "browser_pct"
    )
    print(
        f"  {phase}: coordinator {figures['coordinator_pct']:.1f} %, browser "
        f"{figures['browser_pct']:.1f} % ({figures['browser_processes']:.0f} processes: {parts}), "
        f"{figures['arrived_per_s']:.0f} msg/s arrived"
        + (f", {figures['active_edges']:.0f} edges shown active" if dashboard else ""),
        file=sys.stderr,
    )
    return {"phase": phase, **figures}


async def cpu_runs(
    browser: Browser, coord: CoordinatorProcess, traffic: Traffic, roles: Sequence[str],
    settings: Settings,
) -> list[dict[str, Any]]:  # fmt: skip
    runs = []
    traffic.flowing.set()
    try:
        await asyncio.sleep(1.0)  # the publisher is up to pace
        phases = ["no dashboard", "dashboard"]
        for r in range(settings.rounds):
            for phase in phases if r % 2 == 0 else phases[::-1]:
                found = await cpu_phase(
                    browser, coord, traffic, roles, phase=phase, window=settings.window
                )
                runs.append({"round": r, **found})
    finally:
        traffic.flowing.clear()
    if settings.idle:
        await asyncio.sleep(1.0)
        found = await cpu_phase(
            browser, coord, traffic, roles, phase="dashboard, no traffic", window=settings.window
        )
        runs.append({"round": 0, **found})
    return runs


# -- the run -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            yield browser
        finally:
            await browser.close()


async def run_all(settings: Settings, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    demo_graph = workdir / "demo" / "demo.fbp"
    demo_graph.parent.mkdir()
    shutil.copy(EXAMPLES / "demo.fbp", demo_graph)
    demo = load_graph(demo_graph)
    demo_roles = sorted(demo.processes)
    demo_edges = sum(1 for c in demo.connections if not isinstance(c, Initial))
    generated = generate(settings.nodes, settings.edges)
    big_graph = workdir / "generated" / "generated.fbp"
    big_graph.parent.mkdir()
    big_graph.write_text(generated.fbp)
    assert len(generated.outport_topics) == settings.edges
    library = ["--library", str(EXAMPLES / "library.yaml")]
    library += ["--componentdir", str(EXAMPLES / "components")]
    with Mosquitto() as broker:
        async with chromium() as browser:
            result["chromium"] = browser.version
            print(f"demo graph ({len(demo_roles)} nodes, participant processes)", file=sys.stderr)
            with coordinator(demo_graph, broker.url, library) as coord:
                await wait_online(coord, demo_roles)
                result["demo"] = await first_drawn(
                    browser, coord, "demo", demo_roles, edges=demo_edges, settings=settings
                )
                result["weight"] = await page_weight(browser, coord, demo_roles)
            print(
                f"generated graph ({settings.nodes} nodes, {settings.edges} edges, announced)",
                file=sys.stderr,
            )
            traffic = Traffic(broker.url, generated.outport_topics, settings.rate)
            try:
                with coordinator(big_graph, broker.url) as coord:
                    traffic.announce(generated.announcements)
                    result["announced_online_s"] = await wait_online(
                        coord,
                        generated.roles,
                        lambda: traffic.announce(generated.announcements),
                    )
                    result["status_bytes"], result["status_encoding"] = await status_size(coord)
                    result["generated"] = await first_drawn(
                        browser,
                        coord,
                        "generated",
                        generated.roles,
                        edges=settings.edges,
                        settings=settings,
                    )
                    print(
                        f"CPU at {settings.rate:g} msg/s over the {settings.edges} edges, "
                        f"{settings.window:g} s windows",
                        file=sys.stderr,
                    )
                    result["cpu"] = await cpu_runs(
                        browser, coord, traffic, generated.roles, settings
                    )
            finally:
                traffic.close()
    return result


# -- the report ----------------------------------------------------------------------------------


def ms(values: Sequence[float]) -> str:
    return f"{median(values) * 1e3:,.0f}"


def spread(values: Sequence[float]) -> str:
    return f"{min(values) * 1e3:,.0f}-{max(values) * 1e3:,.0f}"


def format_drawn(rows: Sequence[dict[str, Any]]) -> str:
    head = [
        "graph",
        "nodes / edges",
        "page: first drawn graph ms (min-max)",
        "in-page ms",
        "of which one render, warm ms",
        "msgflo-info gather ms (min-max)",
        "msgflo-info CLI ms",
        "page / gather",
    ]
    lines = []
    for r in rows:
        ratio = median(r["page_s"]) / median(r["gather_s"])
        lines.append(
            [
                r["graph"],
                f"{r['nodes']} / {r['edges']}",
                f"{ms(r['page_s'])} ({spread(r['page_s'])})",
                ms(r["in_page_s"]),
                ms(r["render_s"]),
                f"{ms(r['gather_s'])} ({spread(r['gather_s'])})",
                ms(r["cli_s"]),
                f"{ratio:.1f}x",
            ]
        )
    return markdown_table(head, lines)


def summarize_cpu(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    phases: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        phases.setdefault(run["phase"], []).append(run)
    return {
        phase: {k: median([r[k] for r in rows if k in r]) for k in CPU_KEYS}
        for phase, rows in phases.items()
    }


def format_cpu(summary: dict[str, dict[str, float]], settings: Settings) -> str:
    base = summary.get("no dashboard", {})
    head = [
        "phase",
        "msg/s sent / arrived",
        "coordinator CPU % of a core",
        "coordinator CPU us/msg",
        "x no dashboard",
        "browser CPU % of a core",
        "of which renderer / gpu / browser / utility",
        "edges shown active",
    ]
    lines = []
    for phase, f in summary.items():
        ratio = f["coordinator_pct"] / base["coordinator_pct"] if base else float("nan")
        active = f["active_edges"]
        per_msg = f["coordinator_pct"] / 100 * 1e6 / f["arrived_per_s"] if f["arrived_per_s"] else 0
        kinds = [f[f"browser_{k}_pct"] for k in ("renderer", "gpu-process", "browser", "utility")]
        lines.append(
            [
                phase,
                f"{f['sent_per_s']:.0f} / {f['arrived_per_s']:.0f}",
                f"{f['coordinator_pct']:.2f}",
                f"{per_msg:.0f}" if per_msg else "-",
                {"no dashboard": "1", "dashboard": f"{ratio:.2f}x"}.get(phase, "-"),
                f"{f['browser_pct']:.2f}",
                " / ".join("-" if math.isnan(k) else f"{k:.2f}" for k in kinds),
                "-" if math.isnan(active) else f"{active:.0f} of {settings.edges}",
            ]
        )
    return markdown_table(head, lines)


def format_weight(weight: dict[str, Any]) -> str:
    out = []
    for name in ("first", "reload"):
        rows = weight[name]
        files = [r for r in rows if not r["path"].startswith("/api/")]
        api = [r for r in rows if r["path"].startswith("/api/")]
        body = sum(r["body"] for r in files)
        headers = sum(r["headers"] for r in files)
        api_body = sum(r["body"] for r in api)
        label = "first load (empty cache)" if name == "first" else "reload (same context)"
        out.append(
            f"- {label}: {len(files)} files, {body / 1024:.1f} KB of bodies as served + "
            f"{headers / 1024:.1f} KB of headers; {len(api)} API requests, "
            f"{api_body / 1024:.1f} KB (WebSocket frames not counted)"
        )
        if name == "first":
            table = [
                [r["path"], str(r["status"]), r["encoding"] or "-", f"{r['body']:,}"] for r in rows
            ]
            out.append("")
            out.append(markdown_table(["request", "status", "encoding", "body bytes"], table))
            out.append("")
    assets = weight["assets"]
    served = sum(r["served"] for r in assets)
    gz9 = sum(r["gzip9"] for r in assets)
    raw = sum(r["raw"] for r in assets)
    out.append(
        f"- all {len(assets)} assets the page can load (mqtt.js only with the Phone view): "
        f"{served / 1024:.1f} KB as served, {gz9 / 1024:.1f} KB gzip -9 (test_assets.py), "
        f"{raw / 1024:.1f} KB uncompressed; the issue's limit {MAX_PAGE_BYTES / 1024:.0f} KB"
    )
    return "\n".join(out)


def report(settings: Settings, result: dict[str, Any], argv: Sequence[str]) -> str:
    host = {
        **mqtt_machine(),
        "chromium": result["chromium"],
        "playwright": importlib.metadata.version("playwright"),
    }
    lines = [
        ", ".join(f"{k} {v}" for k, v in host.items()),
        f"command: {Path(sys.executable).name} -m bench.dashboard {' '.join(argv)}".rstrip(),
        "",
        f"Time to the first drawn graph (median of {settings.repeats}; page: page.goto to every "
        "node a g.node, fresh context; floor: msgflo-info's gather in this process)",
        "",
        format_drawn([result["demo"], result["generated"]]),
        "",
        f"({settings.nodes} announced participants listed online after "
        f"{result['announced_online_s']:.2f} s; one /api/status, which the page polls every "
        f"2.5 s, is {result['status_bytes'] / 1024:.1f} KB as served, "
        f"{result['status_encoding'] or 'not compressed'})",
        "",
        f"CPU over {settings.window:g} s windows while {settings.rate:g} msg/s flow round-robin "
        f"over the generated graph's {settings.edges} edges (median of {settings.rounds} "
        "round(s); browser: all Chromium processes)",
        "",
        format_cpu(summarize_cpu(result["cpu"]), settings),
        "",
        "Page weight (the demo's page)",
        "",
        format_weight(result["weight"]),
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> tuple[Settings, Path | None]:
    p = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    p.add_argument("--repeats", type=int, help="page loads per graph (5; --quick 2)")
    p.add_argument("--window", type=float, help="seconds per CPU window (20; --quick 5)")
    p.add_argument("--rounds", type=int, help="baseline/dashboard pairs (2; --quick 1)")
    p.add_argument("--rate", type=float, default=100.0, help="msg/s over the edges (100)")
    p.add_argument("--nodes", type=int, default=200, help="nodes of the generated graph (200)")
    p.add_argument("--edges", type=int, default=400, help="edges of the generated graph (400)")
    p.add_argument("--no-idle", action="store_true", help="skip 'dashboard, no traffic'")
    p.add_argument("--quick", action="store_true", help="a smoke run, about a minute")
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    quick = args.quick
    settings = Settings(
        repeats=args.repeats or (2 if quick else 5),
        window=args.window or (5.0 if quick else 20.0),
        rounds=args.rounds or (1 if quick else 2),
        rate=args.rate,
        nodes=args.nodes,
        edges=args.edges,
        idle=not args.no_idle,
        quick=quick,
    )
    if not (1 <= settings.repeats <= 50 and 1 <= settings.rounds <= 10):
        p.error("--repeats 1..50, --rounds 1..10")
    if not (1 <= settings.window <= 120 and 1 <= settings.rate <= 2000):
        p.error("--window 1..120 s, --rate 1..2000")
    if not (
        20 <= settings.nodes <= 2000 and settings.nodes <= settings.edges <= 5 * settings.nodes
    ):
        p.error("--nodes 20..2000, --edges between nodes and 5 x nodes")
    return settings, args.json


def main(argv: Sequence[str]) -> int:
    settings, json_path = parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"no chromium at {CHROMIUM} (./bootstrap.sh installs it)", file=sys.stderr)
        return 1
    print(
        f"dashboard benchmark: {settings.repeats} loads per graph, {settings.rounds} round(s) "
        f"of {settings.window:g} s CPU windows at {settings.rate:g} msg/s",
        file=sys.stderr,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        result = asyncio.run(run_all(settings, Path(tmp)))
    print()
    print(report(settings, result, argv))
    print(f"\n(the script took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    if json_path is not None:
        document = {"settings": asdict(settings), **result}
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
