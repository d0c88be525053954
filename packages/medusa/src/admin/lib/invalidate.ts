/**
 * Turns admin-push events into react-query invalidations: at once for a lone
 * event, coalesced for a burst.
 *
 * An admin who saves a product in one tab wants the other tab to show it now,
 * so the first event of a quiet period invalidates immediately (leading edge).
 * A bulk edit of 200 products must not cause 200 refetches, so events that
 * arrive while an invalidation is running, or within `windowMs` of its start,
 * are gathered and flushed together when both are over: a burst costs one
 * refetch per window, however many events it holds.
 *
 * No React and no react-query import here (only its shape), so the logic is
 * testable in plain Node. `invalidateQueries` marks matching queries stale and
 * refetches only the ones on screen, so matching broadly is cheap.
 *
 * Screen-refresh receipts: the promise `invalidateQueries` returns resolves once
 * the refetches it started have settled. The events of a flush whose rule matched
 * a query on screen (an active one, which is what gets refetched) are handed to
 * `onSettled` then: the screen now shows them.
 */

export type QueryKeyLike = readonly unknown[]
/** What an event says changed: a family event's `kind` (`region`, `user`…); none for the others. */
export type Change = { kind: string } | undefined
/** Whether a query must refetch for an event; `change` lets a family narrow it to the kind that changed. */
export type KeyMatcher = (key: QueryKeyLike, change?: Change) => boolean

/** The part of a react-query Query the predicate looks at: its key, and whether it is on screen. */
export interface QueryLike {
  queryKey: QueryKeyLike
  /** True while a mounted, enabled observer watches it: what `invalidateQueries` refetches. */
  isActive?: () => boolean
}

/** The part of @tanstack/react-query's QueryClient this module needs. */
export interface InvalidatingClient {
  invalidateQueries(filters?: { predicate?: (query: QueryLike) => boolean }): Promise<unknown> | unknown
}

/**
 * The dashboard nests keys: the order preview key is
 * `[["orders", "detail", id], "preview"]`. Flatten arrays (not objects: those
 * hold query params) so a name is found at any depth.
 */
export function flattenKey(key: QueryKeyLike): unknown[] {
  return key.flatMap((part) => (Array.isArray(part) ? flattenKey(part) : [part]))
}

/** Matches keys that mention any of `names` at any depth. */
export const mentioning =
  (...names: string[]): KeyMatcher =>
  (key) =>
    flattenKey(key).some((part) => typeof part === "string" && names.includes(part))

/** Matches keys that start with `prefix` (react-query's own notion of a key prefix). */
export const startingWith =
  (prefix: QueryKeyLike): KeyMatcher =>
  (key) =>
    prefix.every((part, i) => JSON.stringify(part) === JSON.stringify(key[i]))

/*
 * The dashboard's query keys, by the names its hooks give them
 * (@medusajs/dashboard src/hooks/api/*.tsx: `productsQueryKeys` is
 * ["products", …], `customerAddressesQueryKeys` ["customers-addresses", …]).
 * Each family matches every screen of its group broadly: only the queries on
 * screen refetch, so a name too many costs nothing, and one too few leaves a
 * screen stale.
 */

/** Products, their variants, options and inventory. */
export const isProductKey = mentioning("products", "product", "product_variants", "product_variant", "product_options", "inventory_items")
/**
 * ["orders", …], [["orders", "detail", id], "preview"], draft orders, custom
 * ["order", id] keys, and what an order page shows beside the order:
 * fulfillments, payments, returns, claims, exchanges and its reservations.
 */
export const isOrderKey = mentioning(
  "orders",
  "order",
  "draft_orders",
  "draft-orders",
  "fulfillments",
  "payment",
  "payment-collection",
  "returns",
  "claims",
  "exchanges",
  "reservation_items"
)
/** Collections, categories, tags and types, and the product lists their pages show. */
export const isCatalogKey = mentioning("collections", "categories", "tags", "product_types", "products")
/** Inventory items, their levels per location, reservations, and a variant's inventory section. */
export const isInventoryKey = mentioning("inventory_items", "inventory_item_levels", "reservation_items", "product_variant", "product_variants")
export const isCustomerKey = mentioning("customers", "customers-addresses", "customer_groups")
export const isPromotionKey = mentioning("promotions", "campaigns")
/** Whether `part` is a key's query object (`{query: {…}}`) with a `price_list_id` filter. */
const filtersByPriceList = (part: unknown) => {
  const query = (part as { query?: unknown } | null)?.query
  return typeof query === "object" && query !== null && "price_list_id" in query
}
/**
 * A product list filtered to a price list's products, ["products", "list", {query: {price_list_id}}]:
 * the price list page's products section, which changes when prices are added or removed.
 */
const isPriceListProductsKey: KeyMatcher = (key) => flattenKey(key).includes("products") && key.some(filtersByPriceList)
/** Price lists, their prices, and the products a price list page lists (those it has prices for). */
export const isPriceListKey: KeyMatcher = (key) => mentioning("price-lists", "price-list-prices")(key) || isPriceListProductsKey(key)
/** The settings screens. */
const isSettingsScreenKey = mentioning(
  "store",
  "regions",
  "tax_regions",
  "tax_rates",
  "sales-channels",
  "stock_locations",
  "fulfillment_sets",
  "shipping_options",
  "shipping_profile",
  "users",
  "invites",
  "api_keys"
)
/** The signed-in admin, ["users", "me", …]: mounted on every screen (the user menu, the bell). */
const isSignedInAdminKey = startingWith(["users", "me"])
/**
 * The settings screens. The signed-in admin's own query matches "users" too, and it is on every
 * screen: it refetches only when a user changed (or the kind is not said), not for every region,
 * sales channel or API key, where it would only compete with the screen's own refetch.
 */
