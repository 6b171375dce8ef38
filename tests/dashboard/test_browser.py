"""The dashboard in a real browser (Debian's Chromium through Playwright) against the real
coordinator, mosquitto and the demo's participant processes. Every wait is for a state
(Playwright's expect and wait_for, or the MQTT probe's wait_count), never a fixed sleep."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from gateway.appliance.device_requests import REQUESTS as DEVICE_REQUESTS
from gateway.appliance.device_requests import apply_device_requests
from gateway.appliance.devices import device_secrets, render_secrets_h
from gateway.bridges.seen import SeenDevice, encode_seen, seen_topic
from gateway.broker import parse_broker_url
from gateway.config import load_config
from gateway.coordinator.service import load_service_graph
from gateway.dashboard.boards import Boards
from gateway.dashboard.bridges import BridgeSeen
from gateway.graph.model import Graph, Process
from gateway.mosquitto import Mosquitto
from gateway.participant import Participant, serve
from tests.appliance.conftest import provision, write_config
from tests.conftest import Probe, probing
from tests.dashboard.conftest import (
    LAPTOP,
    PHONE,
    SECRET,
    Gateway,
    page_errors,
    running_gateway,
    signed_in,
)
from tests.support.tasks import background
from tests.support.wait import until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
TIMEOUT = 15_000  # ms: the longest any state below may take to show


def node(page: Page, role: str) -> Locator:
    return page.locator(f'#graph g.node[data-id="{role}"]')


def edge(page: Page, src: str, tgt: str) -> Locator:
    return page.locator(f'#graph g.edge[data-src="{src}"][data-tgt="{tgt}"]')


async def test_sign_in_refuses_a_wrong_secret_then_draws_the_demo_graph(
    browser: Browser, gateway: Gateway
) -> None:
    context = await browser.new_context(viewport=LAPTOP)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(gateway.url)
    await expect(page.locator("#signin")).to_be_visible()
    await page.fill("#secret", "not-the-secret")
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#signin-error")).to_contain_text("Wrong secret", timeout=TIMEOUT)
    await expect(page.locator("#tabs")).to_be_hidden()
    await page.fill("#secret", SECRET)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#tabs")).to_be_visible(timeout=TIMEOUT)
    # The secret is kept for the browser session only.
    stored = await page.evaluate("sessionStorage.getItem('msgflo-gateway-secret')")
    assert stored == SECRET
    assert await page.evaluate("localStorage.length") == 0

    for role in ("climate", "button", "alarm", "display"):
        await expect(node(page, role)).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)
    for src, tgt in [
        ("climate.temperature", "alarm.in"),
        ("alarm.alarm", "display.led"),
        ("climate.humidity", "display.humidity"),
        ("button.pressed", "display.pressed"),
    ]:
        await expect(edge(page, src, tgt)).to_have_count(1)
    await expect(page.locator('#graph g.iip-node[data-iip="alarm.limit"]')).to_have_count(1)
    await expect(node(page, "climate")).to_contain_text("demo/Climate")

    # Live values: the temperature edge shows a rate and a value that keeps changing.
    value = edge(page, "climate.temperature", "alarm.in").locator("text.value")
    await expect(value).to_have_text(re.compile(r"/s$"), timeout=TIMEOUT)
    first = await value.text_content()
    await expect(value).not_to_have_text(first or "", timeout=TIMEOUT)

    # Tapping an edge shows its last payload.
    await edge(page, "climate.temperature", "alarm.in").locator(".label-bg").click()
    payload = page.locator("#edge-payload")
    await expect(payload).to_have_text(re.compile(r"^\d+(\.\d+)?$"), timeout=TIMEOUT)

    # Reloading keeps the session signed in; a new one (another context) is not.
    await page.reload()
    await expect(page.locator("#tabs")).to_be_visible(timeout=TIMEOUT)
    assert page_errors.get(page, []) == []
    await context.close()


async def test_screenshots_at_phone_and_laptop_size(browser: Browser, gateway: Gateway) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("phone", PHONE), ("laptop", LAPTOP)):
        context, page = await signed_in(browser, gateway, viewport)
        for role in ("climate", "button", "alarm", "display"):
            await expect(node(page, role)).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)
        value = edge(page, "climate.temperature", "alarm.in").locator("text.value")
        await expect(value).to_have_text(re.compile(r"/s$"), timeout=TIMEOUT)
        await node(page, "display").click()
        await expect(page.locator("#details")).to_be_visible()
        await page.screenshot(path=str(IMAGES / f"dashboard-{name}.png"))
        # Nothing is wider than the phone's screen.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], (name, width)
        assert page_errors.get(page, []) == []
        await context.close()


async def test_an_edge_added_in_the_page_carries_messages_until_removed(
    browser: Browser, gateway: Gateway, probe: Probe
) -> None:
    await probe.watch("alarm/limit")
    await probe.watch("climate/humidity")
    context, page = await signed_in(browser, gateway)
    await expect(node(page, "alarm")).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)

    await page.click("#open-add-edge")
    await page.select_option("#add-edge-src", "climate.humidity")
    await page.select_option("#add-edge-tgt", "alarm.limit")
    await page.click("#add-edge button[type=submit]")
    added = edge(page, "climate.humidity", "alarm.limit")
    await expect(added).to_have_count(1, timeout=TIMEOUT)
    before = len(probe.received["alarm/limit"])
    got = await probe.wait_count("alarm/limit", before + 3, timeout=10)
    assert all(isinstance(json.loads(m), float | int) for m in got[before:])

    await added.locator(".label-bg").click()
    await page.click("#details [data-action=remove-edge]")
    await expect(added).to_have_count(0, timeout=TIMEOUT)
    # The removal is applied when the page sees it: from then on, three more humidity
    # readings pass and none of them reaches the alarm's limit.
    stopped = len(probe.received["alarm/limit"])
    humidity = len(probe.received["climate/humidity"])
    await probe.wait_count("climate/humidity", humidity + 3, timeout=10)
    assert len(probe.received["alarm/limit"]) == stopped
    await context.close()


async def test_a_message_sent_from_the_page_arrives(
    browser: Browser, gateway: Gateway, probe: Probe
) -> None:
    await probe.watch("display/pressed")
    context, page = await signed_in(browser, gateway)
    await expect(node(page, "display")).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)
    await node(page, "display").click()
    port = page.locator('#details [data-inport="pressed"]')
    await port.locator("textarea").fill("{not json")
    await port.locator("[data-action=send]").click()
    await expect(port.locator(".error")).to_contain_text("not valid JSON")

    before = len(probe.received["display/pressed"])
    await port.locator("textarea").fill('{"from": "the page", "n": 42}')
    await port.locator("[data-action=send]").click()
    # The demo's button presses the display now and then too: wait for the page's message,
    # not for the next one (CI once saw the button's `true` arrive first).
    await until(
        lambda: (
            {"from": "the page", "n": 42}
            in [json.loads(m) for m in probe.received["display/pressed"][before:]]
        ),
        timeout=10,
        what="the page's message on display/pressed",
    )
    await expect(port.locator(".error")).to_have_text("")
    await context.close()


async def test_a_participant_going_away_shows_as_offline(
    browser: Browser, gateway: Gateway
) -> None:
    """A device of the graph that stops announcing: offline once its period has passed."""
    context, page = await signed_in(browser, gateway)
    await page.click("#open-add-node")
    # A node whose component is not in the library: the coordinator waits for its device.
    await page.evaluate(
        "document.getElementById('add-node-component').append(new Option('test/Sensor'))"
    )
    await page.select_option("#add-node-component", "test/Sensor")
    await page.fill("#add-node-name", "sensor")
    await page.click("#add-node button[type=submit]")
    await expect(node(page, "sensor")).to_have_class(re.compile(r"\boffline\b"), timeout=TIMEOUT)

    device = Participant(
        {
            "component": "test/Sensor",
            "inports": [],
            "outports": [{"id": "out"}],
            "discoveryPeriod": 1,
        },
        "sensor",
    )
    url = parse_broker_url(gateway.broker.url)
    async with background(serve([device], url, discovery_period=1.0)):
        await expect(node(page, "sensor")).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)
    await expect(node(page, "sensor")).to_have_class(re.compile(r"\boffline\b"), timeout=TIMEOUT)
    await expect(node(page, "sensor").locator(".state")).to_contain_text("offline")
    await context.close()


async def test_a_virtual_button_in_one_browser_lights_a_virtual_led_in_another(
    browser: Browser, gateway: Gateway
) -> None:
    phone_a, page_a = await signed_in(browser, gateway, PHONE)
    phone_b, page_b = await signed_in(browser, gateway, PHONE)
    for page in (page_a, page_b):
        await page.click("#tabs [data-view=phone]")
        await expect(page.locator("[data-virtual=button]")).to_be_enabled(timeout=TIMEOUT)
    await page_a.click("[data-virtual=button]")
    await page_b.click("[data-virtual=led]")
    button = page_a.locator(".card[data-kind=button]")
    led = page_b.locator(".card[data-kind=led]")
    await expect(button).to_contain_text("connected", timeout=TIMEOUT)
    await expect(led).to_contain_text("connected", timeout=TIMEOUT)
    button_role = await button.get_attribute("data-role")
    led_role = await led.get_attribute("data-role")
    assert button_role and led_role and button_role != led_role
    coordinator = gateway.service.coordinator
    await until(
        lambda: bool(
            coordinator.registry.live(button_role) and coordinator.registry.live(led_role)
        ),
        what="the virtual devices announced",
    )

    # A discovered participant becomes a node of the graph; the page shows it without a reload.
    await page_a.click("#tabs [data-view=graph]")
    await expect(node(page_a, led_role)).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)
    await expect(node(page_a, button_role)).to_have_class(
        re.compile(r"\bonline\b"), timeout=TIMEOUT
    )
    await page_a.click("#open-add-edge")
    await page_a.select_option("#add-edge-src", f"{button_role}.pressed")
    await page_a.select_option("#add-edge-tgt", f"{led_role}.on")
    await page_a.click("#add-edge button[type=submit]")
    await expect(edge(page_a, f"{button_role}.pressed", f"{led_role}.on")).to_have_count(
        1, timeout=TIMEOUT
    )

    await expect(led.locator(".led")).not_to_have_class(re.compile(r"\blit\b"))
    await page_a.click("#tabs [data-view=phone]")
    await button.locator(".press").click()
    await expect(led.locator(".led")).to_have_class(re.compile(r"\blit\b"), timeout=TIMEOUT)

    # Closing the page withdraws its devices: the LED goes offline.
    await phone_b.close()
    await expect(node(page_a, led_role)).to_have_class(re.compile(r"\boffline\b"), timeout=40_000)
    await phone_a.close()


async def test_without_a_secret_no_sign_in_and_the_other_views(
    browser: Browser, ws_mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A loopback runtime without a secret: the page opens signed in. Health readings this
    machine lacks say so; the log holds the participants' output and filters it."""
    async with running_gateway(ws_mosquitto, tmp_path, secret=None) as gateway:
        context = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
        page = await context.new_page()
        await page.goto(gateway.url)
        await expect(page.locator("#tabs")).to_be_visible(timeout=TIMEOUT)
        await expect(page.locator("#signin")).to_be_hidden()
        assert await page.evaluate("sessionStorage.length") == 0

        await page.click("#tabs [data-view=health]")
        await expect(page.locator('[data-health="load"]')).to_contain_text(re.compile(r"\d"))
        await expect(page.locator('[data-health="battery_percent"]')).to_have_text("not available")
        await expect(page.locator('[data-health="alarms"]')).to_be_visible()

        await page.click("#tabs [data-view=log]")
        lines = page.locator("#log li:not([hidden])")
        await expect(lines.filter(has_text="humidity").first).to_be_visible(timeout=TIMEOUT)
        await page.fill("#log-filter", "button presses")
        await expect(lines.first).to_be_visible()
        for text in await lines.all_text_contents():
            assert "button presses" in text.lower(), text
        await page.fill("#log-filter", "no line says this")
        await expect(lines).to_have_count(0)

        await page.click("#tabs [data-view=devices]")
        await expect(page.locator("#devices")).to_contain_text("No devices waiting")
        await context.close()


