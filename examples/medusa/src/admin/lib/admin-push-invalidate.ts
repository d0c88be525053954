/**
 * Turn admin-push events into react-query invalidations, batched per burst.
 *
 * No React and no react-query import here (only its shape), so the logic is
 * testable in plain Node. `invalidateQueries` marks matching queries stale and
 * refetches only the ones on screen, so matching broadly is cheap.
 */

export type QueryKeyLike = readonly unknown[]

/** The part of @tanstack/react-query's QueryClient this module needs. */
export interface InvalidatingClient {
  invalidateQueries(filters?: {
    queryKey?: QueryKeyLike
    predicate?: (query: { queryKey: QueryKeyLike }) => boolean
  }): Promise<unknown> | unknown
}

/**
 * The dashboard nests keys: the order preview key is
 * `[["orders", "detail", id], "preview"]`. Flatten arrays (not objects: those
 * hold query params) so a name is found at any depth.
 */
export function flattenKey(key: QueryKeyLike): unknown[] {
  return key.flatMap((part) => (Array.isArray(part) ? flattenKey(part) : [part]))
}

const mentions = (names: readonly string[]) => (key: QueryKeyLike) =>
  flattenKey(key).some((part) => typeof part === "string" && names.includes(part))

/** Medusa dashboard keys: ["products", "list"|"detail", …], plus variants/options of a product. */
export const isProductKey = mentions(["products", "product", "product_variants", "product_options"])
/** ["orders", …], [["orders", "detail", id], "preview"], and custom ["order", id] keys. */
export const isOrderKey = mentions(["orders", "order"])
/** The shop's hero-banner admin pages use ["hero-banners", …]. */
export const HERO_BANNERS_KEY = ["hero-banners"] as const

type Target = "products" | "orders" | "banners" | "all"

const TARGET_OF_EVENT: Record<string, Target> = {
  "product.updated": "products",
  "order.updated": "orders",
  "banner.updated": "banners",
  resync: "all", // the client missed events it cannot get back: refetch everything
}

export interface Invalidator {
  /** Record an event; returns whether it is one that invalidates anything. */
  handle(event: string): boolean
  /** Run pending invalidations now. */
  flush(): void
  /** Drop pending work and timers. */
  cancel(): void
}

/**
 * Trailing debounce (`waitMs` after the last event) with a `maxWaitMs` cap so
 * a steady stream of events still refreshes the screen now and then.
 */
export function createInvalidator(
  client: InvalidatingClient,
  { waitMs = 250, maxWaitMs = 2000 }: { waitMs?: number; maxWaitMs?: number } = {}
): Invalidator {
  const pending = new Set<Target>()
  let timer: ReturnType<typeof setTimeout> | undefined
  let firstAt = 0

  function flush() {
    if (timer) clearTimeout(timer)
    timer = undefined
    const targets = new Set(pending)
    pending.clear()
    if (targets.size === 0) return
    if (targets.has("all")) {
      void client.invalidateQueries()
      return
    }
    if (targets.has("products")) void client.invalidateQueries({ predicate: (q) => isProductKey(q.queryKey) })
    if (targets.has("orders")) void client.invalidateQueries({ predicate: (q) => isOrderKey(q.queryKey) })
    if (targets.has("banners")) void client.invalidateQueries({ queryKey: HERO_BANNERS_KEY })
  }

  return {
    handle(event) {
      const target = TARGET_OF_EVENT[event]
      if (!target) return false
      const now = Date.now()
      if (pending.size === 0) firstAt = now
      pending.add(target)
      if (timer) clearTimeout(timer)
      const wait = Math.max(0, Math.min(waitMs, firstAt + maxWaitMs - now))
      timer = setTimeout(flush, wait)
      return true
    },
    flush,
    cancel() {
      if (timer) clearTimeout(timer)
      timer = undefined
      pending.clear()
    },
  }
}
