/**
 * Types for @admin-push/client (admin-push.js). The wire protocol is described in the
 * repository's docs/protocol.md.
 */

/**
 * - `connecting`: the first attempt since `start()`
 * - `open`: connected (here, or in the leader tab when shared)
 * - `reconnecting`: an outage; one state however many attempts it takes (`retryAt`: the next)
 * - `refused`: the service refused in a way a retry cannot fix (`error` says why); `start()` retries
 * - `closed`: stopped
 */
export type AdminPushState = "connecting" | "open" | "reconnecting" | "refused" | "closed"
export type AdminPushTransport = "ws" | "sse"
/** `solo`: own connection; `leader`: the connection for every tab; `follower`: relayed by the leader. */
export type AdminPushRole = "solo" | "leader" | "follower"

/** Why an attempt failed, as carried in a status (plain data, also across tabs). */
export interface AdminPushProblem {
  message: string
  /** HTTP status of the service's refusal, null when there was no answer (network, timeout). */
  status: number | null
  /** The `error` code of the service's JSON answer (`unauthorized`, `bad_request`, …). */
  code: string | null
  /** True when a retry cannot fix it: the client stops until `start()` is called again. */
  fatal: boolean
}

export interface AdminPushStatus {
  state: AdminPushState
  transport: AdminPushTransport | null
  /** While reconnecting: when the next attempt starts (epoch ms), or null if not yet planned. */
  retryAt: number | null
  /** While reconnecting or refused: why the last attempt failed, when known. */
  error: AdminPushProblem | null
}

export interface AdminPushEnvelope<T = unknown> {
  /** Absent on control events (ready, resync, reconnect, auth_expired). */
  id?: string
  event: string
  data: T
}

export interface AdminPushOptions {
  /** The service's origin (may include a path prefix); default `location.origin`. */
  url?: string
  /** Called before every (re)connect; resolves to an admin JWT. */
  getToken: () => string | Promise<string>
  /** Only receive these event names (control events always pass). */
  events?: string[]
  /** Order of preference; default ["ws", "sse"]. */
  transports?: AdminPushTransport[]
  /** Resume point to start from. */
  lastEventId?: string
  /** One connection for every tab of this origin with the same url, events and transports; default true. */
  shared?: boolean
  /** Backoff base in ms; default 500. */
  minBackoffMs?: number
  /** Backoff cap in ms; default 30000. */
  maxBackoffMs?: number
  /** After falling back to SSE, skip WebSocket this long (ms); default 5 minutes. */
  wsRetryAfterMs?: number
  /** A connection without `ready` by then counts as failed (ms); default 10000. */
  readyTimeoutMs?: number
}

/** A failed attempt; `status`, `code` and `message` are the service's when it refused. */
export class AdminPushError extends Error {
  constructor(message: string, details?: { status?: number | null; code?: string | null; fatal?: boolean; retryAfterMs?: number })
  readonly status: number | null
  readonly code: string | null
  readonly fatal: boolean
  /** The service's Retry-After, in ms (0 when absent). */
  readonly retryAfterMs: number
  toJSON(): AdminPushProblem
  static from(problem: AdminPushProblem): AdminPushError
}

export interface AdminPushControlEvents {
  ready: {
    last_event_id: string
    transport: AdminPushTransport
    /** Names the connection in presence reports over HTTP (16 hex digits). */
    connection: string
    /** The admin the token names: left out of `onPresence`'s viewers. */
    actor_id: string
    /** The share (0..1) of events this connection sends screen-refresh receipts for (`receipt()`). */
    receipt_rate?: number
    /** How long a presence report stands unless repeated; the client repeats it every third of this. */
    presence_ttl_ms?: number
  }
  resync: { reason: "gap" | "lagged" | "restart" }
  reconnect: { after_ms: number }
  auth_expired: Record<string, never>
  /** Who has a record open, this tab's own admin included (`onPresence` leaves it out). */
  presence: AdminPushPresenceMessage
  /** A presence report was refused whole; the previous one stands. */
  presence_refused: { error: "too_many_records" | "too_many_reports" | "bad_report" | (string & {}); message: string }
  /** The share (0..1) of events to send receipts for from now on, replacing `ready.receipt_rate`. */
  receipt_rate: { rate: number }
}

/** What an admin is doing on a record they have open. */
export type AdminPushPresenceState = "viewing" | "editing"

/** A record others may have open: `<kind>:<id>`, as `order:order_01J9…` or `product:prod_01J9…`. */
export type AdminPushRecord = `${string}:${string}`

