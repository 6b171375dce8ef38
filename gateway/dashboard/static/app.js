// The dashboard: sign-in, the live graph, devices, health, log, and the phone as a device.
import { EdgeStats, GraphModel, GraphView, ago, edgeKey, iconChar, portKey } from "/static/graph.js";
import { Runtime, api, authorized, secretStore } from "/static/runtime.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2500;
const MAIN = "default/main";

const state = {
  runtime: null,
  graphId: MAIN,
  model: new GraphModel(),
  view: null,
  components: new Map(), // name -> {name, icon, inports, outports}
  participants: new Map(), // role -> Participant (GET /api/status)
  serverTime: Date.now() / 1000,
  clockOffset: 0,
  stats: new Map(), // edge key -> EdgeStats
  selection: null,
  logAfter: null,
  logLines: [],
  phone: null,
  started: false,
};

// ---- small helpers -----------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

let toastTimer = null;
function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, 5000);
}

function setConnection(text, ok) {
  const box = $("connection");
  box.textContent = text;
  box.classList.toggle("ok", ok === true);
  box.classList.toggle("bad", ok === false);
}

const narrow = () => window.matchMedia("(max-width: 899px)").matches;
const now = () => Date.now() / 1000 + state.clockOffset;

function send(protocol, command, payload) {
  try {
    state.runtime.send(protocol, command, { graph: state.graphId, ...payload });
  } catch (err) {
    toast(err.message);
  }
}

function pretty(data) {
  try {
    return JSON.stringify(data, null, 2);
  } catch {
    return String(data);
  }
}

// JSON typed in the page: parsed here before anything is sent.
function parseJson(text) {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: `not valid JSON: ${err.message}` };
  }
}

// ---- sign in -----------------------------------------------------------------------------------

async function signIn(secret) {
  if (state.runtime) state.runtime.close();
  const runtime = new Runtime(secret);
  state.runtime = runtime;
  setConnection("connecting…");
  const info = await runtime.connect();
  if (!authorized(info)) {
    runtime.close();
    return false;
  }
  return true;
}

function showSignIn(message) {
  $("signin").hidden = false;
  $("tabs").hidden = true;
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  $("signin-error").textContent = message || "";
  setConnection("signed out", false);
  $("secret").focus();
}

async function boot() {
  const stored = secretStore.get();
  try {
    if (await signIn(stored)) {
      start();
      return;
    }
  } catch (err) {
    setConnection(err.message, false);
    setTimeout(boot, 3000);
    return;
  }
  if (stored) secretStore.clear();
  showSignIn(stored ? "The stored secret was refused; enter it again." : "");
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const secret = $("secret").value;
  $("signin-error").textContent = "";
  try {
    if (await signIn(secret)) {
      secretStore.set(secret);
      $("secret").value = "";
      start();
    } else {
      showSignIn("Wrong secret: the runtime refused it. (After 5 wrong tries, wait a minute.)");
    }
  } catch (err) {
    showSignIn(`Cannot reach the runtime: ${err.message}`);
  }
});

// ---- the running app ---------------------------------------------------------------------------

function start() {
  $("signin").hidden = true;
  $("tabs").hidden = false;
  setConnection(`connected to ${state.runtime.info.label || "the runtime"}`, true);
  state.graphId = state.runtime.info.graph || MAIN;
  const runtime = state.runtime;
  runtime.addEventListener("message", (event) => onMessage(event.detail));
  runtime.addEventListener("close", () => {
    if (state.runtime !== runtime) return;
    setConnection("connection lost; reconnecting…", false);
    setTimeout(reconnect, 1500);
  });
  if (!state.view) state.view = new GraphView($("graph"), select);
  showView(location.hash.slice(1) || "graph");
  loadAll();
  if (!state.started) {
    state.started = true;
    poll();
    setInterval(() => {
      if (document.visibilityState === "visible") poll();
    }, POLL_MS);
    setInterval(() => {
      if (document.visibilityState === "visible") state.view.update(state.participants, state.stats, now());
    }, 1000);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") poll();
    });
    addEventListener("resize", debounce(() => render(), 250));
  }
}