def saved(gateway: Gateway) -> Graph:
    """The graph as auto-save last wrote it."""
    path = gateway.service.config.graph_path
    assert path is not None
    return load_service_graph(path, auto_save=True)


def inport(page: Page, port: str) -> Locator:
    return page.locator(f'#details [data-inport="{port}"]')


async def test_an_iip_set_in_the_page_is_sent_and_can_be_removed(
    browser: Browser, gateway: Gateway, probe: Probe
) -> None:
    await probe.watch("display/pressed")
    context, page = await signed_in(browser, gateway)
    await expect(node(page, "display")).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)
    await node(page, "display").click()
    before = len(probe.received["display/pressed"])
    await inport(page, "pressed").locator("textarea").fill('{"iip": "from the page"}')
    await inport(page, "pressed").locator("[data-action=add-iip]").click()
    iip = page.locator('#graph g.iip-node[data-iip="display.pressed"]')
    await expect(iip).to_have_count(1, timeout=TIMEOUT)
    # The coordinator delivers it to the inport's topic, as it does the graph's own IIPs.
    got = await probe.wait_count("display/pressed", before + 1, timeout=10)
    assert {"iip": "from the page"} in [json.loads(m) for m in got[before:]]
    await until(lambda: len(saved(gateway).initials) == 2, what="the IIP saved")

    await iip.click()
    await expect(page.locator("#details")).to_contain_text("from the page")
    await page.click("#details [data-action=remove-iip]")
    await expect(iip).to_have_count(0, timeout=TIMEOUT)
    assert [i.tgt.process for i in gateway.service.coordinator.graph.initials] == ["alarm"]
    await until(lambda: len(saved(gateway).initials) == 1, what="the IIP's removal saved")
    # The demo's own IIP is still drawn.
    await expect(page.locator('#graph g.iip-node[data-iip="alarm.limit"]')).to_have_count(1)
    assert page_errors.get(page, []) == []
    await context.close()


