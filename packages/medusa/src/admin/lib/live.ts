/**
 * The page's one live connection: owned by the page, not by a widget.
 *
 * Widgets mount and unmount on every navigation inside the admin; a connection
 * they owned would close and reopen each time (and be missing on screens
 * without a widget). So the first widget or hook that mounts starts it with
 * the dashboard's QueryClient, and it lives as long as the page. Across tabs,
 * the client (@admin-push/client) elects one tab to hold the only connection
 * and relays to the others; on `pagehide` it lets go, so a tab that navigates
 * away or sits in the back/forward cache holds nothing.
 *
 * Screen-refresh receipts: once the dashboard's refetches an event caused have
 * settled (only events that refetched a query on screen), the page tells the
 * service through the client's `receipt()`, which sends it only for the share
 * of events the service samples, once per event across the browser's tabs.
 *
 * The state is kept under a global symbol, not in module variables, because a
 * shop's own page imports the hooks through the package's `./admin/hooks`
 * entry while the plugin's widgets carry their own bundled copy: both must
 * find the same connection.
 */
import {
  AdminPush,
  type AdminPushPresenceState,
  type AdminPushRecord,
  type AdminPushStatus,
  type AdminPushViewer,
} from "@admin-push/client"
import {
  BUILTIN_RULES,
  createInvalidator,
  mergeRules,
  type InvalidatingClient,
  type InvalidationRules,
  type Invalidator,
} from "./invalidate"

/** What `GET /admin/push-token` answers. */
interface Grant {
  token: string
  expires_in: number
  url: string
  /** The plugin's `transports` option (absent from an older server: the client's default). */
  transports?: ("ws" | "sse")[]
}

export interface Live {
  /** Starts the connection (once per page) and invalidates `client`'s queries on events. */
  attach(client: InvalidatingClient): void
  /** Adds invalidation rules while a page is mounted; returns their removal. */
  addRules(rules: InvalidationRules): () => void
  /** Runs `handler` for `event` on the page's connection; returns the unsubscribe. */
  on<T>(event: string, handler: (data: T) => void): () => void
  status(): AdminPushStatus
  subscribe(listener: () => void): () => void
  /** This tab has `record` open (`null`: no longer); kept until the connection exists. */
  setPresence(record: AdminPushRecord, state: AdminPushPresenceState | null): void
  /** The other admins on `record`, whenever the list changes; returns the unsubscribe. */
  onPresence(record: AdminPushRecord, callback: (viewers: AdminPushViewer[]) => void): () => void
}

interface PresenceWatch {
  record: AdminPushRecord
  callback: (viewers: AdminPushViewer[]) => void
  off?: () => void
}

interface Handler {
  event: string
  handler: (data: never) => void
  off?: () => void
}

const KEY = Symbol.for("@admin-push/medusa/live")
/** Every built-in event refetches something, and `resync` everything. */
const EVENTS = [...Object.keys(BUILTIN_RULES), "resync"]
/**
 * Receipts a tab sends at most per second: below the service's default limit per connection
 * (`receipts.max_per_sec`, 10), so a bulk change's receipts are not refused; the rest are dropped.
 */
const RECEIPTS_PER_SEC = 5
/** Until the first status arrives: the badge says "connecting", never a false "offline". */
const STARTING: AdminPushStatus = { state: "connecting", transport: null, retryAt: null, error: null }

/** The page's connection (created on first use). */
export function live(): Live {
  const holder = globalThis as { [KEY]?: Live }
  holder[KEY] ??= createLive()
  return holder[KEY]
}

/**
 * The token route is same-origin with the admin (Medusa serves both). The
 * session cookie authenticates it; an admin built with `authType: "jwt"`
 * keeps its token in localStorage instead, so send that when present.
 */
async function fetchGrant(): Promise<Grant> {
  const jwt = globalThis.localStorage?.getItem("medusa_auth_token")
  const res = await fetch("/admin/push-token", {
    credentials: "include",
    headers: jwt ? { Authorization: `Bearer ${jwt}` } : {},
  })
  if (!res.ok) throw new Error(`GET /admin/push-token: HTTP ${res.status}`)
  return (await res.json()) as Grant
}