async function reconnect() {
  try {
    if (await signIn(secretStore.get())) start();
    else showSignIn("The runtime no longer accepts the secret.");
  } catch {
    setTimeout(reconnect, 3000);
  }
}

function loadAll() {
  state.components.clear();
  send("component", "list", {});
  send("component", "getsource", { name: MAIN });
}

function watchEdges() {
  const edges = [...state.model.edges.values()].map((e) => ({ src: e.src, tgt: e.tgt }));
  send("network", "edges", { edges });
}

function onMessage(msg) {
  const { protocol, command, payload } = msg;
  if (protocol === "component" && command === "component") {
    state.components.set(payload.name, payload);
  } else if (protocol === "component" && command === "componentsready") {
    fillForms();
  } else if (protocol === "component" && command === "source" && payload.language === "json") {
    const name = payload.library ? `${payload.library}/${payload.name}` : payload.name;
    if (name !== MAIN && name !== state.graphId) return;
    state.model.load(JSON.parse(payload.code));
    render();
    watchEdges();
  } else if (protocol === "graph") {
    if (command === "clear") {
      state.graphId = payload.id || state.graphId;
      send("component", "getsource", { name: MAIN });
    } else if (command === "error") {
      toast(payload.message);
    } else if (state.model.apply(command, payload)) {
      render();
      if (command.endsWith("edge") || command === "removenode" || command === "renamenode") watchEdges();
    }
  } else if (protocol === "network" && command === "data") {
    if (!payload.src) return;
    const key = edgeKey(payload.src, payload.tgt);
    let stats = state.stats.get(key);
    if (!stats) {
      stats = new EdgeStats();
      state.stats.set(key, stats);
    }
    stats.add(payload.data, Date.now());
    if (state.selection && state.selection.kind === "edge" && state.selection.key === key) showDetails();
  } else if (protocol === "network" && (command === "output" || command === "error")) {
    addLiveLog(payload.message, command === "error");
  } else if (command === "error") {
    toast(payload.message);
  }
}

function render() {
  if (!state.view) return;
  state.view.render(state.model, narrow());
  state.view.update(state.participants, state.stats, now());
  $("graph-name").textContent = state.model.name ? `graph: ${state.model.name}` : "";
  fillForms();
  if (state.selection) showDetails();
}

function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

// ---- views -------------------------------------------------------------------------------------

function showView(name) {
  if (!$(`view-${name}`)) name = "graph";
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const tab of document.querySelectorAll("#tabs button")) tab.classList.toggle("active", tab.dataset.view === name);
  if (name === "graph") render();
  if (name === "phone") startPhone();
}

for (const tab of document.querySelectorAll("#tabs button")) {
  tab.addEventListener("click", () => {
    history.replaceState(null, "", `#${tab.dataset.view}`);
    showView(tab.dataset.view);
  });
}

async function poll() {
  try {
    const status = await api("/api/status");
    state.clockOffset = status.time - Date.now() / 1000;
    state.participants = new Map(status.participants.map((p) => [p.role, p]));
    state.view.update(state.participants, state.stats, now());
    showDevices(status.devices || []);
    pollBoards();
    showHealth(status.health || {});
    if (state.selection && state.selection.kind === "node") showDetails();
  } catch (err) {
    if (err.status === 401) {
      secretStore.clear();
      showSignIn("The secret is no longer accepted.");
      return;
    }
    setConnection(`status not available: ${err.message}`, false);
  }
  pollLog();
}

// ---- details of the selection, sending, edits ------------------------------------------------

function select(selection) {
  state.selection = selection;
  showDetails();
}

function portsOf(nodeId) {
  const node = state.model.nodes.get(nodeId);
  const p = state.participants.get(nodeId);
  const c = node && state.components.get(node.component);
  const ids = (list) => (list || []).map((port) => port.id);
  return {
    inports: [...new Set([...ids(p && p.inports), ...ids(c && c.inPorts)])],
    outports: [...new Set([...ids(p && p.outports), ...ids(c && c.outPorts)])],
  };
}