async def test_a_node_added_from_the_library_starts_and_is_saved(
    browser: Browser, gateway: Gateway
) -> None:
    context, page = await signed_in(browser, gateway)
    await page.click("#open-add-node")
    # The component library as component:list gives it: the built-in core/Repeat among them.
    await expect(page.locator('#add-node-component option[value="core/Repeat"]')).to_have_count(1)
    await page.select_option("#add-node-component", "core/Repeat")
    await page.fill("#add-node-name", "repeater")
    await page.click("#add-node button[type=submit]")
    await expect(node(page, "repeater")).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)
    await expect(node(page, "repeater")).to_contain_text("core/Repeat")
    # Its participant was started by the coordinator and announced itself.
    supervisor = gateway.service.supervisor
    assert supervisor is not None and "repeater" in supervisor.roles()
    assert gateway.service.coordinator.registry.live("repeater")
    await until(
        lambda: saved(gateway).processes.get("repeater") == Process("core/Repeat"),
        what="the new node saved",
    )
    assert page_errors.get(page, []) == []
    await context.close()


async def test_a_node_removed_in_the_page_goes_with_its_edges_and_process(
    browser: Browser, gateway: Gateway
) -> None:
    context, page = await signed_in(browser, gateway)
    await expect(node(page, "button")).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)
    await expect(edge(page, "button.pressed", "display.pressed")).to_have_count(1)
    await node(page, "button").click()
    page.once("dialog", lambda dialog: dialog.accept())  # "Remove button from the graph?"
    await page.click("#details [data-action=remove-node]")
    await expect(node(page, "button")).to_have_count(0, timeout=TIMEOUT)
    await expect(edge(page, "button.pressed", "display.pressed")).to_have_count(0)
    await expect(page.locator("#details")).to_contain_text("no longer in the graph")
    supervisor = gateway.service.supervisor
    assert supervisor is not None and "button" not in supervisor.roles()
    assert "button" not in gateway.service.coordinator.graph.processes
    await until(lambda: "button" not in saved(gateway).processes, what="the removal saved")
    # Everything else stays.
    for role in ("climate", "alarm", "display"):
        await expect(node(page, role)).to_have_class(re.compile(r"\bonline\b"))
    assert page_errors.get(page, []) == []
    await context.close()


