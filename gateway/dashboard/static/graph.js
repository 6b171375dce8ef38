// The graph as the page knows it (from component:getsource and graph:* broadcasts), laid out
// by dagre and drawn as SVG.
import dagre from "/static/vendor/dagre.esm.js";

const SVG = "http://www.w3.org/2000/svg";

export const portKey = (p) => `${p.node}.${p.port}`;
export const edgeKey = (src, tgt) => `${portKey(src)}>${portKey(tgt)}`;

export class GraphModel {
  constructor() {
    this.clear();
  }

  clear() {
    this.name = "";
    this.nodes = new Map(); // id -> {id, component, metadata}
    this.edges = new Map(); // key -> {src, tgt}
    this.iips = new Map(); // target port key -> {data, tgt}
  }

  // FBP JSON (the code of component:source for the main graph).
  load(json) {
    this.clear();
    this.name = (json.properties && json.properties.name) || "";
    for (const [id, p] of Object.entries(json.processes || {})) {
      this.nodes.set(id, { id, component: p.component, metadata: p.metadata || {} });
    }
    for (const c of json.connections || []) {
      const tgt = { node: c.tgt.process, port: c.tgt.port };
      if (c.src) {
        const src = { node: c.src.process, port: c.src.port };
        this.edges.set(edgeKey(src, tgt), { src, tgt });
      } else {
        this.iips.set(portKey(tgt), { data: c.data, tgt });
      }
    }
  }

  // A graph:* broadcast; returns whether what is drawn changed.
  apply(command, p) {
    switch (command) {
      case "addnode":
        this.nodes.set(p.id, { id: p.id, component: p.component, metadata: p.metadata || {} });
        return true;
      case "removenode":
        this.nodes.delete(p.id);
        for (const [k, e] of this.edges) if (e.src.node === p.id || e.tgt.node === p.id) this.edges.delete(k);
        for (const [k, i] of this.iips) if (i.tgt.node === p.id) this.iips.delete(k);
        return true;
      case "renamenode": {
        const node = this.nodes.get(p.from);
        if (!node) return false;
        this.nodes.delete(p.from);
        this.nodes.set(p.to, { ...node, id: p.to });
        const rename = (port) => (port.node === p.from ? { ...port, node: p.to } : port);
        const edges = [...this.edges.values()].map((e) => ({ src: rename(e.src), tgt: rename(e.tgt) }));
        this.edges = new Map(edges.map((e) => [edgeKey(e.src, e.tgt), e]));
        const iips = [...this.iips.values()].map((i) => ({ data: i.data, tgt: rename(i.tgt) }));
        this.iips = new Map(iips.map((i) => [portKey(i.tgt), i]));
        return true;
      }
      case "changenode": {
        const node = this.nodes.get(p.id);
        if (node) node.metadata = { ...node.metadata, ...(p.metadata || {}) };
        return false;
      }
      case "addedge":
        this.edges.set(edgeKey(p.src, p.tgt), { src: clean(p.src), tgt: clean(p.tgt) });
        return true;
      case "removeedge":
        return this.edges.delete(edgeKey(p.src, p.tgt));
      case "addinitial":
        this.iips.set(portKey(p.tgt), { data: p.src.data, tgt: clean(p.tgt) });
        return true;
      case "removeinitial":
        return this.iips.delete(portKey(p.tgt));
      default:
        return false;
    }
  }
}

const clean = (p) => ({ node: p.node, port: p.port });

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Font Awesome 4 names (what participants announce) shown as plain symbols that common fonts
// have (DejaVu on a Raspberry Pi, any phone): no icon font, no emoji font needed.
const ICONS = {
  "thermometer": "♨", "thermometer-half": "♨", "bell": "⚠", "warning": "⚠", "exclamation-triangle": "⚠",
  "lightbulb-o": "☀", "lightbulb": "☀", "sun-o": "☀", "hand-pointer-o": "☝", "hand-o-up": "☝",
  "toggle-on": "◉", "circle": "●", "square": "■", "desktop": "▤", "television": "▤", "tv": "▤",
  "mobile": "☎", "phone": "☎", "forward": "▶", "play": "▶", "trash": "✖", "clock-o": "◷", "tint": "☂",
  "sliders": "☰", "microchip": "⚡", "usb": "⚡", "bolt": "⚡", "wifi": "≋", "cog": "⚙", "gear": "⚙",
  "font": "✎", "pencil": "✎", "star": "★", "check": "✔",
};
export const iconChar = (name) => ICONS[name] || "◆";

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never seen";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function shortValue(data, max = 18) {
  let text;
  try {
    text = typeof data === "string" ? data : JSON.stringify(data);
  } catch {
    text = String(data);
  }
  if (text === undefined) text = "";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const NODE_H = 58;
