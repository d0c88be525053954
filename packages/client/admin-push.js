/**
 * @admin-push/client: live events for Medusa admin dashboards, from the admin-push service.
 *
 * One ES module, no dependencies, no build step: the npm package `@admin-push/client` ships this
 * file, and the service serves the very same file at `/static/admin-push.js`. The wire protocol it
 * speaks is described in the repository's `docs/protocol.md`.
 *
 * @example
 * import { AdminPush, debounce } from "@admin-push/client";
 * const push = new AdminPush({ url: "https://push.example.com", getToken: async () => jwt });
 * const refetch = debounce(() => loadProducts(), 250);
 * push.on("product.updated", refetch);
 * push.on("resync", refetch);            // events were missed: refetch everything shown
 * push.on("status", ({ state, retryAt, error }) => render(state, retryAt, error));
 * push.start();
 */

/** Control events: no id, never replayed, handled by the client itself (and re-emitted). */
const CONTROL = new Set(["ready", "resync", "reconnect", "auth_expired", "presence", "presence_refused", "receipt_rate"]);
/** Names `on()` accepts that are not server event names (so no SSE listener is needed). */
const LOCAL = new Set(["status", "error", "*"]);
/** Built-in event names; SSE needs one listener per name, so these are always listened for. */
const BUILTIN_EVENTS = [
  "banner.updated",
  "product.updated",
  "order.updated",
  "catalog.updated",
  "inventory.updated",
  "customer.updated",
  "promotion.updated",
  "price_list.updated",
  "settings.updated",
  "notification.created",
];
/** WebSocket close codes with a meaning in the protocol. */
const WS_AUTH_EXPIRED = 4401;
const WS_SERVICE_RESTART = 1012;
/**
 * Refusals a retry cannot fix: a bad or expired token (401), a forbidden origin or actor type
 * (403), a bad request such as an unknown event in the filter (400). Anything else (429 too many
 * connections, 503 full or draining, 5xx, the network) is worth retrying with backoff.
 */
const FATAL_STATUSES = new Set([400, 401, 403]);
/** Recent events remembered for deduplication and for catching up tabs that come back. */
const RECENT_EVENTS = 512;
/**
 * A presence report is repeated every third of the service's `presence.ttl_secs` (`ready`'s
 * `presence_ttl_ms`), so one lost report never lets it lapse; this often (a third of the default
 * 30 s) when a service does not say.
 */
const PRESENCE_REPEAT_MS = 10_000;
/** At most one report this often (the service allows 5 a second per connection). */
const PRESENCE_MIN_GAP_MS = 250;
/** The shape the service accepts for a record: `<kind>:<id>`. */
const PRESENCE_RECORD = /^[a-z][a-z0-9_]{0,31}:[A-Za-z0-9_-]{1,64}$/;

/**
 * The union of several tabs' records: one entry per record, `editing` winning over `viewing`.
 * @param {Iterable<Record<string, "viewing"|"editing">|Map<string, "viewing"|"editing">>} parts
 * @returns {Record<string, "viewing"|"editing">}
 */
function unionOf(parts) {
  /** @type {Record<string, "viewing"|"editing">} */
  const all = {};
  for (const part of parts) {
    for (const [record, state] of part instanceof Map ? part : Object.entries(part)) {
      if (all[record] !== "editing") all[record] = state;
    }
  }
  return all;
}

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
 * A failed connection attempt. When the service refused it, `status` and `code` are the HTTP
 * status and the `error` field of its JSON answer, and `message` is the service's own words.
 * `fatal` refusals stop the client until `start()` is called again.
 */
export class AdminPushError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number|null, code?: string|null, fatal?: boolean, retryAfterMs?: number}} [details]
   */
  constructor(message, { status = null, code = null, fatal = false, retryAfterMs = 0 } = {}) {
    super(message);
    this.name = "AdminPushError";
    this.status = status;
    this.code = code;
    this.fatal = fatal;
    this.retryAfterMs = retryAfterMs;
  }

  /** The plain form carried in `status` and across tabs. */
  toJSON() {
    return { message: this.message, status: this.status, code: this.code, fatal: this.fatal };
  }

  /** @param {{message: string, status?: number|null, code?: string|null, fatal?: boolean}} plain */
  static from(plain) {
    return new AdminPushError(plain.message, plain);
  }
}

/** Reads the service's `{error, message}` answer into an AdminPushError. */
async function refusal(res, what) {
  const body = await res.json().catch(() => null);
  const retryAfter = Number(res.headers.get("retry-after"));
  const message = typeof body?.message === "string" ? body.message : res.statusText || "refused";
  return new AdminPushError(`${what}: HTTP ${res.status}: ${message}`, {
    status: res.status,
    code: typeof body?.error === "string" ? body.error : null,
    fatal: FATAL_STATUSES.has(res.status),
    retryAfterMs: Number.isFinite(retryAfter) ? retryAfter * 1000 : 0,
  });
}

/**
 * The most recent events, oldest forgotten first: drops duplicates (a relay racing a resume) and
 * lets a leader catch a returning tab up on what it missed.
 */
