import assert from "node:assert/strict"
import { describe, it } from "node:test"
import {
  BUILTIN_RULES,
  createInvalidator,
  flattenKey,
  isOrderKey,
  isProductKey,
  mergeRules,
  startingWith,
  type InvalidatingClient,
} from "../src/admin/lib/invalidate"
import { PUSH_EVENTS } from "../src/lib/events"

type Filters = Parameters<InvalidatingClient["invalidateQueries"]>[0]

/** Records invalidations; each one "refetches" until the test settles it. */
function recordingClient() {
  const calls: Filters[] = []
  const settle: Array<() => void> = []
  return {
    calls,
    settleAll: () => settle.splice(0).forEach((done) => done()),
    invalidateQueries(filters?: Filters) {
      calls.push(filters)
      return new Promise<void>((resolve) => settle.push(resolve))
    },
  }
}

/** Waits until `check` holds, yielding to timers in between (no fixed sleeps). */
async function until(check: () => boolean) {
  while (!check()) await new Promise((resolve) => setImmediate(resolve))
}

const matches = (filters: Filters, key: unknown[]) => filters?.predicate?.({ queryKey: key }) ?? true

describe("query key matching", () => {
  it("flattens nested keys but not objects", () => {
    assert.deepEqual(flattenKey([["orders", "detail", "order_1"], "preview"]), ["orders", "detail", "order_1", "preview"])
    assert.deepEqual(flattenKey(["products", "list", { query: { q: "orders" } }]), ["products", "list", { query: { q: "orders" } }])
  })

  it("finds order keys at any depth, draft orders included", () => {
    assert.ok(isOrderKey(["orders", "list", { query: {} }]))
    assert.ok(isOrderKey(["orders", "detail", "order_1", { query: {} }]))
    assert.ok(isOrderKey([["orders", "detail", "order_1"], "preview"]))
    assert.ok(isOrderKey(["draft-orders", "list"]))
    assert.ok(!isOrderKey(["products", "list", { query: { order: "created_at" } }]))
  })

  it("finds the dashboard's product keys, variants included", () => {
    assert.ok(isProductKey(["products", "list", { query: {} }]))
    assert.ok(isProductKey(["products", "detail", "prod_1"]))
    assert.ok(isProductKey(["product_variants", "list"]))
    assert.ok(isProductKey(["product_variant", "detail", "variant_1"]))
    assert.ok(!isProductKey(["orders", "list"]))
  })

  it("matches a key prefix element by element", () => {
    assert.ok(startingWith(["hero-banners"])(["hero-banners", "list", { q: 1 }]))
    assert.ok(!startingWith(["hero-banners", "detail"])(["hero-banners", "list"]))
  })
})

describe("the built-in rules", () => {
  it("cover every built-in event", () => {
    assert.deepEqual(Object.keys(BUILTIN_RULES).sort(), [...PUSH_EVENTS].sort())
  })

  /** For each event: keys of the screens it must refetch (from the dashboard's hooks), and one it must leave alone. */
  const SCREENS: Record<string, { refetches: unknown[][]; leaves: unknown[] }> = {
    "order.updated": {
      refetches: [["fulfillments", "detail", "ful_1"], ["returns", "list", { query: { order_id: "o" } }], ["claims", "list"], ["exchanges", "list"], ["reservation_items", "list"], ["payment", "detail", "pay_1"]],
      leaves: ["customers", "list"],
    },
    "catalog.updated": {
      refetches: [["collections", "detail", "pcol_1"], ["categories", "list"], ["tags", "list"], ["product_types", "detail", "ptyp_1"], ["products", "list", { query: { collection_id: ["pcol_1"] } }]],
      leaves: ["orders", "list"],
    },
    "inventory.updated": {
      refetches: [["inventory_items", "list"], ["inventory_item_levels", "detail", "iitem_1"], ["reservation_items", "list"], ["product_variant", "detail", "variant_1"]],
      leaves: ["customers", "list"],
    },
    "customer.updated": {
      refetches: [["customers", "detail", "cus_1"], ["customers-addresses", "list", "cus_1"], ["customer_groups", "list", { query: { customers: "cus_1" } }]],
      leaves: ["products", "list"],
    },
    "promotion.updated": { refetches: [["promotions", "list"], ["campaigns", "detail", "camp_1"]], leaves: ["price-lists", "list"] },
    "price_list.updated": {
      refetches: [["price-lists", "list"], ["price-list-prices", "detail", "plist_1"], ["products", "list", { query: { price_list_id: ["plist_1"] } }]],
      leaves: ["products", "list", { query: { limit: 20 } }],
    },
    "settings.updated": {
      refetches: [["store", "detail"], ["regions", "list"], ["tax_regions", "list"], ["sales-channels", "list"], ["stock_locations", "detail", "sloc_1"], ["shipping_options", "list"], ["users", "list"], ["invites", "list"], ["api_keys", "list"]],
      leaves: ["orders", "list"],
    },
    "notification.created": { refetches: [["notification", "list", { query: { limit: 1 } }]], leaves: ["orders", "list"] },
  }

  for (const [event, { refetches, leaves }] of Object.entries(SCREENS)) {
    it(`${event} refetches its screens and leaves others alone`, () => {
      const matches = BUILTIN_RULES[event]!
      for (const key of refetches) assert.ok(matches(key), JSON.stringify(key))
      assert.ok(!matches(leaves), JSON.stringify(leaves))
    })
  }
})