const LABEL_W = 96;
const LABEL_H = 30;

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// Draws a GraphModel into an <svg>; update() refreshes texts and classes without a new layout.
export class GraphView {
  constructor(svg, onSelect) {
    this.svg = svg;
    this.onSelect = onSelect;
    this.nodeEls = new Map();
    this.edgeEls = new Map();
    this.selected = null;
  }

  render(model, narrow) {
    const g = new dagre.graphlib.Graph({ multigraph: true });
    g.setGraph({ rankdir: narrow ? "TB" : "LR", nodesep: 24, ranksep: narrow ? 50 : 70, edgesep: 12, marginx: 10, marginy: 10 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const node of model.nodes.values()) {
      const chars = Math.max(node.id.length + 3, (node.component || "").length, 14);
      g.setNode(node.id, { width: Math.min(chars * 7.4 + 20, 240), height: NODE_H });
    }
    for (const [key, e] of model.edges) {
      if (!g.hasNode(e.src.node) || !g.hasNode(e.tgt.node)) continue;
      g.setEdge(e.src.node, e.tgt.node, { width: LABEL_W, height: LABEL_H, labelpos: "c" }, key);
    }
    for (const [key, i] of model.iips) {
      if (!g.hasNode(i.tgt.node)) continue;
      const id = `iip:${key}`;
      g.setNode(id, { width: Math.min(Math.max(shortValue(i.data, 24).length * 7 + 20, 50), 190), height: 26, iip: i });
      g.setEdge(id, i.tgt.node, { width: 40, height: 18, labelpos: "c" }, `iip>${key}`);
    }
    dagre.layout(g);

    const svg = this.svg;
    svg.replaceChildren();
    const size = g.graph();
    const width = Math.max(size.width || 0, 200);
    const height = Math.max(size.height || 0, 120);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "xMidYMin meet");
    if (narrow) svg.setAttribute("height", String(Math.min(Math.max(height * (svg.clientWidth || 340) / width, 260), 2400)));
    else svg.removeAttribute("height");

    const defs = el("defs");
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }));
    defs.append(marker);
    svg.append(defs);

    this.edgeEls.clear();
    this.nodeEls.clear();
    const edgeLayer = el("g", { class: "edges" });
    const nodeLayer = el("g", { class: "nodes" });
    svg.append(edgeLayer, nodeLayer);

    for (const ref of g.edges()) {
      const e = g.edge(ref);
      const key = ref.name;
      const iip = key.startsWith("iip>");
      const d = curve(e.points);
      const group = el("g", { class: iip ? "edge iip" : "edge", "data-key": key });
      group.append(el("path", { d, class: "hit" }), el("path", { d, class: "line", "marker-end": "url(#arrow)" }));
      if (!iip) {
        const edge = model.edges.get(key);
        group.dataset.src = portKey(edge.src);
        group.dataset.tgt = portKey(edge.tgt);
        group.append(el("rect", { class: "label-bg", x: e.x - LABEL_W / 2, y: e.y - LABEL_H / 2, width: LABEL_W, height: LABEL_H, rx: 4 }));
        const ports = el("text", { x: e.x, y: e.y - 3, "text-anchor": "middle" }, `${edge.src.port} → ${edge.tgt.port}`);
        const value = el("text", { x: e.x, y: e.y + 11, "text-anchor": "middle", class: "value" }, "");
        group.append(ports, value);
        this.edgeEls.set(key, { group, value });
      } else {
        group.dataset.tgt = key.slice(4);
      }
      group.addEventListener("click", () => this.select(iip ? { kind: "iip", key: key.slice(4) } : { kind: "edge", key }));
      edgeLayer.append(group);
    }

    for (const id of g.nodes()) {
      const n = g.node(id);
      const x = n.x - n.width / 2;
      const y = n.y - n.height / 2;
      if (n.iip) {
        const group = el("g", { class: "iip-node", "data-iip": portKey(n.iip.tgt) });
        group.append(el("rect", { x, y, width: n.width, height: n.height, rx: 13 }));
        group.append(el("text", { x: n.x, y: n.y + 4, "text-anchor": "middle" }, shortValue(n.iip.data, 24)));
        group.addEventListener("click", () => this.select({ kind: "iip", key: portKey(n.iip.tgt) }));
        nodeLayer.append(group);
        continue;
      }
      const node = model.nodes.get(id);
      const group = el("g", { class: "node", "data-id": id, tabindex: 0 });
      group.append(el("rect", { x, y, width: n.width, height: n.height, rx: 6 }));
      const title = el("text", { x: x + 8, y: y + 17, class: "title" }, `◆ ${id}`);
      const component = el("text", { x: x + 8, y: y + 33 }, node.component || "");
      const state = el("text", { x: x + 8, y: y + 49, class: "state" }, "");
      group.append(title, component, state);
      group.addEventListener("click", () => this.select({ kind: "node", key: id }));
      group.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter") this.select({ kind: "node", key: id });
      });
      nodeLayer.append(group);
      this.nodeEls.set(id, { group, title, state });
    }
    this.markSelected();
  }

  // participants: Map role -> Participant (GET /api/status); stats: Map edge key -> stats.
  // Runs every second: only texts that changed are written, since every write makes the
  // browser lay out and paint that part again (most of the page's CPU on a 200-node graph).
  update(participants, stats, now) {
    for (const [id, { group, title, state }] of this.nodeEls) {
      const p = participants.get(id);
      group.classList.toggle("online", Boolean(p && p.online));
      group.classList.toggle("offline", Boolean(!p || !p.online));
      setText(title, `${iconChar(p && p.icon)} ${id}`);
      if (!p) setText(state, "offline · not discovered");
      else setText(state, `${p.online ? "online" : "offline"} · ${ago(p.last_seen === null ? null : now - p.last_seen)}`);
    }
    for (const [key, { group, value }] of this.edgeEls) {
      const s = stats.get(key);
      if (!s) {
        setText(value, "");
        continue;
      }
      const rate = s.rate(Date.now());
      group.classList.toggle("active", rate > 0);
      setText(value, `${shortValue(s.last, 10)} · ${rate.toFixed(rate < 10 ? 1 : 0)}/s`);
    }
  }

  select(selection) {
    this.selected = selection;
    this.markSelected();
    this.onSelect(selection);
  }

  markSelected() {
    for (const selected of this.svg.querySelectorAll(".selected")) selected.classList.remove("selected");
    const s = this.selected;
    if (!s) return;
    const found = s.kind === "node" ? this.nodeEls.get(s.key) : this.edgeEls.get(s.key);
    if (found) found.group.classList.add("selected");
  }
}