def queue(gateway: Gateway, role: str, port: str) -> str:
    """The topic of ``port`` of ``role`` as its participant announced it."""
    seen = gateway.service.coordinator.registry.live(role)
    assert seen, role
    definition = seen[0].definition
    ports = [*definition.inports, *definition.outports]
    return next(p.queue for p in ports if p.id == port)


async def test_a_virtual_slider_and_text_display(
    browser: Browser, gateway: Gateway, probe: Probe
) -> None:
    context, page = await signed_in(browser, gateway, PHONE)
    await page.click("#tabs [data-view=phone]")
    await expect(page.locator("[data-virtual=slider]")).to_be_enabled(timeout=TIMEOUT)
    await page.click("[data-virtual=slider]")
    await page.click("[data-virtual=display]")
    slider = page.locator(".card[data-kind=slider]")
    display = page.locator(".card[data-kind=display]")
    for card in (slider, display):
        await expect(card).to_contain_text("connected", timeout=TIMEOUT)
    slider_role = await slider.get_attribute("data-role")
    display_role = await display.get_attribute("data-role")
    assert slider_role and display_role
    registry = gateway.service.coordinator.registry
    await until(
        lambda: bool(registry.live(slider_role) and registry.live(display_role)),
        what="the virtual devices announced",
    )

    # The slider's value arrives on its outport's topic.
    value = queue(gateway, slider_role, "value")
    await probe.watch(value)
    await slider.locator("input[type=range]").fill("73")
    await expect(slider.locator("output")).to_have_text("73")
    assert [json.loads(m) for m in await probe.wait_count(value, 1, timeout=10)] == [73]

    # A message to the display's inport shows on its screen: JSON text as text, else as is.
    text = queue(gateway, display_role, "text")
    probe.transport.publish(text, json.dumps("hello from MQTT").encode())
    await expect(display.locator(".screen")).to_have_text("hello from MQTT", timeout=TIMEOUT)
    probe.transport.publish(text, b'{"t": 21.5}')
    await expect(display.locator(".screen")).to_have_text('{"t": 21.5}', timeout=TIMEOUT)
    assert page_errors.get(page, []) == []
    await context.close()


