"""Fixtures for the dashboard's browser tests: Debian's Chromium driven by Playwright for Python
(never a downloaded browser), and the demo running for real behind the dashboard: a private
mosquitto with a WebSockets listener, the coordinator with the runtime protocol and a secret,
and the demo's participant processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from gateway.coordinator.runtime_environment import RuntimeProtocolService, RuntimeSettings
from gateway.coordinator.service import CoordinatorService
from gateway.dashboard.boards import Boards
from gateway.dashboard.devices import SeenDevices
from gateway.dashboard.settings import DashboardSettings, WebMqtt
from gateway.demo import EXAMPLES, demo_config, demo_graph_text, replayed_ble, replayed_rf433
from gateway.graph import load_graph
from gateway.mosquitto import LOOPBACK, Mosquitto, free_port
from tests.conftest import Probe, probing
from tests.support.tasks import background
from tests.support.wait import until

# Playwright must never fetch a browser of its own: Debian's chromium is the one.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SECRET = "dashboard-test-secret"
PHONE = {"width": 360, "height": 740}
LAPTOP = {"width": 1280, "height": 800}
DEMO_INTERVAL = "0.3"  # seconds between the simulated devices' readings


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Chromium, headless; without its sandbox only as root (where it refuses to start)."""
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def ws_mosquitto() -> Iterator[Mosquitto]:
    """A private mosquitto with an MQTT over WebSockets listener too, for the page's virtual
    devices."""
    with Mosquitto(websockets=True) as broker:
        yield broker


@dataclass
class Gateway:
    """The demo behind the dashboard: ``url`` is the page, ``broker`` the MQTT broker."""

    url: str
    broker: Mosquitto
    service: CoordinatorService
    runtime: RuntimeProtocolService


def _ws_url(broker: Mosquitto) -> str:
    assert broker.ws_url is not None
    return broker.ws_url


@contextlib.asynccontextmanager
async def running_gateway(
    broker: Mosquitto,
    tmp_path: Path,
    secret: str | None = SECRET,
    devices: Sequence[SeenDevices] = (),
    boards: Boards | None = None,
) -> AsyncIterator[Gateway]:
    os.environ["DEMO_INTERVAL"] = DEMO_INTERVAL
    graph_path = tmp_path / "demo.fbp"
    graph_path.write_text(demo_graph_text(EXAMPLES / "demo.fbp"))
    config, _ = demo_config(broker.url, EXAMPLES)
    # Auto-save on, as on the appliance: what the page changes is saved to the graph file.
    config = replace(config, graph_path=graph_path, auto_save=True)
    service = CoordinatorService(config, load_graph(graph_path))
    runtime_port = free_port()
    dashboard = DashboardSettings(web_mqtt=WebMqtt(_ws_url(broker)), devices=devices, boards=boards)
    runtime = RuntimeProtocolService(
        service, RuntimeSettings(LOOPBACK, runtime_port, secret=secret, dashboard=dashboard)
    )
    async with (
        background(service.run()),
        background(runtime.run()),
        background(replayed_ble(config)),
        background(replayed_rf433(config)),
    ):
        coordinator = service.coordinator
        await until(
            lambda: all(coordinator.registry.live(r) for r in DEMO_ROLES),
            timeout=30,
            what="the demo's participants",
        )
        yield Gateway(f"http://{LOOPBACK}:{runtime_port}/", broker, service, runtime)


# The participants of examples/demo.fbp (the kit's first graph), and the radio devices the
# laptop demo adds (gateway/demo.py RADIO_NODES).
KIT_ROLES = ("climate", "button", "alarm", "display")
DEMO_ROLES = (*KIT_ROLES, "fridge", "garden")


@pytest.fixture
async def probe(gateway: Gateway) -> AsyncIterator[Probe]:
    """A plain MQTT client on the gateway's broker."""
    async with probing(gateway.broker.url, "dashboard-probe") as found:
        yield found


@pytest.fixture
async def gateway(ws_mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(ws_mosquitto, tmp_path) as found:
        yield found


async def signed_in(
    browser: Browser, gateway: Gateway, viewport: dict[str, int] = LAPTOP
) -> tuple[BrowserContext, Page]:
    """A new browser context with the page open and signed in with the right secret."""
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    await page.goto(gateway.url)
    await page.fill("#secret", SECRET)
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#tabs:not([hidden])")
    page_errors[page] = errors
    return context, page


page_errors: dict[Page, list[str]] = {}