function curve(points) {
  if (!points || points.length === 0) return "";
  let d = `M${points[0].x},${points[0].y}`;
  if (points.length === 2) return `${d} L${points[1].x},${points[1].y}`;
  for (let i = 1; i < points.length - 1; i += 1) {
    const mx = (points[i].x + points[i + 1].x) / 2;
    const my = (points[i].y + points[i + 1].y) / 2;
    d += ` Q${points[i].x},${points[i].y} ${i === points.length - 2 ? `${points[i + 1].x},${points[i + 1].y}` : `${mx},${my}`}`;
  }
  return d;
}

// Messages seen on one edge: the count in a sliding window gives the rate.
export class EdgeStats {
  constructor() {
    this.times = [];
    this.count = 0;
    this.last = undefined;
    this.lastTime = null;
  }

  add(data, now) {
    if (this.firstTime === undefined) this.firstTime = now;
    this.count += 1;
    this.last = data;
    this.lastTime = now;
    this.times.push(now);
    if (this.times.length > 2000) this.times.splice(0, 1000);
  }

  // Messages per second over the last 10 s, or over the time since the page saw the first one
  // (at least 1 s), so a page opened a moment ago does not show a tenth of the rate.
  rate(now, window = 10000) {
    while (this.times.length && this.times[0] < now - window) this.times.shift();
    if (this.firstTime === undefined) this.firstTime = this.times.length ? this.times[0] : now;
    const span = Math.max(1000, Math.min(window, now - this.firstTime));
    return this.times.length / (span / 1000);
  }
}