function createLive(): Live {
  let status = STARTING
  const listeners = new Set<() => void>()
  const invalidators = new Map<InvalidatingClient, Invalidator>()
  const extraRules = new Set<InvalidationRules>()
  /** Handlers registered before the connection exists are attached when it does. */
  const handlers = new Set<Handler>()
  /** Presence said or asked for before the connection exists is handed to it when it does. */
  const presence = new Map<AdminPushRecord, AdminPushPresenceState>()
  const watches = new Set<PresenceWatch>()
  let push: AdminPush | null = null
  let started = false

  const setStatus = (next: AdminPushStatus) => {
    status = next
    listeners.forEach((notify) => notify())
  }
  /** The built-in rules joined with the mounted pages' (computed once per change, not per event). */
  let merged: InvalidationRules = BUILTIN_RULES
  const remerge = () => {
    merged = mergeRules(BUILTIN_RULES, ...extraRules)
  }
  const rules = () => merged
  const dispatch = (event: string, data?: unknown, id?: string) =>
    invalidators.forEach((invalidator) => invalidator.handle(event, data, id))
  /** This second's receipts so far. */
  let receiptsSecond = 0
  let receiptsSent = 0
  /** The screen shows these events now: receipts for those in the service's sample. */
  const settled = (ids: string[]) => {
    for (const id of ids) {
      const now = Date.now()
      if (now - receiptsSecond >= 1000) {
        receiptsSecond = now
        receiptsSent = 0
      }
      if (receiptsSent >= RECEIPTS_PER_SEC) return
      if (push?.receipt(id)) receiptsSent++
    }
  }

  async function start(attempt = 0): Promise<void> {
    let first: Grant
    try {
      first = await fetchGrant()
    } catch (err) {
      // Medusa restarting, or the session not there yet: try again, a little later each time.
      const delay = Math.min(30_000, 1000 * 2 ** attempt)
      const problem = { message: String((err as Error).message ?? err), status: null, code: null, fatal: false }
      setStatus({ state: "reconnecting", transport: null, retryAt: Date.now() + delay, error: problem })
      setTimeout(() => void start(attempt + 1), delay)
      return
    }
    // The grant fetched for the URL is also the first connect's token, while it is fresh: a tab
    // that only takes over the shared connection an hour later needs a new one.
    let spare: { grant: Grant; freshUntil: number } | null = { grant: first, freshUntil: Date.now() + first.expires_in * 500 }
    const client = new AdminPush({
      url: first.url,
      transports: first.transports,
      getToken: async () => {
        const grant = spare && Date.now() < spare.freshUntil ? spare.grant : await fetchGrant()
        spare = null
        return grant.token
      },
    })
    client.on("status", setStatus)
    for (const event of EVENTS) client.on(event, (data: unknown, envelope) => dispatch(event, data, envelope?.id))
    push = client
    for (const entry of handlers) entry.off = client.on(entry.event, entry.handler)
    for (const [record, state] of presence) client.setPresence(record, state)
    for (const watch of watches) watch.off = client.onPresence(watch.record, watch.callback)
    client.start()
  }

  function on<T>(event: string, handler: (data: T) => void): () => void {
    return onEnvelope(event, (data: T) => handler(data))
  }

  /** Like `on`, with the event's id (absent on control events). */
  function onEnvelope<T>(event: string, handler: (data: T, id?: string) => void): () => void {
    const entry: Handler = { event, handler: ((data: T, envelope?: { id?: string }) => handler(data, envelope?.id)) as (data: never) => void }
    handlers.add(entry)
    if (push) entry.off = push.on(event, entry.handler)
    return () => {
      handlers.delete(entry)
      entry.off?.()
    }
  }

  return {
    attach(client) {
      if (!invalidators.has(client)) invalidators.set(client, createInvalidator(client, { rules, onSettled: settled }))
      if (started) return
      started = true
      void start()
    },
    addRules(added) {
      extraRules.add(added)
      remerge()
      // Names the client does not know yet must be listened for (SSE filters by name).
      const offs = Object.keys(added)
        .filter((event) => !EVENTS.includes(event))
        .map((event) => onEnvelope(event, (data: unknown, id?: string) => dispatch(event, data, id)))
      return () => {
        extraRules.delete(added)
        remerge()
        offs.forEach((off) => off())
      }
    },
    on,
    setPresence(record, state) {
      if (state === null) presence.delete(record)
      else presence.set(record, state)
      push?.setPresence(record, state)
    },
    onPresence(record, callback) {
      const watch: PresenceWatch = { record, callback }
      watches.add(watch)
      if (push) watch.off = push.onPresence(record, callback)
      return () => {
        watches.delete(watch)
        watch.off?.()
      }
    },
    status: () => status,
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}
