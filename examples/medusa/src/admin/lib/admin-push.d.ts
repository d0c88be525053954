/**
 * Types for the service's browser client. Copy the service's
 * `static/admin-push.js` next to this file as `admin-push.js` (see the kit's
 * README); this declares the part of its API the kit uses.
 */

export type AdminPushState = "connecting" | "open" | "closed"
export type AdminPushTransport = "ws" | "sse"

export interface AdminPushStatus {
  state: AdminPushState
  transport?: AdminPushTransport | null
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
  minBackoffMs?: number
  maxBackoffMs?: number
  wsRetryAfterMs?: number
  readyTimeoutMs?: number
}

export class AdminPush {
  constructor(options: AdminPushOptions)
  readonly lastEventId: string | null
  readonly transport: AdminPushTransport | null
  readonly state: AdminPushState
  on(event: "status", handler: (status: AdminPushStatus) => void): () => void
  on(event: "error", handler: (error: Error) => void): () => void
  on<T = any>(event: string, handler: (data: T, envelope: AdminPushEnvelope<T>) => void): () => void
  start(): void
  stop(): void
}

/** Trailing-edge debounce (unused by the kit, exported by the client). */
export function debounce<F extends (...args: any[]) => void>(fn: F, ms: number): F & { cancel(): void; flush(): void }