function showDetails() {
  const box = $("details");
  const s = state.selection;
  if (!s) {
    box.hidden = true;
    return;
  }
  // Do not rebuild what the user is typing into.
  if (box.contains(document.activeElement) && document.activeElement.tagName === "TEXTAREA") return;
  box.hidden = false;
  const close = h("button", { type: "button", onclick: () => { state.selection = null; state.view.select(null); } }, "Close");
  if (s.kind === "node") box.replaceChildren(...nodeDetails(s.key), close);
  else if (s.kind === "edge") box.replaceChildren(...edgeDetails(s.key), close);
  else box.replaceChildren(...iipDetails(s.key), close);
}

function nodeDetails(id) {
  const node = state.model.nodes.get(id);
  if (!node) return [h("p", {}, `${id} is no longer in the graph.`)];
  const p = state.participants.get(id);
  const ports = portsOf(id);
  const seen = p && p.last_seen !== null ? ago(now() - p.last_seen) : "never";
  const parts = [
    h("h3", {}, `${iconChar(p && p.icon)} ${id}`),
    h("dl", {},
      h("dt", {}, "component"), h("dd", {}, node.component),
      h("dt", {}, "state"), h("dd", { class: p && p.online ? "" : "error" }, p && p.online ? "online" : "offline"),
      h("dt", {}, "last seen"), h("dd", {}, seen),
      p && p.label ? [h("dt", {}, "label"), h("dd", {}, p.label)] : null),
  ];
  for (const port of ports.inports) parts.push(inportForm(id, port));
  if (ports.outports.length) parts.push(h("p", { class: "muted" }, `outports: ${ports.outports.join(", ")}`));
  parts.push(h("p", {}, h("button", { type: "button", class: "danger", "data-action": "remove-node",
    onclick: () => {
      if (confirm(`Remove ${id} from the graph? Its participant is stopped if the gateway started it.`)) send("graph", "removenode", { id });
    } }, "Remove node")));
  return parts;
}

function inportForm(node, port) {
  const area = h("textarea", { "aria-label": `JSON for ${node} ${port}`, "data-port": port, spellcheck: "false" }, "true");
  const error = h("p", { class: "error", role: "alert" });
  const value = () => {
    const parsed = parseJson(area.value);
    error.textContent = parsed.ok ? "" : parsed.error;
    return parsed;
  };
  const sendNow = async () => {
    const parsed = value();
    if (!parsed.ok) return;
    try {
      await api("/api/send", { method: "POST", body: { role: node, port, data: parsed.value } });
      toast(`sent to ${node} ${port}`);
    } catch (err) {
      error.textContent = err.message;
    }
  };
  const iip = () => {
    const parsed = value();
    if (parsed.ok) send("graph", "addinitial", { src: { data: parsed.value }, tgt: { node, port }, metadata: {} });
  };
  return h("div", { class: "port", "data-inport": port },
    h("strong", {}, `in: ${port}`), area, error,
    h("div", { class: "buttons" },
      h("button", { type: "button", class: "primary", "data-action": "send", onclick: sendNow }, "Send"),
      h("button", { type: "button", "data-action": "add-iip", onclick: iip }, "Set as IIP")));
}

function edgeDetails(key) {
  const edge = state.model.edges.get(key);
  if (!edge) return [h("p", {}, "This edge is no longer in the graph.")];
  const stats = state.stats.get(key);
  return [
    h("h3", {}, `${portKey(edge.src)} → ${portKey(edge.tgt)}`),
    h("dl", {},
      h("dt", {}, "messages"), h("dd", {}, String(stats ? stats.count : 0)),
      h("dt", {}, "rate"), h("dd", {}, `${stats ? stats.rate(Date.now()).toFixed(1) : "0"} / s`),
      h("dt", {}, "last"), h("dd", {}, stats && stats.lastTime ? ago((Date.now() - stats.lastTime) / 1000) : "none yet")),
    h("p", { class: "muted" }, "last payload"),
    h("pre", { class: "payload", id: "edge-payload" }, stats ? pretty(stats.last) : "—"),
    h("p", {}, h("button", { type: "button", class: "danger", "data-action": "remove-edge",
      onclick: () => send("graph", "removeedge", { src: edge.src, tgt: edge.tgt }) }, "Remove edge")),
  ];
}

