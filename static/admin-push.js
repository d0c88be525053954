/**
 * admin-push browser client: live events for Medusa admin dashboards.
 *
 * One ES module, no dependencies, no build step. Wire contract: /work/shared/contract.md (v1).
 *
 * @example
 * import { AdminPush, debounce } from "/static/admin-push.js";
 * const push = new AdminPush({ getToken: async () => jwt, events: ["product.updated"] });
 * const refetch = debounce(() => loadProducts(), 250);
 * push.on("product.updated", refetch);
 * push.on("resync", refetch);            // events were missed: refetch everything shown
 * push.start();
 */

/** Control events: no id, never replayed, handled by the client itself (and re-emitted). */
const CONTROL = new Set(["ready", "resync", "reconnect", "auth_expired"]);
/** Names `on()` accepts that are not server event names (so no SSE listener is needed). */
const LOCAL = new Set(["status", "error", "*"]);
/** Built-in event names; SSE needs one listener per name, so these are always listened for. */
const BUILTIN_EVENTS = ["banner.updated", "product.updated", "order.updated"];
/** WebSocket close codes with a meaning in the contract. */
const WS_AUTH_EXPIRED = 4401;
const WS_SERVICE_RESTART = 1012;

/**
 * Trailing-edge debounce: a burst of calls results in one call `ms` after the last one,
 * with the arguments of that last call (so a burst of events causes one refetch).
 * @template {(...args: any[]) => void} F
 * @param {F} fn
 * @param {number} ms
 * @returns {F & { cancel(): void, flush(): void }}
 */