/** One admin on a record: their id, the name their token carries (if any), viewing or editing. */
export interface AdminPushViewer {
  actor_id: string
  name?: string
  state: AdminPushPresenceState
}

/** The service's `presence` message: every admin on `record`; `more` counts those not listed. */
export interface AdminPushPresenceMessage {
  record: string
  viewers: AdminPushViewer[]
  more: number
}

/** What happened to the records a family event names. */
export type AdminPushChangeAction = "created" | "updated" | "deleted"

/**
 * A change in one family of admin screens: the kind of record, what happened, and the record
 * (`id`), the records (`ids`), or neither for a bulk change too large to list.
 */
export interface AdminPushChange<K extends string> {
  kind: K
  action: AdminPushChangeAction
  id?: string
  ids?: string[]
}

/** The service's built-in events and what each one's `data` holds (docs/protocol.md). */
export interface AdminPushBuiltinEvents {
  "banner.updated": { action: AdminPushChangeAction | "reordered"; id?: string; ids?: string[] }
  "product.updated": { id: string }
  "order.updated": { id: string; status?: string }
  "catalog.updated": AdminPushChange<"collection" | "category" | "tag" | "type">
  "inventory.updated": AdminPushChange<"inventory_item" | "inventory_level" | "reservation">
  "customer.updated": AdminPushChange<"customer" | "customer_group">
  "promotion.updated": AdminPushChange<"promotion" | "campaign">
  "price_list.updated": AdminPushChange<"price_list">
  "settings.updated": AdminPushChange<
    | "store"
    | "region"
    | "tax_region"
    | "sales_channel"
    | "stock_location"
    | "shipping_option"
    | "shipping_profile"
    | "user"
    | "invite"
    | "api_key"
  >
  "notification.created": { id: string }
}

export class AdminPush {
  constructor(options: AdminPushOptions)
  /** Last event id seen (the resume point), or null before the first `ready`. */
  readonly lastEventId: string | null
  readonly transport: AdminPushTransport | null
  readonly state: AdminPushState
  readonly status: AdminPushStatus
  /** Null while stopped. */
  readonly role: AdminPushRole | null
  on(event: "status", handler: (status: AdminPushStatus) => void): () => void
  on(event: "error", handler: (error: AdminPushError) => void): () => void
  on<K extends keyof AdminPushControlEvents>(
    event: K,
    handler: (data: AdminPushControlEvents[K], envelope: AdminPushEnvelope<AdminPushControlEvents[K]>) => void,
  ): () => void
  on<K extends keyof AdminPushBuiltinEvents>(
    event: K,
    handler: (data: AdminPushBuiltinEvents[K], envelope: AdminPushEnvelope<AdminPushBuiltinEvents[K]>) => void,
  ): () => void
  on<T = any>(event: string, handler: (data: T, envelope: AdminPushEnvelope<T>) => void): () => void
  /**
   * This tab has `record` open (`"viewing"` or `"editing"`), or no longer (`null`). The shared
   * connection reports every tab's records (editing wins), repeats them every third of the
   * service's presence TTL (`ready.presence_ttl_ms`; 10 s when not said) and after every reconnect. Throws a TypeError for a record not shaped `<kind>:<id>`.
   */
  setPresence(record: AdminPushRecord, state: AdminPushPresenceState | null): void
  /** The records this tab has open. */
  readonly presence: Record<string, AdminPushPresenceState>
  /**
   * The other admins on `record` (this tab's admin left out), at once when known and whenever
   * the list changes. Only records some tab has open (`setPresence`) are reported on.
   */
  onPresence(
    record: AdminPushRecord,
    callback: (viewers: AdminPushViewer[], info: { record: string; more: number }) => void,
  ): () => void
  /**
   * A screen-refresh receipt: this tab's screen now shows event `eventId` (an `envelope.id` this
   * tab received), to be called once the refetch the event caused has completed. Sent only for
   * events in the service's sample (`ready.receipt_rate`, drawn once per event for every tab of
   * the shared connection), at most once per event, through the leader when this tab follows.
   * Returns whether a receipt is sent (in a follower: handed to the leader, which sends it on its
   * open connection); false (and nothing sent) for an event outside the sample,
   * unknown or long gone, already receipted, or while there is no connection.
   */
  receipt(eventId: string): boolean
  /** Connect (no-op while running); after a refusal, try again. */
  start(): void
  /** Close, cancel timers, leave the shared connection; `start()` again to resume. */
  stop(): void
}

/** Trailing-edge debounce: a burst of calls results in one call `ms` after the last one. */
export function debounce<F extends (...args: any[]) => void>(fn: F, ms: number): F & { cancel(): void; flush(): void }
