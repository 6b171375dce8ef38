// The phone as a device: virtual participants in the page, announced on MQTT topic "fbp" with
// msgflo discovery messages over MQTT on WebSockets (docs/participant.md). They declare a short
// discovery period, so the coordinator counts them gone soon after they stop announcing; when
// the page closes they withdraw (an announcement with a tiny period, sent by the page or, if it
// cannot, by the broker as the connection's will), so they go at once.
import mqtt from "/static/vendor/mqtt.esm.js";

const PERIOD = 10; // seconds: announced every PERIOD / 2.2 s, gone after 3 periods of silence
const WITHDRAW_PERIOD = 0.001; // the coordinator's minimum timeout (1 s) applies

export const KINDS = {
  button: { component: "web/Button", icon: "hand-pointer-o", label: "A button on a phone", inports: [], outports: [{ id: "pressed", type: "boolean" }] },
  slider: { component: "web/Slider", icon: "sliders", label: "A slider on a phone", inports: [], outports: [{ id: "value", type: "number" }] },
  led: { component: "web/Led", icon: "lightbulb-o", label: "An LED on a phone", inports: [{ id: "on", type: "boolean" }], outports: [] },
  display: { component: "web/Display", icon: "desktop", label: "A text display on a phone", inports: [{ id: "text", type: "string" }], outports: [] },
};

// Role and queues of a virtual device named `name` (e.g. "button2").
export function naming(prefix, name) {
  const role = `${prefix}-${name}`;
  return { role, queue: (port) => `web/${prefix}/${name}/${port}` };
}

export function definition(prefix, name, kind, period = PERIOD) {
  const k = KINDS[kind];
  const { role, queue } = naming(prefix, name);
  const port = (p) => ({ id: p.id, type: p.type, queue: queue(p.id) });
  return {
    id: role,
    role,
    component: k.component,
    label: k.label,
    icon: k.icon,
    inports: k.inports.map(port),
    outports: k.outports.map(port),
    discoveryPeriod: period,
  };
}

const discovery = (payload) => JSON.stringify({ protocol: "discovery", command: "participant", payload });

// Each virtual device has a connection of its own, so that its will (set at connect) withdraws
// exactly it when the page goes without saying goodbye.
export class Phone extends EventTarget {
  constructor(config) {
    super();
    this.config = config; // GET /api/mqtt: {url, username, password, prefix}
    this.devices = new Map(); // name -> device
    this.timer = setInterval(() => this.announceAll(), (PERIOD / 2.2) * 1000);
    addEventListener("pagehide", () => this.close());
  }

  status(device, text) {
    device.state = text;
    this.dispatchEvent(new CustomEvent("status", { detail: { device, text } }));
  }

  nextName(kind) {
    let n = 1;
    while (this.devices.has(n === 1 ? kind : `${kind}${n}`)) n += 1;
    return n === 1 ? kind : `${kind}${n}`;
  }

  add(kind, onMessage) {
    const name = this.nextName(kind);
    const def = definition(this.config.prefix, name, kind);
    const device = { name, kind, def, onMessage, state: "connecting…" };
    this.devices.set(name, device);
    const { url, username, password } = this.config;
    const client = mqtt.connect(url, {
      username,
      password,
      clientId: `${def.role}-${Math.random().toString(16).slice(2, 8)}`,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 2000,
      connectTimeout: 10000,
      keepalive: 15,
      // The page's own timers: mqtt.js would otherwise run its keep-alive timer in a Worker made
      // from a blob: URL, which the page's Content-Security-Policy (script-src 'self') blocks.
      timerVariant: "native",
      will: { topic: "fbp", payload: discovery({ ...def, discoveryPeriod: WITHDRAW_PERIOD }), qos: 0, retain: false },
    });
    device.client = client;
    client.on("connect", () => {
      for (const port of def.inports) client.subscribe(port.queue, { qos: 0 });
      this.announce(device);
      this.status(device, "connected");
    });
    client.on("reconnect", () => this.status(device, "reconnecting…"));
    client.on("offline", () => this.status(device, "offline"));
    client.on("error", (err) => this.status(device, `error: ${err.message}`));
    client.on("message", (topic, payload) => {
      const port = def.inports.find((p) => p.queue === topic);
      if (port) onMessage(port.id, new TextDecoder().decode(payload));
    });
    return device;
  }

  announce(device) {
    if (device.client && device.client.connected) device.client.publish("fbp", discovery(device.def));
  }

  announceAll() {
    for (const device of this.devices.values()) this.announce(device);
  }

  send(device, port, value) {
    const queue = device.def.outports.find((p) => p.id === port).queue;
    device.client.publish(queue, JSON.stringify(value));
  }

  remove(device) {
    const client = device.client;
    this.devices.delete(device.name);
    if (!client) return;
    if (client.connected) client.publish("fbp", discovery({ ...device.def, discoveryPeriod: WITHDRAW_PERIOD }));
    client.end(false);
  }

  close() {
    clearInterval(this.timer);
    for (const device of [...this.devices.values()]) this.remove(device);
  }
}