describe("the signed-in admin's own query (on every screen)", () => {
  const me = ["users", "me", { query: { fields: "id" } }]

  it("refetches when a user changed, or when the kind is not said", () => {
    assert.ok(BUILTIN_RULES["settings.updated"]!(me, { kind: "user" }))
    assert.ok(BUILTIN_RULES["settings.updated"]!(me))
  })

  it("stays put for a region, a sales channel or an API key, whose screens still refetch", () => {
    for (const [kind, screen] of [["region", "regions"], ["sales_channel", "sales-channels"], ["api_key", "api_keys"]] as const) {
      assert.ok(!BUILTIN_RULES["settings.updated"]!(me, { kind }), kind)
      assert.ok(BUILTIN_RULES["settings.updated"]!([screen, "list"], { kind }), screen)
    }
    assert.ok(BUILTIN_RULES["settings.updated"]!(["users", "list"], { kind: "region" }), "the user list matches as before")
  })

  it("a burst of several kinds refetches it once one of them is a user", async () => {
    const client = recordingClient()
    const inv = createInvalidator(client, { windowMs: 1 })
    inv.handle("settings.updated", { kind: "sales_channel", action: "created", id: "sc_1" })
    assert.ok(!matches(client.calls[0], me) && matches(client.calls[0], ["sales-channels", "list"]))
    inv.handle("settings.updated", { kind: "region", action: "updated" })
    inv.handle("settings.updated", { kind: "user", action: "updated", id: "user_1" })
    client.settleAll()
    await until(() => client.calls.length === 2)
    assert.ok(matches(client.calls[1], me) && matches(client.calls[1], ["regions", "list"]))
    client.settleAll()
    inv.cancel()
  })
})

describe("mergeRules", () => {
  it("adds a page's rule for a built-in event to the built-in one", () => {
    const merged = mergeRules({ "banner.updated": startingWith(["hero-banners"]) }, { "banner.updated": startingWith(["promo-banners"]) })
    assert.ok(merged["banner.updated"]?.(["hero-banners", "list"]))
    assert.ok(merged["banner.updated"]?.(["promo-banners"]))
    assert.ok(!merged["banner.updated"]?.(["products"]))
  })
})

describe("createInvalidator", () => {
  it("invalidates a lone event at once", () => {
    const client = recordingClient()
    const inv = createInvalidator(client, { windowMs: 50 })
    assert.equal(inv.handle("product.updated"), true)
    assert.equal(client.calls.length, 1, "leading edge: no waiting for a quiet period")
    assert.ok(matches(client.calls[0], ["products", "detail", "p"]))
    assert.ok(!matches(client.calls[0], ["orders", "list"]))
    inv.cancel()
  })

  it("coalesces a burst of 200 events into a bounded number of invalidations", async () => {
    const client = recordingClient()
    const inv = createInvalidator(client, { windowMs: 20 })
    for (let i = 0; i < 200; i++) inv.handle("product.updated")
    inv.handle("order.updated")
    assert.equal(client.calls.length, 1, "the first event went out, the rest wait for it")
    client.settleAll()
    await until(() => client.calls.length === 2)
    const second = client.calls[1]
    assert.ok(matches(second, ["products", "list"]) && matches(second, [["orders", "detail", "o"], "preview"]))
    client.settleAll()
    // Nothing else was pending, so no third invalidation follows.
    await new Promise((resolve) => setTimeout(resolve, 60))
    assert.equal(client.calls.length, 2)
  })

  it("a bulk change across families (an import, a price list of 5,000 prices) costs two invalidations", async () => {
    const client = recordingClient()
    const inv = createInvalidator(client, { windowMs: 20 })
    for (let i = 0; i < 1000; i++) inv.handle("product.updated")
    for (let i = 0; i < 5000; i++) inv.handle(i % 2 ? "price_list.updated" : "inventory.updated")
    client.settleAll()
    await until(() => client.calls.length === 2)
    const second = client.calls[1]
    assert.ok(matches(second, ["price-lists", "list"]) && matches(second, ["inventory_items", "list"]) && matches(second, ["products", "list"]))
    client.settleAll()
    await new Promise((resolve) => setTimeout(resolve, 60))
    assert.equal(client.calls.length, 2)
  })

  it("waits for a slow refetch before the next invalidation, so none is cancelled mid-flight", async () => {
    const client = recordingClient()
    const inv = createInvalidator(client, { windowMs: 1 })
    inv.handle("product.updated")
    await new Promise((resolve) => setTimeout(resolve, 20)) // far past the window
    inv.handle("product.updated")
    assert.equal(client.calls.length, 1, "the first refetch has not settled yet")
    client.settleAll()
    await until(() => client.calls.length === 2)
    client.settleAll()
    inv.cancel()
  })

  it("resync invalidates everything; unknown events and control messages nothing", () => {
    const client = recordingClient()
    const inv = createInvalidator(client, { windowMs: 10 })
    assert.equal(inv.handle("ready"), false)
    assert.equal(inv.handle("coupon.updated"), false)
    assert.equal(client.calls.length, 0)
    inv.handle("resync")
    assert.deepEqual(client.calls, [undefined])
    inv.cancel()
  })

  it("follows rules added later (a shop page's own keys)", () => {
    const client = recordingClient()
    const rules = { "promo.updated": startingWith(["promotions"]) }
    const inv = createInvalidator(client, { rules: () => rules })
    assert.equal(inv.handle("promo.updated"), true)
    assert.ok(matches(client.calls[0], ["promotions", "list"]))
    inv.cancel()
  })

  it("cancel drops pending work and ignores later events", async () => {
    const client = recordingClient()
    const inv = createInvalidator(client, { windowMs: 1 })
    inv.handle("product.updated")
    inv.handle("order.updated")
    inv.cancel()
    client.settleAll()
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(client.calls.length, 1)
    assert.equal(inv.handle("product.updated"), false)
  })
})
