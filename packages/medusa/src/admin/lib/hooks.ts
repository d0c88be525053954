/**
 * The hooks a screen calls to be live: `useAdminPush()` (the one call a shop's
 * own admin page needs) and `useAdminPushEvent()` for more than a refetch.
 *
 * They join the page's connection (see ./live) with the dashboard's own
 * QueryClient, taken from React context: a QueryClient of our own would
 * refetch nothing the dashboard shows. Unmounting never closes the
 * connection; it belongs to the page.
 */
import type { AdminPushStatus } from "@admin-push/client"
import { useQueryClient } from "@tanstack/react-query"
import { useEffect, useRef, useSyncExternalStore } from "react"
import { startingWith, type InvalidationRules, type QueryKeyLike } from "./invalidate"
import { live } from "./live"

export type { AdminPushStatus }

export interface UseAdminPushOptions {
  /**
   * Extra invalidations while this screen is mounted: event name → query key
   * prefixes, e.g. `{ "banner.updated": [["hero-banners"]] }`. Every built-in
   * event already refetches the dashboard's own screens.
   */
  invalidate?: Readonly<Record<string, readonly QueryKeyLike[]>>
}

const subscribe = (listener: () => void) => live().subscribe(listener)
const getStatus = () => live().status()

/** Keeps the screen live; returns the connection's status (for a badge of your own). */
export function useAdminPush(options: UseAdminPushOptions = {}): AdminPushStatus {
  const queryClient = useQueryClient()
  useEffect(() => live().attach(queryClient), [queryClient])

  // Rules are compared by content, so an inline object literal does not re-register every render.
  const signature = JSON.stringify(options.invalidate ?? {})
  useEffect(() => {
    const invalidate = JSON.parse(signature) as Record<string, QueryKeyLike[]>
    const rules: InvalidationRules = Object.fromEntries(
      Object.entries(invalidate).map(([event, prefixes]) => {
        const matchers = prefixes.map(startingWith)
        return [event, (key: QueryKeyLike) => matchers.some((matches) => matches(key))]
      })
    )
    return live().addRules(rules)
  }, [signature])

  return useSyncExternalStore(subscribe, getStatus, getStatus)
}

/** Also runs `handler` for every `event` (a toast, a counter…) while mounted. */
export function useAdminPushEvent<T = unknown>(event: string, handler: (data: T) => void): AdminPushStatus {
  const latest = useRef(handler)
  useEffect(() => {
    latest.current = handler
  })
  useEffect(() => live().on<T>(event, (data) => latest.current(data)), [event])
  return useAdminPush()
}