export const isSettingsKey: KeyMatcher = (key, change) =>
  isSettingsScreenKey(key) && (!isSignedInAdminKey(key) || change === undefined || change.kind === "user")
/** The bell: ["notification", "list", {query}] (polled every minute otherwise). */
export const isNotificationKey = mentioning("notification")

/** Which queries each event invalidates; `resync` (events were missed) always means all of them. */
export type InvalidationRules = Readonly<Record<string, KeyMatcher>>

export const BUILTIN_RULES: InvalidationRules = {
  "product.updated": isProductKey,
  "order.updated": isOrderKey,
  // The hero-banner pages of a shop use ["hero-banners", …].
  "banner.updated": startingWith(["hero-banners"]),
  "catalog.updated": isCatalogKey,
  "inventory.updated": isInventoryKey,
  "customer.updated": isCustomerKey,
  "promotion.updated": isPromotionKey,
  "price_list.updated": isPriceListKey,
  "settings.updated": isSettingsKey,
  "notification.created": isNotificationKey,
}

/** Joins rule sets; an event named in several invalidates what any of them matches. */
export function mergeRules(...sets: InvalidationRules[]): InvalidationRules {
  const byEvent = new Map<string, KeyMatcher[]>()
  for (const set of sets) {
    for (const [event, matcher] of Object.entries(set)) byEvent.set(event, [...(byEvent.get(event) ?? []), matcher])
  }
  return Object.fromEntries(
    [...byEvent].map(([event, matchers]) => [event, (key: QueryKeyLike, change?: Change) => matchers.some((matches) => matches(key, change))])
  )
}

export interface Invalidator {
  /**
   * Records an event and its data (a family event's `kind` narrows it); returns whether any rule
   * (or resync) covers it. With its `id`, the event is handed to `onSettled` once the refetch of
   * what it changed on screen has settled.
   */
  handle(event: string, data?: unknown, id?: string): boolean
  /** Drops pending work; later events are ignored. */
  cancel(): void
}

export interface InvalidatorOptions {
  /** Minimum time between two invalidations of one burst. Default 100 ms. */
  windowMs?: number
  /** The rules in force at the time of each event (a page may add its own while mounted). */
  rules?: () => InvalidationRules
  /**
   * Called with the ids of a flush's events that matched a query on screen, once the refetches
   * the flush started have settled (not for a flush that refetched nothing of theirs).
   */
  onSettled?: (ids: string[]) => void
}

/** Events of one flush followed up to `onSettled` (a burst's first ones; the rest only refetch). */
export const MAX_SETTLED_PER_FLUSH = 16

const changeOf = (kind: string | undefined): Change => (kind === undefined ? undefined : { kind })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function createInvalidator(client: InvalidatingClient, options: InvalidatorOptions = {}): Invalidator {
  const windowMs = options.windowMs ?? 100
  const rules = options.rules ?? (() => BUILTIN_RULES)
  /** The matchers of the events not yet flushed, each with the kinds its events named (undefined: none). */
  let pending = new Map<KeyMatcher, Set<string | undefined>>()
  let everything = false
  let running = false
  let cancelled = false
  /** The events with an id not yet flushed, to be handed to `onSettled` (at most MAX_SETTLED_PER_FLUSH). */
  let followed: { id: string; matches: KeyMatcher; change: Change }[] = []

  async function run() {
    running = true
    while (!cancelled && (everything || pending.size > 0)) {
      const matchers = [...pending].map(([matches, kinds]) => [matches, [...kinds].map(changeOf)] as const)
      const all = everything
      const watched = followed.map((event) => ({ ...event, shown: false }))
      pending = new Map()
      everything = false
      followed = []
      /** Which of the followed events a query on screen (refetched now) belongs to. */
      const seen = (q: QueryLike) => {
        if (watched.length === 0 || q.isActive?.() !== true) return
        for (const event of watched) if (!event.shown && event.matches(q.queryKey, event.change)) event.shown = true
      }
      const done = Promise.resolve(
        all
          ? client.invalidateQueries(watched.length ? { predicate: (q) => (seen(q), true) } : undefined)
          : client.invalidateQueries({
              predicate: (q) => {
                const hit = matchers.some(([matches, changes]) => changes.some((change) => matches(q.queryKey, change)))
                if (hit) seen(q)
                return hit
              },
            })
      )
        .catch(() => undefined) // a failed refetch shows in the dashboard's own UI; nothing to add here
        .then(() => {
          const shown = watched.filter((event) => event.shown).map((event) => event.id)
          if (shown.length > 0 && !cancelled) options.onSettled?.(shown)
        })
      // The next flush waits for this one's refetch and for the window, whichever is later.
      await Promise.all([done, sleep(windowMs)])
    }
    running = false
  }

  return {
    handle(event, data, id) {
      if (cancelled) return false
      if (event === "resync") {
        everything = true
      } else {
        const matcher = rules()[event]
        if (!matcher) return false
        const kind = (data as { kind?: unknown } | null | undefined)?.kind
        const named = typeof kind === "string" ? kind : undefined
        // A burst of one family's events (5,000 prices) still adds one kind, or a few: bounded.
        pending.set(matcher, (pending.get(matcher) ?? new Set()).add(named))
        if (id !== undefined && options.onSettled && followed.length < MAX_SETTLED_PER_FLUSH) {
          followed.push({ id, matches: matcher, change: changeOf(named) })
        }
      }
      if (!running) void run()
      return true
    },
    cancel() {
      cancelled = true
      pending = new Map()
      everything = false
      followed = []
    },
  }
}
