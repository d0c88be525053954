/**
 * React hooks for Medusa admin extensions: live dashboard updates from the
 * admin-push service.
 *
 * Every widget that calls `useAdminPush()` shares ONE connection per browser
 * tab (a module-level singleton with a reference count), and every event
 * invalidates the dashboard's react-query caches once per burst, however many
 * widgets are mounted.
 */
import { useQueryClient } from "@tanstack/react-query"
import { useEffect, useRef, useSyncExternalStore } from "react"
// Copied from the service's static/admin-push.js (a bundled admin cannot
// import from the service's URL at runtime); types in ./admin-push.d.ts.
import { AdminPush, type AdminPushStatus } from "./admin-push.js"
import { createInvalidator, type InvalidatingClient, type Invalidator } from "./admin-push-invalidate"

export interface AdminPushConfig {
  /** Service origin. Default: VITE_ADMIN_PUSH_URL, else http://localhost:8080. */
  url: string
  /** Default: GET {VITE_BACKEND_URL}/admin/push-token with the admin's session cookie. */
  getToken: () => Promise<string>
}

// Written out in full: Vite replaces `import.meta.env.VITE_*` textually at build time.
let config: AdminPushConfig = {
  url: import.meta.env.VITE_ADMIN_PUSH_URL || "http://localhost:8080",
  getToken: async () => {
    const base = (import.meta.env.VITE_BACKEND_URL || "").replace(/\/+$/, "")
    const res = await fetch(`${base}/admin/push-token`, { credentials: "include" })
    if (!res.ok) throw new Error(`GET /admin/push-token: HTTP ${res.status}`)
    const body = (await res.json()) as { token: string }
    return body.token
  },
}

/** Override the defaults; call once before the first widget mounts (e.g. at module top level). */
export function configureAdminPush(overrides: Partial<AdminPushConfig>): void {
  config = { ...config, ...overrides }
}

interface Shared {
  push: AdminPush
  refs: number
  status: AdminPushStatus
  listeners: Set<() => void>
  /** One invalidator per QueryClient (normally exactly one: the dashboard's). */
  clients: Map<InvalidatingClient, { refs: number; invalidator: Invalidator }>
  stopTimer?: ReturnType<typeof setTimeout>
}

const CLOSED: AdminPushStatus = { state: "closed" }
let shared: Shared | null = null

function acquire(client: InvalidatingClient): Shared {
  if (!shared) {
    const push = new AdminPush({ url: config.url, getToken: config.getToken })
    const s: Shared = { push, refs: 0, status: { state: "connecting" }, listeners: new Set(), clients: new Map() }
    push.on("status", (status) => {
      s.status = status
      s.listeners.forEach((notify) => notify())
    })
    for (const event of ["product.updated", "order.updated", "banner.updated", "resync"]) {
      push.on(event, () => s.clients.forEach(({ invalidator }) => invalidator.handle(event)))
    }
    push.start()
    shared = s
  }
  // A release followed at once by an acquire (React StrictMode, route change
  // between two pages with widgets) keeps the connection instead of reconnecting.
  clearTimeout(shared.stopTimer)
  shared.refs++
  const entry = shared.clients.get(client)
  if (entry) entry.refs++
  else shared.clients.set(client, { refs: 1, invalidator: createInvalidator(client) })
  return shared
}

function release(s: Shared, client: InvalidatingClient): void {
  const entry = s.clients.get(client)
  if (entry && --entry.refs === 0) {
    entry.invalidator.cancel()
    s.clients.delete(client)
  }
  if (--s.refs > 0) return
  s.stopTimer = setTimeout(() => {
    if (s.refs > 0) return
    s.push.stop()
    if (shared === s) shared = null
  }, 1000)
}

function subscribe(notify: () => void): () => void {
  const s = shared
  if (!s) return () => {}
  s.listeners.add(notify)
  return () => s.listeners.delete(notify)
}

const getStatus = () => shared?.status ?? CLOSED
const getServerStatus = () => CLOSED

/**
 * Keep this widget's dashboard live. Returns the connection status, e.g. for a
 * "Live" badge: state "connecting" | "open" | "closed", transport "ws" | "sse".
 */
export function useAdminPush(): AdminPushStatus {
  const queryClient = useQueryClient()
  useEffect(() => {
    const s = acquire(queryClient)
    return () => release(s, queryClient)
  }, [queryClient])
  return useSyncExternalStore(subscribe, getStatus, getServerStatus)
}

/**
 * Also run `handler` for one event name on the shared connection, for widgets
 * that need more than cache invalidation (a toast, a counter…).
 */
export function useAdminPushEvent<T = unknown>(event: string, handler: (data: T) => void): AdminPushStatus {
  const queryClient = useQueryClient()
  const latest = useRef(handler)
  useEffect(() => {
    latest.current = handler
  })
  useEffect(() => {
    const s = acquire(queryClient)
    const off = s.push.on<T>(event, (data) => latest.current(data))
    return () => {
      off()
      release(s, queryClient)
    }
  }, [queryClient, event])
  return useSyncExternalStore(subscribe, getStatus, getServerStatus)
}