async def test_a_device_appearing_elsewhere_shows_up_without_a_reload(
    browser: Browser, gateway: Gateway
) -> None:
    """A participant the graph does not have announces itself on ``fbp``: the coordinator makes
    it a node, and every open page draws it from the graph:addnode broadcast."""
    pages = [await signed_in(browser, gateway) for _ in range(2)]
    for _, page in pages:
        await expect(node(page, "climate")).to_have_class(
            re.compile(r"\bonline\b"), timeout=TIMEOUT
        )
        await page.evaluate("window.notReloaded = true")
    device = Participant(
        {
            "component": "test/Porch",
            "icon": "lightbulb-o",
            "inports": [{"id": "on"}],
            "outports": [],
            "discoveryPeriod": 1,
        },
        "porch",
    )
    url = parse_broker_url(gateway.broker.url)
    async with background(serve([device], url, discovery_period=1.0)):
        for _, page in pages:
            porch = node(page, "porch")
            await expect(porch).to_have_class(re.compile(r"\bonline\b"), timeout=TIMEOUT)
            await expect(porch).to_contain_text("test/Porch")
            assert await page.evaluate("window.notReloaded") is True
        await until(lambda: "porch" in saved(gateway).processes, what="the new node saved")
    for context, page in pages:
        assert page_errors.get(page, []) == []
        await context.close()