function iipDetails(key) {
  const iip = state.model.iips.get(key);
  if (!iip) return [h("p", {}, "This IIP is no longer in the graph.")];
  return [
    h("h3", {}, `IIP → ${key}`),
    h("pre", { class: "payload" }, pretty(iip.data)),
    h("p", {}, h("button", { type: "button", class: "danger", "data-action": "remove-iip",
      onclick: () => send("graph", "removeinitial", { tgt: iip.tgt, src: { data: iip.data } }) }, "Remove IIP")),
  ];
}

function fillForms() {
  const components = $("add-node-component");
  const chosen = components.value;
  components.replaceChildren(...[...state.components.keys()].sort().map((name) => h("option", { value: name }, name)));
  if (chosen) components.value = chosen;
  const src = $("add-edge-src");
  const tgt = $("add-edge-tgt");
  const [srcValue, tgtValue] = [src.value, tgt.value];
  const outs = [];
  const ins = [];
  for (const id of [...state.model.nodes.keys()].sort()) {
    const ports = portsOf(id);
    for (const port of ports.outports) outs.push(`${id}.${port}`);
    for (const port of ports.inports) ins.push(`${id}.${port}`);
  }
  src.replaceChildren(...outs.map((v) => h("option", { value: v }, v.replace(".", " · "))));
  tgt.replaceChildren(...ins.map((v) => h("option", { value: v }, v.replace(".", " · "))));
  if (outs.includes(srcValue)) src.value = srcValue;
  if (ins.includes(tgtValue)) tgt.value = tgtValue;
}

function splitPort(value) {
  const dot = value.lastIndexOf(".");
  return { node: value.slice(0, dot), port: value.slice(dot + 1) };
}

function toggleForm(id) {
  const form = $(id);
  form.hidden = !form.hidden;
  if (!form.hidden) fillForms();
}

$("open-add-node").addEventListener("click", () => toggleForm("add-node"));
$("open-add-edge").addEventListener("click", () => toggleForm("add-edge"));
for (const cancel of document.querySelectorAll("form .cancel")) {
  cancel.addEventListener("click", () => {
    cancel.closest("form").hidden = true;
  });
}
$("add-node").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = $("add-node-name").value.trim();
  if (state.model.nodes.has(id)) {
    toast(`${id} is already in the graph`);
    return;
  }
  send("graph", "addnode", { id, component: $("add-node-component").value, metadata: {} });
  $("add-node").hidden = true;
  $("add-node-name").value = "";
});
$("add-edge").addEventListener("submit", (event) => {
  event.preventDefault();
  send("graph", "addedge", { src: splitPort($("add-edge-src").value), tgt: splitPort($("add-edge-tgt").value), metadata: {} });
  $("add-edge").hidden = true;
});

// ---- devices, health, log ----------------------------------------------------------------------

let devicesShown = "";
function showDevices(devices) {
  const text = JSON.stringify(devices);
  if (text === devicesShown) return;
  devicesShown = text;
  const box = $("devices");
  if (!devices.length) {
    box.replaceChildren(h("p", { class: "muted" }, "No devices waiting to be adopted. Plug one in: see “Plug in”."));
    return;
  }
  const rows = devices.map((d) => {
    const role = h("input", { value: suggestedRole(d), "aria-label": `role for ${d.id}` });
    const adopt = async () => {
      try {
        await api("/api/devices/adopt", { method: "POST", body: { bridge: d.bridge, id: d.id, role: role.value } });
        toast(`${d.id} adopted as ${role.value}; the ${d.bridge} bridge restarts`);
      } catch (err) {
        toast(`adopting ${d.id} failed: ${err.message}`);
      }
    };
    const named = d.name && d.name !== d.id ? h("div", { class: "muted" }, d.name) : "";
    return h("tr", { "data-device": d.id, "data-bridge": d.bridge },
      h("td", {}, d.bridge), h("td", { title: d.adopt || "" }, d.id, named), h("td", {}, d.model || ""),
      h("td", { class: "details" }, d.details || ""),
      h("td", {}, d.last_seen ? ago(now() - d.last_seen) : ""),
      h("td", {}, role, h("button", { type: "button", onclick: adopt }, "Adopt")));
  });
  box.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, ["bridge", "id", "model", "details", "seen", "adopt as"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows)));
}