export function debounce(fn, ms) {
  let timer = null;
  let lastArgs = null;
  const run = () => {
    timer = null;
    const args = lastArgs;
    lastArgs = null;
    fn(...args);
  };
  const debounced = (...args) => {
    lastArgs = args;
    clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
  debounced.cancel = () => { clearTimeout(timer); timer = null; lastArgs = null; };
  debounced.flush = () => { if (timer !== null) { clearTimeout(timer); run(); } };
  return /** @type {any} */ (debounced);
}

/**
 * @typedef {object} AdminPushOptions
 * @property {string} [url] service origin (may include a path prefix), default `location.origin`
 * @property {() => string | Promise<string>} getToken admin JWT; called before every (re)connect
 * @property {string[]} [events] only receive these event names (`?events=a,b`)
 * @property {("ws"|"sse")[]} [transports] order of preference, default `["ws", "sse"]`
 * @property {string} [lastEventId] resume point to start from (e.g. kept across page loads)
 * @property {number} [minBackoffMs] backoff base, default 500
 * @property {number} [maxBackoffMs] backoff cap, default 30000
 * @property {number} [wsRetryAfterMs] after falling back to SSE, skip WS this long, default 5 min
 * @property {number} [readyTimeoutMs] a connection without `ready` by then counts as failed, default 10000
 */

/**
 * Real-time client for the admin-push service (WebSocket with SSE fallback, lossless resume).
 *
 * Events emitted to `on()` handlers:
 * - any event name, and `"*"` for every event: `(data, envelope)` where envelope is `{id, event, data}`
 * - `"ready"` `({last_event_id, transport})`, `"resync"` `({reason})`, `"reconnect"` `({after_ms})`,
 *   `"auth_expired"` `({})` — the server's control events, after the client has acted on them
 * - `"status"` `({state: "connecting"|"open"|"closed", transport: "ws"|"sse"|null})` on every change
 * - `"error"` `(Error)` — token, ticket or transport failures; the client keeps retrying
 */
export class AdminPush {
  #opts;
  #base;
  #transports;
  /** @type {Map<string, Set<Function>>} */
  #handlers = new Map();
  /** Event names to listen for on SSE (built-ins, the filter and every name given to `on()`). */
  #names = new Set(BUILTIN_EVENTS);
  #lastEventId = null;
  #state = "closed";
  #transport = null;
  #running = false;
  /** Bumped on every connect and on stop(); async steps of an older generation give up. */
  #gen = 0;
  /** The current connection: `{transport, socket, ready, readyTimer}` or null. */
  #conn = null;
  #timer = null;
  #attempt = 0;
  #wsSkipUntil = 0;
  #lastAuthExpiry = 0;

  /** @param {AdminPushOptions} options */
  constructor(options) {
    if (typeof options?.getToken !== "function") throw new TypeError("AdminPush: getToken is required");
    const url = options.url ?? globalThis.location?.origin;
    if (!url) throw new TypeError("AdminPush: url is required outside a browser page");
    this.#opts = {
      getToken: options.getToken,
      events: options.events?.length ? [...options.events] : null,
      minBackoffMs: options.minBackoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      wsRetryAfterMs: options.wsRetryAfterMs ?? 5 * 60_000,
      readyTimeoutMs: options.readyTimeoutMs ?? 10_000,
    };
    // Absolute, without trailing slash; a path prefix (service behind /push) is kept.
    this.#base = new URL(url, globalThis.location?.href).href.replace(/\/+$/, "");
    this.#transports = (options.transports ?? ["ws", "sse"]).filter((t) => t === "ws" || t === "sse");
    if (this.#transports.length === 0) throw new TypeError("AdminPush: transports must name ws and/or sse");
    this.#lastEventId = options.lastEventId || null;
    for (const name of this.#opts.events ?? []) this.#names.add(name);
  }

  /** Last event id seen (the resume point), or null before the first `ready`. */
  get lastEventId() { return this.#lastEventId; }
  /** Transport of the current connection attempt: "ws", "sse" or null. */
  get transport() { return this.#transport; }
  /** "connecting", "open" or "closed". */
  get state() { return this.#state; }

  /**
   * Subscribe to an event name, a control event, `"status"`, `"error"` or `"*"` (all events).
   * @param {string} name
   * @param {(data: any, envelope?: {id?: string, event: string, data: any}) => void} handler
   * @returns {() => void} unsubscribe
   */
  on(name, handler) {
    if (!this.#handlers.has(name)) this.#handlers.set(name, new Set());
    this.#handlers.get(name).add(handler);
    if (!CONTROL.has(name) && !LOCAL.has(name) && !this.#names.has(name)) {
      this.#names.add(name);
      // An already open EventSource must learn the new name too, or it drops those events.
      if (this.#conn?.transport === "sse") this.#listenSse(this.#conn, name);
    }
    return () => { this.#handlers.get(name)?.delete(handler); };
  }

  /** Connect (no-op when already started). */
  start() {
    if (this.#running) return;
    this.#running = true;
    this.#attempt = 0;
    this.#connect();
  }

  /** Close everything, cancel timers; no reconnects until `start()` is called again. */
  stop() {
    this.#running = false;
    this.#gen++;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#drop();
  }

  // ---- connection lifecycle ----

  async #connect() {
    const gen = ++this.#gen;
    const transport = this.#pickTransport();
    this.#setStatus("connecting", transport);
    let ticket;
    try {
      // Fresh token and ticket every time: tickets are single-use and short-lived.
      const token = await this.#opts.getToken();
      if (gen !== this.#gen) return;
      if (!token) throw new Error("getToken returned no token");
      ticket = await this.#fetchTicket(token);
      if (gen !== this.#gen) return;
    } catch (err) {
      if (gen !== this.#gen) return;
      this.#setStatus("closed", null);
      this.#emit("error", err instanceof Error ? err : new Error(String(err)));
      this.#schedule(this.#backoff());
      return;
    }
    const conn = { transport, socket: null, ready: false, readyTimer: null };
    this.#conn = conn;
    // A proxy may accept the connection and then pass nothing through; do not wait forever.
    conn.readyTimer = setTimeout(() => this.#fail(conn, "no ready event in time"), this.#opts.readyTimeoutMs);
    try {
      if (transport === "ws") this.#openWs(conn, ticket);
      else this.#openSse(conn, ticket);
    } catch (err) { // e.g. ws:// from an https page (mixed content) throws synchronously
      this.#fail(conn, err?.message ?? String(err));
    }
  }

  async #fetchTicket(token) {
    const res = await fetch(`${this.#base}/admin-ws/ticket`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    const body = await res.json().catch(() => null);
    if (!res.ok || typeof body?.ticket !== "string") {
      const err = new Error(`ticket request failed: HTTP ${res.status}${body?.message ? ` (${body.message})` : ""}`);
      Object.assign(err, { status: res.status, body });
      throw err;
    }
    return body.ticket;
  }

  /** Query string shared by both transports; commas in `events` stay literal. */
  #query(ticket) {
    let q = `ticket=${encodeURIComponent(ticket)}`;
    if (this.#lastEventId) q += `&last_event_id=${encodeURIComponent(this.#lastEventId)}`;
    if (this.#opts.events) q += `&events=${this.#opts.events.map(encodeURIComponent).join(",")}`;
    return q;
  }

  #openWs(conn, ticket) {
    const ws = new WebSocket(`${this.#base.replace(/^http/i, "ws")}/admin-ws?${this.#query(ticket)}`);
    conn.socket = ws;
    ws.onmessage = (e) => {
      if (conn !== this.#conn) return;
      let msg;
      try { msg = JSON.parse(e.data); } catch { return console.warn("admin-push: non-JSON frame ignored"); }
      if (msg && typeof msg.event === "string") this.#onMessage(conn, msg.event, msg.data ?? {}, msg.id);
    };
    ws.onclose = (e) => {
      if (conn !== this.#conn) return;
      if (e.code === WS_AUTH_EXPIRED) this.#onAuthExpired();
      else this.#fail(conn, `websocket closed (${e.code})`, e.code);
    };
  }

  #openSse(conn, ticket) {
    const es = new EventSource(`${this.#base}/admin-sse?${this.#query(ticket)}`);
    conn.socket = es;
    for (const name of CONTROL) this.#listenSse(conn, name);
    for (const name of this.#names) this.#listenSse(conn, name);
    // EventSource would reconnect by itself with the same, already spent ticket; take over instead.
    es.onerror = () => { if (conn === this.#conn) this.#fail(conn, "event stream error"); };
  }

  #listenSse(conn, name) {
    conn.socket.addEventListener(name, (e) => {
      if (conn !== this.#conn) return;
      let data;
      try { data = JSON.parse(e.data); } catch { data = e.data; }
      // e.lastEventId sticks from earlier records, so only real events take their id from it.
      this.#onMessage(conn, name, data ?? {}, CONTROL.has(name) ? undefined : e.lastEventId || undefined);
    });
  }

  #onMessage(conn, name, data, id) {
    if (id == null && CONTROL.has(name)) return this.#onControl(conn, name, data);
    if (id != null) {
      if (id === this.#lastEventId) return; // ids are opaque: equality is the only safe comparison
      this.#lastEventId = id;
    }
    const envelope = { id, event: name, data };
    this.#emit(name, data, envelope);
    this.#emit("*", data, envelope);
  }

  #onControl(conn, name, data) {
    const envelope = { event: name, data };
    switch (name) {
      case "ready":
        conn.ready = true;
        clearTimeout(conn.readyTimer);
        this.#attempt = 0;
        if (data.last_event_id) this.#lastEventId = data.last_event_id;
        this.#setStatus("open", conn.transport);
        break;
      case "reconnect": // the server is draining: leave now, come back after exactly after_ms
        this.#drop();
        this.#schedule(Math.max(0, Number(data.after_ms) || 0));
        break;
      case "auth_expired":
        this.#onAuthExpired();
        break;
      // "resync" needs nothing from the client itself: the app refetches.
    }
    this.#emit(name, data, envelope);
  }

  #onAuthExpired() {
    this.#drop();
    // Reconnect at once with a fresh token, unless getToken keeps handing out nearly expired ones.
    const now = Date.now();
    const again = now - this.#lastAuthExpiry < 10_000;
    this.#lastAuthExpiry = now;
    this.#schedule(again ? this.#backoff() : 0);
  }

  /** The current connection failed: fall back to SSE if WS never got to `ready`, else back off. */
  #fail(conn, reason, code) {
    if (conn !== this.#conn) return;
    this.#drop();
    const fallback = conn.transport === "ws" && !conn.ready && code !== WS_SERVICE_RESTART &&
      this.#transports.includes("sse");
    if (fallback) {
      this.#wsSkipUntil = Date.now() + this.#opts.wsRetryAfterMs;
      this.#emit("error", new Error(`${reason} before ready; falling back to sse`));
      this.#schedule(0);
    } else {
      if (!conn.ready) this.#emit("error", new Error(`${conn.transport}: ${reason}`));
      this.#schedule(this.#backoff());
    }
  }

  /** Close the current connection without triggering its own failure handling. */
  #drop() {
    const conn = this.#conn;
    this.#conn = null;
    if (conn) {
      clearTimeout(conn.readyTimer);
      const s = conn.socket;
      if (s) {
        s.onmessage = s.onclose = s.onerror = null;
        try { s.close(); } catch { /* already closed */ }
      }
    }
    this.#setStatus("closed", null);
  }

  #pickTransport() {
    const usable = this.#transports.filter((t) => t !== "ws" || Date.now() >= this.#wsSkipUntil);
    return usable[0] ?? this.#transports[0];
  }

  /** Exponential backoff with full jitter: uniform in [0, min(max, base * 2^attempt)). */
  #backoff() {
    const cap = Math.min(this.#opts.maxBackoffMs, this.#opts.minBackoffMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.random() * cap;
  }

  #schedule(delayMs) {
    clearTimeout(this.#timer);
    if (!this.#running) return;
    this.#timer = setTimeout(() => { this.#timer = null; this.#connect(); }, delayMs);
  }

  #setStatus(state, transport) {
    if (state === this.#state && transport === this.#transport) return;
    this.#state = state;
    this.#transport = transport;
    this.#emit("status", { state, transport });
  }

  #emit(name, data, envelope) {
    for (const handler of [...(this.#handlers.get(name) ?? [])]) {
      try { handler(data, envelope); } catch (err) {
        // One broken handler must neither break the stream nor starve the other handlers.
        console.error(`admin-push: "${name}" handler threw`, err);
      }
    }
  }
}
