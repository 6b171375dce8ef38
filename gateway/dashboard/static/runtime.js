// The FBP runtime protocol over the page's own origin (sub-protocol "noflo"), and the private
// HTTP API (docs/dashboard.md). Every message carries the secret when there is one.

const SECRET_KEY = "msgflo-gateway-secret";

export const secretStore = {
  get: () => sessionStorage.getItem(SECRET_KEY),
  set: (s) => sessionStorage.setItem(SECRET_KEY, s),
  clear: () => sessionStorage.removeItem(SECRET_KEY),
};

export function runtimeUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/`;
}

// One WebSocket connection. Messages are dispatched as events named "protocol:command" (and
// "message" for all of them), with the payload as detail.
export class Runtime extends EventTarget {
  constructor(secret) {
    super();
    this.secret = secret || null;
    this.ws = null;
    this.info = null;
  }

  // Opens the connection and asks runtime:getruntime; resolves with the runtime:runtime payload.
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(runtimeUrl(), "noflo");
      this.ws = ws;
      let answered = false;
      ws.addEventListener("open", () => this.send("runtime", "getruntime", {}));
      ws.addEventListener("message", (event) => {
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!answered && msg.protocol === "runtime" && msg.command === "runtime") {
          answered = true;
          this.info = msg.payload;
          resolve(msg.payload);
        }
        this.dispatchEvent(new CustomEvent(`${msg.protocol}:${msg.command}`, { detail: msg.payload }));
        this.dispatchEvent(new CustomEvent("message", { detail: msg }));
      });
      ws.addEventListener("close", () => {
        if (!answered) reject(new Error("the runtime closed the connection"));
        this.dispatchEvent(new Event("close"));
      });
      ws.addEventListener("error", () => {
        if (!answered) reject(new Error("cannot reach the runtime"));
      });
    });
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  send(protocol, command, payload) {
    if (!this.open) throw new Error("not connected to the runtime");
    const body = { ...payload };
    const msg = { protocol, command, payload: body };
    if (this.secret) {
      body.secret = this.secret;
      msg.secret = this.secret;
    }
    this.ws.send(JSON.stringify(msg));
  }

  close() {
    if (this.ws) this.ws.close();
  }
}

// Whether a runtime:runtime answer means we may use the runtime.
export function authorized(info) {
  return Array.isArray(info.capabilities) && info.capabilities.length > 0;
}

export async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const secret = secretStore.get();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  const init = { method: options.method || "GET", headers, cache: "no-store" };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const reason = data && data.error ? data.error : `${response.status} ${response.statusText}`;
    const error = new Error(reason);
    error.status = response.status;
    throw error;
  }
  return data;
}