// A role the config takes: no whitespace or MQTT wildcards (a BLE name may have both).
function suggestedRole(d) {
  const role = (d.name || d.model || d.id).trim().replace(/[\s#+]+/g, "-").replace(/^\/+/, "");
  return role || d.id;
}

// ---- boards on the WiFi (their own broker user and secrets.h) ----------------------------------

// The gateway's own rules for a board's role (gateway.appliance.devices.role_problem), checked
// before anything is sent; the gateway checks again.
const RESERVED = ["coordinator", "admin", "web"];
function roleProblem(role) {
  if (!role) return "a role is needed";
  if (/[#+]/.test(role)) return "a role cannot contain an MQTT wildcard (# or +)";
  if (role.startsWith("/")) return "a role cannot start with /";
  if (role.startsWith("$")) return "a role cannot start with $";
  if (/[\s:]/u.test(role) || /\p{Cc}/u.test(role)) return "a role cannot contain white space, control characters or :";
  if (RESERVED.includes(role) || role.startsWith("bridge-")) return `${role} is reserved for the gateway`;
  return null;
}

let boardsShown = "";
let boardsAvailable = false;
async function pollBoards() {
  let listing;
  try {
    listing = await api("/api/boards");
  } catch {
    return;
  }
  boardsAvailable = listing.available;
  const problem = $("boards-problem");
  problem.hidden = listing.available;
  problem.textContent = listing.available ? "" : `Boards cannot be added here: ${listing.problem}`;
  $("add-board").hidden = !listing.available;
  const text = JSON.stringify(listing.boards.map((b) => ({ ...b, last_seen: b.last_seen && Math.round(b.last_seen) })));
  if (text === boardsShown) return;
  boardsShown = text;
  showBoards(listing.boards);
}

function showBoards(boards) {
  const box = $("boards");
  if (!boards.length) {
    box.replaceChildren(h("p", { class: "muted" }, "No boards have their own user yet."));
    return;
  }
  const rows = boards.map((b) => {
    const state = b.pending === "add" && !b.added ? "being added…"
      : b.online ? "online" : "offline";
    // A device made otherwise (broker.roles, gateway-config) has none yet: ask for it.
    const secrets = b.secrets_h
      ? h("a", { href: "#", "data-action": "download-secrets", onclick: (event) => { event.preventDefault(); downloadSecrets(b.role); } }, "secrets.h")
      : b.pending ? h("span", { class: "muted" }, "waiting for the gateway…")
        : h("button", { type: "button", "data-action": "make-secrets", onclick: () => boardAction("show", b.role) }, "Make secrets.h");
    const remove = h("button", { type: "button", class: "danger", "data-action": "remove-board", disabled: b.pending === "remove" || !b.added,
      onclick: () => removeBoard(b.role) }, b.pending === "remove" ? "Removing…" : "Remove");
    return h("tr", { "data-board": b.role },
      h("td", {}, b.role),
      h("td", { class: b.online ? "" : "error" }, state),
      h("td", {}, b.last_seen ? ago(now() - b.last_seen) : "never"),
      h("td", {}, secrets, b.problem ? h("div", { class: "error" }, b.problem) : null),
      h("td", {}, remove));
  });
  box.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, ["role", "state", "last seen", "for the sketch", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows)));
}

async function downloadSecrets(role) {
  try {
    const { text, filename } = await api(`/api/boards/secrets?role=${encodeURIComponent(role)}`);
    const url = URL.createObjectURL(new Blob([text], { type: "text/x-c" }));
    const link = h("a", { href: url, download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    toast(`secrets.h of ${role}: ${err.message}`);
  }
}

async function removeBoard(role) {
  if (!confirm(`Remove ${role}? A board using its password is disconnected at once and refused from then on.`)) return;
  await boardAction("remove", role);
}

async function boardAction(action, role) {
  try {
    await api(`/api/boards/${action}`, { method: "POST", body: { role } });
  } catch (err) {
    toast(`${role}: ${action} failed: ${err.message}`);
  }
  pollBoards();
}

$("add-board").addEventListener("submit", async (event) => {
  event.preventDefault();
  const role = $("add-board-role").value.trim();
  const problem = roleProblem(role);
  $("add-board-error").textContent = problem || "";
  if (problem || !boardsAvailable) return;
  try {
    const answer = await api("/api/boards/add", { method: "POST", body: { role } });
    $("add-board-role").value = "";
    toast(answer.pending ? `${role}: the gateway is adding it; its secrets.h follows` : `${role} added`);
  } catch (err) {
    $("add-board-error").textContent = err.message;
  }
  pollBoards();
});

// The health participant's readings (docs/health.md), in its ports' order.
const HEALTH = [
  ["temperature", "CPU temperature"], ["undervoltage", "supply undervoltage"],
  ["throttled", "CPU throttled"], ["supply_online", "supply online"],
  ["battery_voltage", "battery voltage"], ["battery_current", "battery current"],
  ["battery_percent", "battery"], ["load", "load"], ["memory_free", "free memory"],
  ["disk_free", "free space"], ["wifi_clients", "WiFi clients"],
  ["broker_clients", "broker clients"], ["uptime", "uptime"],
];
const ALARMS = { undervoltage: "supply undervoltage", throttled: "CPU throttled", hot: "hot", battery_low: "battery low" };

function showHealth(health) {
  const readings = health.readings || {};
  const active = Object.entries(health.alarms || {}).filter(([, on]) => on).map(([name]) => ALARMS[name] || name);
  const items = [
    h("dt", {}, "alarms"),
    h("dd", { "data-health": "alarms", class: active.length ? "alarm" : "muted" }, active.length ? active.join(", ") : "none"),
  ];
  if (health.shutdown) {
    items.push(h("dt", {}, "shutdown"), h("dd", { "data-health": "shutdown", class: "alarm" },
      `battery at ${health.shutdown.battery_percent} %: powering off`));
  }
  for (const [key, label] of HEALTH) {
    const reading = readings[key];
    const text = reading && reading.value !== undefined && reading.value !== null
      ? `${reading.value}${reading.unit ? ` ${reading.unit}` : ""}`
      : "not available";
    items.push(h("dt", {}, label), h("dd", { "data-health": key, class: text === "not available" ? "muted" : "" }, text));
  }
  const source = health.source === "participant" ? `from ${health.role}` : "read by the dashboard (no health participant)";
  items.push(h("dt", {}, "source"), h("dd", { "data-health": "source", class: "muted" }, source));
  $("health").replaceChildren(...items);
}

const MAX_LOG = 500;
const pendingLive = new Map(); // text -> <li> of a network:output line not yet seen in /api/log

async function pollLog() {
  try {
    const query = state.logAfter === null ? "" : `?after=${state.logAfter}`;
    const { lines } = await api(`/api/log${query}`);
    for (const line of lines) {
      state.logAfter = Math.max(state.logAfter ?? -1, line.seq);
      const text = `${line.source}: ${line.text}`;
      const live = pendingLive.get(text);
      if (live) {
        pendingLive.delete(text);
        continue;
      }
      appendLog(line.source, line.text, line.time, false);
    }
  } catch {
    // /api/log is optional for the page: network:output lines still arrive.
  }
}

function addLiveLog(message, error) {
  const colon = message.indexOf(": ");
  const source = colon > 0 ? message.slice(0, colon) : "runtime";
  const text = colon > 0 ? message.slice(colon + 2) : message;
  const li = appendLog(source, text, now(), error);
  pendingLive.set(message, li);
  if (pendingLive.size > MAX_LOG) pendingLive.delete(pendingLive.keys().next().value);
}

function appendLog(source, text, time, error) {
  const list = $("log");
  const stamp = new Date(time * 1000).toLocaleTimeString();
  const li = h("li", { class: error ? "error" : "" }, h("time", {}, stamp), h("span", { class: "source" }, source), text);
  li.dataset.search = `${source} ${text}`.toLowerCase();
  li.hidden = !matches(li);
  list.append(li);
  while (list.childElementCount > MAX_LOG) list.firstElementChild.remove();
  return li;
}

const matches = (li) => li.dataset.search.includes($("log-filter").value.trim().toLowerCase());
$("log-filter").addEventListener("input", () => {
  for (const li of $("log").children) li.hidden = !matches(li);
});

// ---- the phone as a device ---------------------------------------------------------------------

async function startPhone() {
  if (state.phone) return;
  let config;
  try {
    config = await api("/api/mqtt");
  } catch (err) {
    $("phone-status").textContent = `Virtual devices are not available: ${err.message}`;
    return;
  }
  if (state.phone) return;
  const { Phone } = await import("/static/phone.js");
  state.phone = new Phone(config);
  state.phone.addEventListener("status", (event) => {
    const { device, text } = event.detail;
    if (device.stateEl) device.stateEl.textContent = text;
  });
  $("phone-status").textContent = `Devices are named ${config.prefix}-…`;
  for (const button of document.querySelectorAll("[data-virtual]")) button.disabled = false;
}

for (const button of document.querySelectorAll("[data-virtual]")) {
  button.addEventListener("click", () => addVirtual(button.dataset.virtual));
}

function addVirtual(kind) {
  if (!state.phone) return;
  const card = h("div", { class: "card", "data-kind": kind });
  let onMessage = () => {};
  const device = state.phone.add(kind, (port, text) => onMessage(port, text));
  const stateEl = h("span", { class: "muted" }, device.state);
  device.stateEl = stateEl;
  card.dataset.role = device.def.role;
  const remove = h("button", { type: "button", onclick: () => { state.phone.remove(device); card.remove(); } }, "Remove");
  const toGraph = h("button", { type: "button", "data-action": "add-to-graph", onclick: () => {
    if (!state.model.nodes.has(device.def.role)) send("graph", "addnode", { id: device.def.role, component: device.def.component, metadata: {} });
  } }, "Put in graph");
  const head = [h("strong", {}, device.name), h("div", { class: "role" }, device.def.role), stateEl, toGraph];
  if (kind === "button") {
    const press = h("button", { type: "button", class: "press primary", onclick: () => state.phone.send(device, "pressed", true) }, "Press");
    card.append(...head, press, remove);
  } else if (kind === "slider") {
    const output = h("output", {}, "50");
    const slider = h("input", { type: "range", min: 0, max: 100, value: 50, "aria-label": device.name });
    slider.addEventListener("change", () => state.phone.send(device, "value", Number(slider.value)));
    slider.addEventListener("input", () => { output.textContent = slider.value; });
    card.append(...head, slider, output, remove);
  } else if (kind === "led") {
    const led = h("div", { class: "led", role: "img", "aria-label": "LED off" });
    onMessage = (port, text) => {
      const on = truthyText(text);
      led.classList.toggle("lit", on);
      led.setAttribute("aria-label", on ? "LED on" : "LED off");
    };
    card.append(...head, led, remove);
  } else {
    const screen = h("div", { class: "screen" }, "");
    onMessage = (port, text) => {
      const parsed = parseJson(text);
      screen.textContent = parsed.ok && typeof parsed.value === "string" ? parsed.value : text;
    };
    card.append(...head, screen, remove);
  }
  $("virtual-devices").append(card);
}

function truthyText(text) {
  const parsed = parseJson(text);
  const value = parsed.ok ? parsed.value : text.trim().toLowerCase();
  if (typeof value === "string") return ["on", "true", "1", "yes", "high"].includes(value.toLowerCase());
  return Boolean(value);
}

for (const button of document.querySelectorAll("[data-virtual]")) button.disabled = true;
boot();
