import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { createInvalidator, flattenKey, isOrderKey, isProductKey, type InvalidatingClient } from "../src/admin/lib/admin-push-invalidate"

type Filters = Parameters<InvalidatingClient["invalidateQueries"]>[0]

function fakeClient() {
  const calls: Filters[] = []
  return { calls, invalidateQueries: (f?: Filters) => void calls.push(f) }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("query key matching", () => {
  it("flattens nested keys but not objects", () => {
    assert.deepEqual(flattenKey([["orders", "detail", "order_1"], "preview"]), ["orders", "detail", "order_1", "preview"])
    assert.deepEqual(flattenKey(["products", "list", { query: { q: "orders" } }]), ["products", "list", { query: { q: "orders" } }])
  })

  it("finds order keys at any depth", () => {
    assert.ok(isOrderKey(["orders", "list", { query: {} }]))
    assert.ok(isOrderKey(["orders", "detail", "order_1", { query: {} }]))
    assert.ok(isOrderKey([["orders", "detail", "order_1"], "preview"]))
    assert.ok(isOrderKey(["order", "order_1"]))
    assert.ok(!isOrderKey(["products", "list", { query: { order: "created_at" } }]))
  })

  it("finds product keys", () => {
    assert.ok(isProductKey(["products", "list", { query: {} }]))
    assert.ok(isProductKey(["products", "detail", "prod_1"]))
    assert.ok(isProductKey(["product", "prod_1"]))
    assert.ok(isProductKey(["product_variants", "list"]))
    assert.ok(!isProductKey(["orders", "list"]))
  })
})

describe("createInvalidator", () => {
  it("turns a burst into one invalidation per kind", async () => {
    const client = fakeClient()
    const inv = createInvalidator(client, { waitMs: 20 })
    for (let i = 0; i < 10; i++) inv.handle("product.updated")
    inv.handle("order.updated")
    inv.handle("banner.updated")
    assert.equal(inv.handle("ready"), false)
    assert.equal(client.calls.length, 0, "nothing before the burst ends")
    await sleep(60)
    assert.equal(client.calls.length, 3)

    const [products, orders, banners] = client.calls
    assert.ok(products?.predicate?.({ queryKey: ["products", "detail", "p"] }))
    assert.ok(!products?.predicate?.({ queryKey: ["orders", "list"] }))
    assert.ok(orders?.predicate?.({ queryKey: [["orders", "detail", "o"], "preview"] }))
    assert.deepEqual(banners?.queryKey, ["hero-banners"])
  })

  it("resync invalidates everything, once", async () => {
    const client = fakeClient()
    const inv = createInvalidator(client, { waitMs: 10 })
    inv.handle("product.updated")
    inv.handle("resync")
    await sleep(40)
    assert.deepEqual(client.calls, [undefined])
  })

  it("still flushes during a steady stream (maxWaitMs)", async () => {
    const client = fakeClient()
    const inv = createInvalidator(client, { waitMs: 30, maxWaitMs: 60 })
    const until = Date.now() + 150
    while (Date.now() < until) {
      inv.handle("order.updated")
      await sleep(10)
    }
    inv.cancel()
    assert.ok(client.calls.length >= 1, "flushed before the stream stopped")
  })

  it("cancel drops pending work", async () => {
    const client = fakeClient()
    const inv = createInvalidator(client, { waitMs: 10 })
    inv.handle("product.updated")
    inv.cancel()
    await sleep(30)
    assert.equal(client.calls.length, 0)
  })
})