async def test_a_ble_device_shows_its_bridge_and_details_and_is_adopted(
    browser: Browser, ws_mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The BLE bridge's list (published here as the bridge does) in the Devices view; Adopt
    writes the role the page was given into gateway.yaml and restarts that bridge."""
    address = "A4:C1:38:12:34:56"
    config = tmp_path / "gateway.yaml"
    config.write_text("bridges:\n  ble:\n    enabled: true\n")
    restarts: list[str] = []

    async def restart(bridge: str) -> None:
        restarts.append(bridge)

    seen = BridgeSeen(config, restart)
    thermo = SeenDevice(
        "ble", address, "LYWSD03MMC", "ATC 123456", time.time(), "temperature 21.5 °C, rssi -70"
    )
    async with (
        running_gateway(ws_mosquitto, tmp_path, devices=[seen]) as gateway,
        probing(gateway.broker.url, "ble-bridge") as bridge,
    ):
        bridge.transport.publish(seen_topic("ble"), encode_seen([thermo]), qos=1, retain=True)
        context, page = await signed_in(browser, gateway)
        await page.click("#tabs [data-view=devices]")
        row = page.locator(f'#devices tr[data-bridge="ble"][data-device="{address}"]')
        await expect(row).to_contain_text("temperature 21.5 °C, rssi -70", timeout=TIMEOUT)
        await expect(row.locator("td").first).to_have_text("ble")
        role = row.locator("input")
        await expect(role).to_have_value("ATC-123456")  # the name, as a role may be
        await role.fill("kitchen")
        await row.locator("button").click()
        await expect(page.locator("#toast")).to_contain_text(
            f"{address} adopted as kitchen; the ble bridge restarts", timeout=TIMEOUT
        )
        assert load_config(config).bridges.ble.roles == ((address, "kitchen"),)
        assert restarts == ["ble"]
        bridge.transport.publish(seen_topic("ble"), encode_seen([]), qos=1, retain=True)
        await expect(page.locator("#devices")).to_contain_text(
            "No devices waiting", timeout=TIMEOUT
        )
        await context.close()
    assert page_errors.get(page, []) == []


async def test_a_board_added_in_the_page_offers_its_secrets_h_once_root_wrote_it(
    browser: Browser, ws_mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """As on the appliance: the page checks the role, the request waits for root (played
    here by what msgflo-devices.service runs), the page then shows the download link, and
    the file downloaded is the board's secrets.h."""
    kit = load_config(write_config(tmp_path))
    provision(kit, tmp_path)
    boards = Boards(kit, by_request=True, reload=lambda: None)
    async with running_gateway(ws_mosquitto, tmp_path, boards=boards) as gateway:
        context, page = await signed_in(browser, gateway)
        await page.click("#tabs [data-view=devices]")
        # broker.roles of write_config: a device without a secrets.h yet.
        sensor = page.locator('#boards tr[data-board="sensor"]')
        await expect(sensor).to_contain_text("offline", timeout=TIMEOUT)
        await expect(sensor.locator("[data-action=make-secrets]")).to_be_visible()
        await page.fill("#add-board-role", "lamp/#")
        await page.click("#add-board button[type=submit]")
        await expect(page.locator("#add-board-error")).to_contain_text("wildcard")
        assert not (kit.data_dir / DEVICE_REQUESTS).exists()  # refused in the page
        await page.fill("#add-board-role", "kitchen/lamp")
        await page.click("#add-board button[type=submit]")
        row = page.locator('#boards tr[data-board="kitchen/lamp"]')
        await expect(row).to_contain_text("waiting for the gateway", timeout=TIMEOUT)
        await until((kit.data_dir / DEVICE_REQUESTS).exists, what="the request")
        assert await asyncio.to_thread(apply_device_requests, kit, lambda: None) == 1
        link = row.locator("[data-action=download-secrets]")
        await expect(link).to_be_visible(timeout=TIMEOUT)
        async with page.expect_download() as download_info:
            await link.click()
        download = await download_info.value
        assert download.suggested_filename == "secrets.h"
        saved_to = tmp_path / "downloaded.h"
        await download.save_as(saved_to)
        assert saved_to.read_text() == render_secrets_h(device_secrets(kit, "kitchen/lamp"))
        await expect(row).to_contain_text("offline")
        await context.close()
    assert page_errors.get(page, []) == []