class RecentEvents {
  /** @type {Map<string, {name: string, data: any, id: string, sampled?: boolean}>} */
  #byId = new Map();
  /** Remembers an event; false when its id was already there. */
  add(msg) {
    if (this.#byId.has(msg.id)) return false;
    this.#byId.set(msg.id, msg);
    if (this.#byId.size > RECENT_EVENTS) this.#byId.delete(/** @type {string} */ (this.#byId.keys().next().value));
    return true;
  }
  /** The event with this id, while it is remembered. */
  get(id) { return this.#byId.get(id); }
  /** The events after `id`, oldest first; null when `id` is not (or no longer) among them. */
  after(id) {
    if (!this.#byId.has(id)) return null;
    const all = [...this.#byId.values()];
    return all.slice(all.findIndex((m) => m.id === id) + 1);
  }
}

/**
 * @typedef {"connecting"|"open"|"reconnecting"|"refused"|"closed"} State
 * @typedef {{message: string, status: number|null, code: string|null, fatal: boolean}} Problem
 * @typedef {{state: State, transport: "ws"|"sse"|null, retryAt: number|null, error: Problem|null}} Status
 * @typedef {object} Connection one connection attempt, from its ticket to its end
 * @property {"ws"|"sse"} transport
 * @property {string} token the admin JWT it was opened with (for the diagnostic request)
 * @property {WebSocket|EventSource|null} socket
 * @property {boolean} opened the handshake succeeded
 * @property {boolean} ready the service sent `ready`
 * @property {any} readyData what that `ready` said
 * @property {ReturnType<typeof setTimeout>|undefined} readyTimer
 * @property {Promise<void>} [posting] SSE: the presence reports sent over HTTP, one after another
 * @property {number} [reportSeq] SSE: the number of the last report sent over HTTP
 */

/**
 * @typedef {object} AdminPushOptions
 * @property {string} [url] service origin (may include a path prefix), default `location.origin`
 * @property {() => string | Promise<string>} getToken admin JWT; called before every (re)connect
 * @property {string[]} [events] only receive these event names (`?events=a,b`)
 * @property {("ws"|"sse")[]} [transports] order of preference, default `["ws", "sse"]`
 * @property {string} [lastEventId] resume point to start from (e.g. kept across page loads)
 * @property {boolean} [shared] one connection for all tabs of this origin, default true
 * @property {number} [minBackoffMs] backoff base, default 500
 * @property {number} [maxBackoffMs] backoff cap, default 30000
 * @property {number} [wsRetryAfterMs] after falling back to SSE, skip WS this long, default 5 min
 * @property {number} [readyTimeoutMs] a connection without `ready` by then counts as failed, default 10000
 */

/**
 * Real-time client for the admin-push service (WebSocket with SSE fallback, lossless resume, one
 * connection shared by every tab of the origin).
 *
 * Events emitted to `on()` handlers:
 * - any event name, and `"*"` for every event: `(data, envelope)` where envelope is `{id, event, data}`
 * - `"ready"` `({last_event_id, transport})`, `"resync"` `({reason})`, `"reconnect"` `({after_ms})`,
 *   `"auth_expired"` `({})`: the server's control events, after the client has acted on them
 * - `"status"` `({state, transport, retryAt, error})` whenever one of them changes; `state` is
 *   "connecting" (first attempt), "open", "reconnecting" (one state for a whole outage, with the
 *   time of the next attempt in `retryAt`), "refused" (a refusal a retry cannot fix; `start()`
 *   tries again) or "closed" (stopped)
 * - `"error"` `(AdminPushError)`: every failed attempt, with the service's reason when it gave one
 */
export class AdminPush {
  #opts;
  #base;
  #transports;
  /** @type {Map<string, Set<Function>>} */
  #handlers = new Map();
  /** Event names to listen for on SSE (built-ins, the filter and every name given to `on()`). */
  #names = new Set(BUILTIN_EVENTS);
  /** @type {string|null} */
  #lastEventId = null;
  #recent = new RecentEvents();
  /** Names this client in messages between tabs. */
  #id = Math.random().toString(36).slice(2);
  /** @type {Status} */
  #status = { state: "closed", transport: null, retryAt: null, error: null };
  /** Between start() and stop(). */
  #running = false;
  /** @type {"solo"|"leader"|"follower"|null} own connection, the connection for every tab, relayed */
  #role = null;
  /** Bumped on every connect, leave and stop; async steps of an older generation give up. */
  #gen = 0;
  /** @type {Connection|null} */
  #conn = null;
  /** @type {ReturnType<typeof setTimeout>|undefined} the next attempt */
  #timer = undefined;
  #attempt = 0;
  #wsSkipUntil = 0;
  #lastAuthExpiry = 0;
  /** @type {{channel: BroadcastChannel, key: string, signal: AbortSignal, tabLock: Promise<void>, told: boolean, leave(): void}|null} cross-tab sharing while joined */
  #share = null;
  /** Set while the page sits in the back/forward cache with this client suspended. */
  #frozen = false;
  /** @type {Map<string, "viewing"|"editing">} the records this tab has open (`setPresence`) */
  #presence = new Map();
  /** @type {Map<string, Record<string, "viewing"|"editing">>} leader: the followers' records, by tab */
  #tabPresence = new Map();
  /** @type {Map<string, any>} the last `presence` message per record this tab cares about */
  #viewers = new Map();
  /** @type {Map<string, Set<Function>>} `onPresence` callbacks by record */
  #presenceHandlers = new Map();
  /** The admin this tab's connection authenticates as (`ready.actor_id`): left out of viewers. */
  #actorId = null;
  /** Leader or solo: the report last sent, its time, and the timer of the next (repeat or delayed). */
  #reported = "{}";
  #reportedAt = 0;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  #reportTimer = undefined;
  /**
   * Leader or solo: the ids of the events a receipt was sent (or a follower asked) for, oldest
   * first; as bounded as the recent events, which are the only ones a receipt can name.
   * @type {Set<string>}
   */
  #receipted = new Set();

  /** @param {AdminPushOptions} options */
  constructor(options) {
    if (typeof options?.getToken !== "function") throw new TypeError("AdminPush: getToken is required");
    const url = options.url ?? globalThis.location?.origin;
    if (!url) throw new TypeError("AdminPush: url is required outside a browser page");
    this.#opts = {
      getToken: options.getToken,
      events: options.events?.length ? [...options.events] : null,
      shared: options.shared ?? true,
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
  /** Transport of the current connection (the leader's, when shared): "ws", "sse" or null. */
  get transport() { return this.#status.transport; }
  /** "connecting", "open", "reconnecting", "refused" or "closed". */
  get state() { return this.#status.state; }
  /** The last status reported (see the class comment). */
  get status() { return { ...this.#status }; }
  /** "solo", "leader" or "follower" while started; null when stopped. */
  get role() { return this.#role; }

  // ---- presence: who else has a record open ----

  /**
   * Says that this tab has `record` (`<kind>:<id>`, e.g. `order:order_01J…`) open, only viewing
   * it or editing it, or (`null`) no longer. A tab may have several records open. The connection
   * reports what every tab of the browser has open (editing wins), repeats it while it stands,
   * and again after every reconnect; it stays set across `stop()` and `start()`.
   * @param {string} record
   * @param {"viewing"|"editing"|null} state
   */
  setPresence(record, state) {
    if (typeof record !== "string" || !PRESENCE_RECORD.test(record)) {
      throw new TypeError(`AdminPush: presence record ${JSON.stringify(record)} is not <kind>:<id>`);
    }
    if (state !== null && state !== "viewing" && state !== "editing") {
      throw new TypeError(`AdminPush: presence state must be "viewing", "editing" or null`);
    }
    if ((this.#presence.get(record) ?? null) === state) return;
    if (state === null) {
      this.#presence.delete(record);
      if (!this.#presenceHandlers.has(record)) this.#viewers.delete(record);
    } else {
      this.#presence.set(record, state);
    }
    this.#presenceChanged();
  }

  /** The records this tab has open, as given to `setPresence`. */
  get presence() { return Object.fromEntries(this.#presence); }

  /**
   * Calls `callback` with the other admins on `record` (this tab's own admin left out) whenever
   * the list changes, and at once when it is already known. The service only tells a connection
   * about records one of its tabs has open: call `setPresence(record, …)` too.
   * @param {string} record
   * @param {(viewers: {actor_id: string, name?: string, state: "viewing"|"editing"}[], info: {record: string, more: number}) => void} callback
   * @returns {() => void} unsubscribe
   */
  onPresence(record, callback) {
    let handlers = this.#presenceHandlers.get(record);
    if (!handlers) this.#presenceHandlers.set(record, (handlers = new Set()));
    handlers.add(callback);
    const known = this.#viewers.get(record);
    if (known) this.#callPresence(callback, known);
    return () => {
      const set = this.#presenceHandlers.get(record);
      set?.delete(callback);
      if (set?.size === 0) {
        this.#presenceHandlers.delete(record);
        if (!this.#presence.has(record)) this.#viewers.delete(record);
      }
    };
  }

  /**
   * Subscribe to an event name, a control event, `"status"`, `"error"` or `"*"` (all events).
   * @param {string} name
   * @param {(data: any, envelope?: {id?: string, event: string, data: any}) => void} handler
   * @returns {() => void} unsubscribe
   */
  on(name, handler) {
    let handlers = this.#handlers.get(name);
    if (!handlers) this.#handlers.set(name, (handlers = new Set()));
    handlers.add(handler);
    if (!CONTROL.has(name) && !LOCAL.has(name) && !this.#names.has(name)) this.#addNames([name]);
    return () => { this.#handlers.get(name)?.delete(handler); };
  }

  // ---- screen-refresh receipts ----

  /**
   * Tells the service that this tab's screen now shows event `eventId` (one it received): call it
   * once the refetch the event caused has completed. Only events in the service's sample (a share
   * `ready.receipt_rate` of them, drawn once per event when it arrives, the same draw for every tab
   * sharing the connection) are receipted, each at most once; a follower's goes through the
   * leader's connection. Returns whether a receipt is sent, or in a follower handed to the leader
   * (false: not in the sample, unknown or forgotten, already sent, or no connection).
   * @param {string} eventId
   * @returns {boolean}
   */
  receipt(eventId) {
    const event = typeof eventId === "string" ? this.#recent.get(eventId) : undefined;
    if (!event?.sampled || this.#receipted.has(eventId) || !this.#running) return false;
    if (this.#role === "follower") {
      const channel = this.#share?.channel;
      if (!channel) return false;
      this.#markReceipted(eventId);
      channel.postMessage({ t: "receipt", id: eventId });
      return true;
    }
    return this.#sendReceipt(eventId);
  }

  #markReceipted(id) {
    this.#receipted.add(id);
    if (this.#receipted.size > RECENT_EVENTS) this.#receipted.delete(/** @type {string} */ (this.#receipted.values().next().value));
  }

  /**
   * Leader or solo: sends the receipt for a sampled event on the open connection, once: a frame on
   * WebSocket, a POST on SSE (a refusal is only telemetry lost: never retried, but for a token
   * that expired meanwhile).
   */
  #sendReceipt(id) {
    const conn = this.#conn;
    const event = this.#recent.get(id);
    if (!conn?.ready || !event?.sampled || this.#receipted.has(id)) return false;
    if (this.#role !== "leader" && this.#role !== "solo") return false;
    this.#markReceipted(id);
    if (conn.transport === "ws") {
      try { /** @type {WebSocket} */ (conn.socket).send(JSON.stringify({ type: "receipt", id })); } catch { return false; }
      return true;
    }
    const body = JSON.stringify({ connection: conn.readyData?.connection ?? "", id });
    const post = (token) => fetch(`${this.#base}/admin-ws/receipt`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body,
      cache: "no-store",
    });
    (async () => {
      let res = await post(conn.token);
      if (res.status === 401 && conn === this.#conn) {
        conn.token = await this.#opts.getToken();
        res = await post(conn.token);
      }
    })().catch(() => { /* the network: a lost receipt is a missing sample, nothing more */ });
    return true;
  }

  /** Connect (no-op when already running); after a refusal, try again. */
  start() {
    if (this.#running && this.#status.state !== "refused") return;
    this.#attempt = 0;
    if (this.#running) {
      // A refusal stopped the connection's owner; ask it (maybe this tab) to try again.
      if (this.#role === "follower") this.#share?.channel.postMessage({ t: "retry" });
      else this.#connect();
      return;
    }
    this.#running = true;
    this.#listenToPage(true);
    this.#setStatus({ state: "connecting", transport: null, retryAt: null, error: null });
    this.#join();
  }

  /** Close everything, cancel timers; no reconnects until `start()` is called again. */
  stop() {
    if (!this.#running) return;
    this.#running = false;
    this.#frozen = false;
    this.#listenToPage(false);
    this.#leave();
    this.#setStatus({ state: "closed", transport: null, retryAt: null, error: null });
  }

  // ---- roles: one connection per origin ----

  /**
   * Elects this tab's role. With the Web Locks API and BroadcastChannel (secure contexts of every
   * current browser), every client with the same service URL, filter and transports queues for
   * one lock: its holder connects and relays to the others over a BroadcastChannel; when it goes
   * (tab closed, navigated away, stopped) the lock passes on and the next tab resumes from the
   * last id it was relayed. Without them, or with `shared: false`, each client connects alone.
   */
  #join() {
    const locks = globalThis.navigator?.locks;
    if (!this.#opts.shared || !locks || typeof BroadcastChannel !== "function") {
      this.#role = "solo";
      this.#connect();
      return;
    }
    const key = `admin-push:${this.#base}|${(this.#opts.events ?? []).join(",")}|${this.#transports.join(",")}`;
    const channel = new BroadcastChannel(key);
    const abort = new AbortController();
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    // Each tab also holds a lock of its own while it is joined: the leader queues for it to learn
    // when the tab is gone (closed, crashed, navigated away, stopped) and drops its presence then.
    /** @type {Promise<void>} */
    const tabLock = new Promise((granted) => {
      locks.request(`${key}|tab:${this.#id}`, { signal: abort.signal }, () => { granted(); return held; })
        .catch(() => { /* aborted: left before the lock was granted */ });
    });
    const share = {
      channel,
      key,
      signal: abort.signal,
      tabLock,
      /** This tab has told the leader about its records (so an empty set must be said too). */
      told: false,
      leave: () => { abort.abort(); release(); channel.close(); },
    };
    this.#share = share;
    this.#role = "follower";
    this.#tabPresence.clear();
    channel.onmessage = (e) => { if (this.#share === share) this.#onRelay(e.data); };
    this.#hello(true);
    this.#tellLeader();
    locks.request(key, { signal: abort.signal }, () => {
      if (this.#share !== share) return undefined;
      this.#role = "leader";
      this.#relay({ t: "leader" });
      // The previous leader's connection is gone; ours resumes from the last id it relayed.
      if (this.#status.state === "open") {
        this.#setStatus({ state: "reconnecting", transport: null, retryAt: Date.now(), error: null });
      }
      this.#attempt = 0;
      this.#connect();
      return held;
    }).catch(() => { /* aborted: this client left before it was elected */ });
  }

  /** Drops the connection and the leadership (if any); the role is re-elected on the next join. */
  #leave() {
    this.#gen++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#drop();
    clearTimeout(this.#reportTimer);
    this.#reportTimer = undefined;
    this.#tabPresence.clear();
    this.#share?.leave();
    this.#share = null;
    this.#role = null;
  }

  /** A message from another tab with the same key. */
  #onRelay(msg) {
    const leading = this.#role === "leader";
    switch (msg?.t) {
      case "msg": if (!leading) this.#dispatch(msg.name, msg.data, msg.id, msg.sampled); break;
      case "status": if (!leading) this.#setStatus(msg.status); break;
      case "error": if (!leading) this.#emit("error", AdminPushError.from(msg.error)); break;
      case "hello": if (leading) this.#welcome(msg); break;
      // A new leader resumes from its own last id; a follower only has to tell it its names and records.
      case "leader": if (!leading) { this.#hello(false); this.#tellLeader(true); } break;
      case "welcome": if (!leading && msg.to === this.#id) this.#welcomed(msg); break;
      case "names": if (leading) this.#addNames(msg.names); break;
      case "retry": if (leading && this.#status.state === "refused") this.start(); break;
      case "presence": if (leading) this.#tabReported(msg.from, msg.records); break;
      case "receipt": if (leading && typeof msg.id === "string") this.#sendReceipt(msg.id); break;
    }
  }

  /** A follower introduces itself to the leader: on joining (with its resume point), or to a new one. */
  #hello(joining) {
    const lastEventId = joining ? this.#lastEventId : null;
    this.#share?.channel.postMessage({ t: "hello", from: this.#id, names: [...this.#names], lastEventId });
  }

  /**
   * The leader answers a follower: its status, the `ready` of its connection (the follower's
   * connection too, now), the events the follower missed (a page back from the back/forward
   * cache, a tab that started with a `lastEventId`), or null when they are no longer held, and
   * the leader's own resume point: the last id it relayed, or its connection's `ready` point.
   */
  #welcome(msg) {
    this.#addNames(msg.names);
    const behind = msg.lastEventId && msg.lastEventId !== this.#lastEventId;
    this.#relay({
      t: "welcome",
      to: msg.from,
      status: this.#status,
      ready: this.#conn?.ready ? this.#conn.readyData : null,
      missed: behind ? this.#recent.after(msg.lastEventId) : [],
      lastEventId: this.#lastEventId,
    });
  }

  /**
   * A follower, welcomed by the leader: a gap it cannot fill is a `resync` like any other. From
   * now on it holds the leader's resume point, so if it is the next leader it resumes exactly
   * where this one stopped, even when no event was relayed in between.
   */
  #welcomed({ status, ready, missed, lastEventId }) {
    this.#setStatus(status);
    if (ready?.actor_id) this.#actorId = ready.actor_id;
    if (ready) this.#emit("ready", ready, { event: "ready", data: ready });
    for (const m of missed ?? []) this.#dispatch(m.name, m.data, m.id, m.sampled);
    if (!missed) this.#emit("resync", { reason: "gap" }, { event: "resync", data: { reason: "gap" } });
    if (lastEventId) this.#lastEventId = lastEventId;
  }

  #relay(msg) {
    if (this.#role === "leader") this.#share?.channel.postMessage(msg);
  }

  // ---- presence between tabs and to the service ----

  /** This tab's records changed: a follower tells its leader, a leader or solo client reports. */
  #presenceChanged() {
    if (this.#role === "follower") this.#tellLeader();
    else this.#scheduleReport();
  }

  /**
   * A follower sends its records to the leader, once its own tab lock is held (so the leader,
   * queueing for that lock, cannot mistake a tab that is just arriving for one that left).
   * `again`: to a new leader, which knows nothing yet.
   */
  #tellLeader(again = false) {
    const share = this.#share;
    if (!share) return;
    if (again) share.told = false;
    share.tabLock.then(() => {
      if (this.#share !== share || this.#role !== "follower") return;
      if (this.#presence.size === 0 && !share.told) return;
      share.told = true;
      share.channel.postMessage({ t: "presence", from: this.#id, records: Object.fromEntries(this.#presence) });
    });
  }

  /** Leader: a follower's records. The first time, watch for that tab to go. */
  #tabReported(from, records) {
    const share = this.#share;
    if (!share || typeof from !== "string" || typeof records !== "object" || records === null) return;
    if (!this.#tabPresence.has(from)) {
      globalThis.navigator.locks.request(`${share.key}|tab:${from}`, { signal: share.signal }, () => {
        // Granted: that tab let go of its lock, so it is gone.
        if (this.#share !== share) return;
        this.#tabPresence.delete(from);
        this.#scheduleReport();
      }).catch(() => { /* aborted: this tab stopped leading */ });
    }
    this.#tabPresence.set(from, records);
    // A record the connection already reports gets no new `presence` from the service: pass on
    // what is known about it.
    for (const record of Object.keys(records)) {
      const known = this.#viewers.get(record);
      if (known) this.#relay({ t: "msg", name: "presence", data: known });
    }
    this.#scheduleReport();
  }

  /** What the connection reports: every tab's records, editing winning. */
  #union() {
    return unionOf([this.#presence, ...this.#tabPresence.values()]);
  }

  /** Leader or solo: report soon, but never more often than PRESENCE_MIN_GAP_MS. */
  #scheduleReport() {
    if (this.#role !== "leader" && this.#role !== "solo") return;
    clearTimeout(this.#reportTimer);
    const wait = Math.max(0, this.#reportedAt + PRESENCE_MIN_GAP_MS - Date.now());
    this.#reportTimer = setTimeout(() => this.#sendPresence(), wait);
  }

  /**
   * Reports the union on the open connection (a frame on WebSocket, a POST on SSE) and plans its
   * repetition while it names anything. Without a ready connection it waits for the next `ready`.
   */
  #sendPresence() {
    clearTimeout(this.#reportTimer);
    this.#reportTimer = undefined;
    const conn = this.#conn;
    if (!conn?.ready || (this.#role !== "leader" && this.#role !== "solo")) return;
    const records = this.#union();
    const body = JSON.stringify(records);
    // Forget what was said about records nobody here has open any more.
    for (const record of this.#viewers.keys()) {
      if (!(record in records) && !this.#presenceHandlers.has(record)) this.#viewers.delete(record);
    }
    if (body === "{}" && this.#reported === "{}") return; // nothing reported, nothing to take back
    this.#reported = body;
    this.#reportedAt = Date.now();
    if (conn.transport === "ws") {
      try { /** @type {WebSocket} */ (conn.socket).send(`{"type":"presence","records":${body}}`); } catch { /* closing */ }
    } else {
      this.#postPresence(conn, body);
    }
    if (body !== "{}") this.#reportTimer = setTimeout(() => this.#sendPresence(), this.#presenceRepeatMs(conn));
  }

  /** A third of the connection's presence TTL (`ready.presence_ttl_ms`), or PRESENCE_REPEAT_MS. */
  #presenceRepeatMs(conn) {
    const ttl = Number(conn.readyData?.presence_ttl_ms);
    return Number.isFinite(ttl) && ttl > 0 ? Math.max(PRESENCE_MIN_GAP_MS, ttl / 3) : PRESENCE_REPEAT_MS;
  }

  /**
   * SSE: the report over HTTP, with the token the connection was opened with (a fresh one if that
   * expired meanwhile). One at a time per connection, so they arrive in order.
   */
  #postPresence(conn, body) {
    // Numbered, so that one forwarded through another instance cannot undo a later one.
    const seq = conn.reportSeq = (conn.reportSeq ?? 0) + 1;
    const post = (token) => fetch(`${this.#base}/admin-ws/presence`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: `{"connection":${JSON.stringify(conn.readyData?.connection ?? "")},"records":${body},"seq":${seq}}`,
      cache: "no-store",
    });
    conn.posting = (conn.posting ?? Promise.resolve()).then(async () => {
      if (conn !== this.#conn) return;
      try {
        let res = await post(conn.token);
        if (res.status === 401 && conn === this.#conn) {
          conn.token = await this.#opts.getToken();
          res = await post(conn.token);
        }
        if (res.ok || conn !== this.#conn) return;
        const err = await refusal(res, "presence report refused");
        if (res.status === 429 || res.status === 503) {
          // Said again once the service accepts reports (or reaches the instance holding the
          // stream again), unless a newer one is already planned.
          if (this.#reportTimer === undefined || this.#reported === body) {
            clearTimeout(this.#reportTimer);
            this.#reportTimer = setTimeout(() => this.#sendPresence(), Math.max(1000, err.retryAfterMs));
          }
        } else if (res.status !== 404) { // 404: the connection is gone; the next `ready` reports again
          const data = { error: err.code ?? "bad_report", message: err.message };
          this.#onMessage(conn, "presence_refused", data, undefined);
        }
      } catch { /* the network: the repetition or the next connection says it again */ }
    });
  }

  /** A `presence` message (this tab's connection's, or relayed): keep it and tell the callbacks. */
  #onViewers(data) {
    const record = data?.record;
    if (typeof record !== "string") return;
    const wanted = this.#presence.has(record) || this.#presenceHandlers.has(record) ||
      [...this.#tabPresence.values()].some((records) => record in records);
    if (!wanted) return;
    const before = this.#viewers.get(record);
    if (before && JSON.stringify(before) === JSON.stringify(data)) return; // relayed twice
    this.#viewers.set(record, data);
    for (const callback of [...(this.#presenceHandlers.get(record) ?? [])]) this.#callPresence(callback, data);
  }

  #callPresence(callback, data) {
    const viewers = (Array.isArray(data.viewers) ? data.viewers : []).filter((v) => v?.actor_id !== this.#actorId);
    try { callback(viewers, { record: data.record, more: Number(data.more) || 0 }); } catch (err) {
      console.error("admin-push: presence callback threw", err);
    }
  }

  /** New SSE event names: listened for by the open EventSource, or sent to the leader. */
  #addNames(names) {
    const fresh = names.filter((n) => !this.#names.has(n));
    if (fresh.length === 0) return;
    for (const name of fresh) {
      this.#names.add(name);
      // An already open EventSource must learn the new name too, or it drops those events.
      if (this.#conn?.transport === "sse") this.#listenSse(this.#conn, name);
    }
    if (this.#role === "follower") this.#share?.channel.postMessage({ t: "names", names: fresh });
  }

  // ---- back/forward cache and frozen pages ----

  /**
   * A page entering the back/forward cache (`pagehide`) or frozen in the background (`freeze`)
   * must hold no connection nor the leadership: it could neither read nor relay. When the page
   * is really unloading the same cleanup lets the next tab take over at once.
   */
  #suspend = () => {
    if (!this.#running || this.#frozen) return;
    this.#frozen = true;
    this.#leave();
    this.#setStatus({ state: "reconnecting", transport: null, retryAt: null, error: null });
  };

  /** Back from the cache (`pageshow` with `persisted`) or unfrozen (`resume`): rejoin and resume. */
  #resume = (e) => {
    if (e.type === "pageshow" && !e.persisted) return;
    if (!this.#frozen || !this.#running) return;
    this.#frozen = false;
    this.#attempt = 0;
    this.#join(); // resumes from the last id seen before the page was frozen
  };

  #listenToPage(on) {
    const page = globalThis.document;
    if (typeof page?.addEventListener !== "function") return; // not a page (Node, a worker)
    const method = on ? "addEventListener" : "removeEventListener";
    globalThis[method]("pagehide", this.#suspend);
    globalThis[method]("pageshow", this.#resume);
    page[method]("freeze", this.#suspend);
    page[method]("resume", this.#resume);
  }

  // ---- connection lifecycle (solo or leader) ----

  async #connect() {
    const gen = ++this.#gen;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const transport = this.#pickTransport();
    // Only the first attempt reports "connecting"; during an outage the state stays
    // "reconnecting" across attempts instead of flickering.
    if (this.#status.state === "connecting" || this.#status.state === "refused") {
      this.#setStatus({ state: "connecting", transport, retryAt: null, error: null });
    }
    let token;
    let ticket;
    try {
      // Fresh token and ticket every time: tickets are single-use and short-lived.
      token = await this.#opts.getToken();
      if (gen !== this.#gen) return;
      if (!token) throw new AdminPushError("getToken returned no token");
      ticket = await this.#fetchTicket(token);
      if (gen !== this.#gen) return;
    } catch (err) {
      if (gen !== this.#gen) return;
      this.#retryOrGiveUp(err instanceof AdminPushError ? err : new AdminPushError(err instanceof Error ? err.message : String(err)));
      return;
    }
    /** @type {Connection} */
    const conn = { transport, token, socket: null, opened: false, ready: false, readyData: null, readyTimer: undefined };
    this.#conn = conn;
    // A proxy may accept the connection and then pass nothing through; do not wait forever.
    conn.readyTimer = setTimeout(() => this.#fail(conn, "no ready event in time"), this.#opts.readyTimeoutMs);
    try {
      if (transport === "ws") this.#openWs(conn, ticket);
      else this.#openSse(conn, ticket);
    } catch (err) { // e.g. ws:// from an https page (mixed content) throws synchronously
      this.#fail(conn, err instanceof Error ? err.message : String(err));
    }
  }

  async #fetchTicket(token) {
    const res = await fetch(`${this.#base}/admin-ws/ticket`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    if (!res.ok) throw await refusal(res, "ticket request refused");
    const body = await res.json().catch(() => null);
    if (typeof body?.ticket !== "string") throw new AdminPushError("ticket request: no ticket in the answer");
    return body.ticket;
  }

  /** The events filter in the query; commas stay literal. */
  #filterQuery() {
    return this.#opts.events ? `events=${this.#opts.events.map(encodeURIComponent).join(",")}` : "";
  }

  /** Query string shared by both transports. */
  #query(ticket) {
    let q = `ticket=${encodeURIComponent(ticket)}`;
    if (this.#lastEventId) q += `&last_event_id=${encodeURIComponent(this.#lastEventId)}`;
    if (this.#opts.events) q += `&${this.#filterQuery()}`;
    return q;
  }

  #openWs(conn, ticket) {
    const ws = new WebSocket(`${this.#base.replace(/^http/i, "ws")}/admin-ws?${this.#query(ticket)}`);
    conn.socket = ws;
    ws.onopen = () => { conn.opened = true; };
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
    // A refused handshake: browsers follow with a close, some runtimes never do.
    ws.onerror = () => { if (!conn.opened) this.#fail(conn, "websocket handshake failed"); };
  }

  #openSse(conn, ticket) {
    const es = new EventSource(`${this.#base}/admin-sse?${this.#query(ticket)}`);
    conn.socket = es;
    es.onopen = () => { conn.opened = true; };
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
    if (id == null && CONTROL.has(name)) this.#onControl(conn, name, data);
    // The connection's owner draws, once per event, whether it is in the receipt sample; the
    // followers are told with the event, so every tab agrees and at most one receipt is sent.
    const sampled = id == null ? undefined : this.#inSample(conn);
    this.#dispatch(name, data, id, sampled);
    this.#relay(sampled === undefined ? { t: "msg", name, data, id } : { t: "msg", name, data, id, sampled });
  }

  /** A random draw against `ready.receipt_rate` (none when the service does not ask for receipts). */
  #inSample(conn) {
    const rate = Number(conn.readyData?.receipt_rate);
    return Number.isFinite(rate) && rate > 0 && Math.random() < rate;
  }

  #onControl(conn, name, data) {
    switch (name) {
      case "ready":
        conn.ready = true;
        conn.readyData = data;
        clearTimeout(conn.readyTimer);
        this.#attempt = 0;
        this.#setStatus({ state: "open", transport: conn.transport, retryAt: null, error: null });
        // A new connection reports nothing yet: say what every tab has open, at once.
        this.#reported = "{}";
        this.#reportedAt = 0;
        this.#sendPresence();
        break;
      case "reconnect": // the server is draining: leave now, come back after exactly after_ms
        this.#drop();
        this.#schedule(Math.max(0, Number(data.after_ms) || 0), null);
        break;
      case "auth_expired":
        this.#onAuthExpired();
        break;
      case "receipt_rate": // the sample changed with the number of open tabs: draw against the new one
        if (conn.readyData && Number.isFinite(Number(data.rate))) {
          conn.readyData = { ...conn.readyData, receipt_rate: Number(data.rate) };
        }
        break;
      // "resync" needs nothing from the client itself: the app refetches.
    }
  }

  /**
   * Delivers one message to this tab's handlers; events are deduplicated by id. `sampled`: the
   * event is in the receipt sample.
   */
  #dispatch(name, data, id, sampled = false) {
    if (id == null) {
      if (name === "ready" && data.last_event_id) this.#lastEventId = data.last_event_id;
      if (name === "ready" && typeof data.actor_id === "string") this.#actorId = data.actor_id;
      if (name === "presence") this.#onViewers(data);
      this.#emit(name, data, { event: name, data });
      return;
    }
    // Ids are opaque: equality is the only safe comparison.
    if (!this.#recent.add(sampled ? { name, data, id, sampled: true } : { name, data, id })) return;
    this.#lastEventId = id;
    const envelope = { id, event: name, data };
    this.#emit(name, data, envelope);
    this.#emit("*", data, envelope);
  }

  #onAuthExpired() {
    this.#drop();
    // Reconnect at once with a fresh token, unless getToken keeps handing out nearly expired ones.
    const now = Date.now();
    const again = now - this.#lastAuthExpiry < 10_000;
    this.#lastAuthExpiry = now;
    this.#schedule(again ? this.#backoff() : 0, null);
  }

  /** The current connection failed: find out why, then fall back, back off or give up. */
  async #fail(conn, reason, code) {
    if (conn !== this.#conn) return;
    this.#drop();
    const gen = this.#gen;
    // A browser hides why a WebSocket or EventSource handshake failed; the same request made
    // with fetch shows the service's answer (a refusal, or a healthy stream if the trouble
    // was in between, such as a proxy that drops WebSocket upgrades).
    const refused = conn.opened ? null : await this.#diagnose(conn);
    if (gen !== this.#gen) return;
    if (refused) return this.#retryOrGiveUp(refused);
    const fallback = conn.transport === "ws" && !conn.ready && code !== WS_SERVICE_RESTART &&
      this.#transports.includes("sse") && refused !== undefined;
    if (fallback) {
      this.#wsSkipUntil = Date.now() + this.#opts.wsRetryAfterMs;
      this.#report(new AdminPushError(`${reason} before ready; falling back to sse`));
      this.#schedule(0, null);
    } else {
      const err = new AdminPushError(`${conn.transport}: ${reason}`);
      if (!conn.ready) this.#report(err);
      this.#schedule(this.#backoff(), err);
    }
  }

  /**
   * Asks the SSE route, with the token in a header, what it thinks of this subscription.
   * Resolves to the refusal, to null when the service would accept it, or to undefined when
   * the service cannot be reached at all.
   */
  async #diagnose(conn) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#opts.readyTimeoutMs);
    try {
      const filter = this.#filterQuery();
      const res = await fetch(`${this.#base}/admin-sse${filter ? `?${filter}` : ""}`, {
        headers: { Authorization: `Bearer ${conn.token}`, Accept: "text/event-stream" },
        cache: "no-store",
        signal: abort.signal,
      });
      if (res.ok) return null; // would be accepted: the finally below closes the stream
      return await refusal(res, `${conn.transport} connection refused`);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  /** After a failed attempt: give up on a refusal a retry cannot fix, else retry with backoff. */
  #retryOrGiveUp(err) {
    this.#report(err);
    if (err.fatal) {
      this.#setStatus({ state: "refused", transport: null, retryAt: null, error: err.toJSON() });
    } else {
      this.#schedule(Math.max(this.#backoff(), err.retryAfterMs), err);
    }
  }

  #report(err) {
    this.#emit("error", err);
    this.#relay({ t: "error", error: err.toJSON() });
  }

  /** Close the current connection without triggering its own failure handling. */
  #drop() {
    const conn = this.#conn;
    this.#conn = null;
    if (!conn) return;
    clearTimeout(conn.readyTimer);
    const s = conn.socket;
    if (s) {
      s.onopen = s.onmessage = s.onerror = null;
      if ("onclose" in s) s.onclose = null;
      try { s.close(); } catch { /* already closed */ }
    }
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

  /**
   * Plans the next attempt. An immediate one (a fallback) keeps the current state; a delayed one
   * reports "reconnecting" with its time, unless this is still the very first connect.
   */
  #schedule(delayMs, err) {
    clearTimeout(this.#timer);
    if (!this.#running) return;
    const gen = this.#gen;
    this.#timer = setTimeout(() => { this.#timer = undefined; if (gen === this.#gen) this.#connect(); }, delayMs);
    if (delayMs > 0 || this.#status.state === "open") {
      this.#setStatus({ state: "reconnecting", transport: null, retryAt: Date.now() + delayMs, error: err?.toJSON() ?? null });
    }
  }

  #setStatus(next) {
    const now = this.#status;
    if (now.state === next.state && now.transport === next.transport && now.retryAt === next.retryAt &&
      now.error?.message === next.error?.message) return;
    this.#status = { state: next.state, transport: next.transport ?? null, retryAt: next.retryAt ?? null, error: next.error ?? null };
    this.#emit("status", { ...this.#status });
    this.#relay({ t: "status", status: this.#status });
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
