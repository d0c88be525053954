import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { createInvalidator, MAX_SETTLED_PER_FLUSH, type InvalidatingClient, type QueryLike } from "../src/admin/lib/invalidate"

type Filters = Parameters<InvalidatingClient["invalidateQueries"]>[0]

/**
 * A QueryClient holding `queries` (on screen or not): an invalidation runs the predicate over
 * them, as react-query does, and "refetches" until the test settles it.
 */
function cacheWith(queries: QueryLike[]) {
  const settle: Array<() => void> = []
  let calls = 0
  return {
    calls: () => calls,
    settleAll: () => settle.splice(0).forEach((done) => done()),
    invalidateQueries(filters?: Filters) {
      calls++
      queries.filter((q) => filters?.predicate?.(q) ?? true)
      return new Promise<void>((resolve) => settle.push(resolve))
    },
  }
}

const onScreen = (...queryKey: unknown[]): QueryLike => ({ queryKey, isActive: () => true })
const offScreen = (...queryKey: unknown[]): QueryLike => ({ queryKey, isActive: () => false })

/** Waits until `check` holds, yielding to timers in between (no fixed sleeps). */
async function until(check: () => boolean) {
  while (!check()) await new Promise((resolve) => setImmediate(resolve))
}

describe("screen-refresh receipts from invalidations", () => {
  it("an event that refetched a query on screen is reported once that refetch has settled", async () => {
    const client = cacheWith([onScreen("products", "detail", "prod_1"), offScreen("orders", "list")])
    const settled: string[][] = []
    const invalidator = createInvalidator(client, { windowMs: 0, onSettled: (ids) => settled.push(ids) })
    invalidator.handle("product.updated", { id: "prod_1" }, "1-1")
    await until(() => client.calls() === 1)
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(settled, [], "not before the refetch settled")
    client.settleAll()
    await until(() => settled.length === 1)
    assert.deepEqual(settled, [["1-1"]])
  })

  it("an event whose queries are not on screen is not reported", async () => {
    const client = cacheWith([offScreen("products", "list"), onScreen("orders", "list")])
    const settled: string[][] = []
    const invalidator = createInvalidator(client, { windowMs: 0, onSettled: (ids) => settled.push(ids) })
    invalidator.handle("product.updated", { id: "prod_1" }, "1-1")
    await until(() => client.calls() === 1)
    client.settleAll()
    // A later event's report comes after this flush's: none came for the first.
    invalidator.handle("order.updated", { id: "order_1" }, "1-2")
    await until(() => client.calls() === 2)
    client.settleAll()
    await until(() => settled.length === 1)
    assert.deepEqual(settled, [["1-2"]])
  })

  it("a burst coalesced into one refetch reports the events it showed together; a family's kind narrows it", async () => {
    // The user menu's ["users", "me"] is on every screen; a settings change refetches it only when a user changed.
    const client = cacheWith([onScreen("products", "list"), onScreen("users", "me")])
    const settled: string[][] = []
    const invalidator = createInvalidator(client, { windowMs: 0, onSettled: (ids) => settled.push(ids) })
    invalidator.handle("product.updated", { id: "prod_0" }, "1-1")
    await until(() => client.calls() === 1)
    // While the first refetch runs: a burst, an event without an id, and settings changes of a
    // kind nothing on screen shows (a region) and of one it does (a user).
    invalidator.handle("product.updated", { id: "prod_1" }, "1-2")
    invalidator.handle("product.updated", { id: "prod_2" }, "1-3")
    invalidator.handle("product.updated", { id: "prod_3" })
    invalidator.handle("settings.updated", { kind: "region", action: "updated", id: "reg_1" }, "1-4")
    invalidator.handle("settings.updated", { kind: "user", action: "updated", id: "user_1" }, "1-5")
    client.settleAll()
    await until(() => client.calls() === 2)
    assert.deepEqual(settled, [["1-1"]])
    client.settleAll()
    await until(() => settled.length === 2)
    assert.deepEqual(settled[1], ["1-2", "1-3", "1-5"])
  })

  it("follows a bounded number of a burst's events, and none without onSettled", async () => {
    const client = cacheWith([onScreen("products", "list")])
    const settled: string[][] = []
    const invalidator = createInvalidator(client, { windowMs: 0, onSettled: (ids) => settled.push(ids) })
    // The first event refetches at once; the 99 after it wait for that refetch, then go together.
    for (let i = 0; i < 100; i++) invalidator.handle("product.updated", { id: `prod_${i}` }, `1-${i}`)
    await until(() => client.calls() === 1)
    client.settleAll()
    await until(() => client.calls() === 2)
    client.settleAll()
    await until(() => settled.length === 2)
    assert.deepEqual(settled[0], ["1-0"])
    assert.equal(settled[1]?.length, MAX_SETTLED_PER_FLUSH)
    assert.deepEqual(settled[1]?.slice(0, 2), ["1-1", "1-2"])

    const quiet = cacheWith([onScreen("products", "list")])
    const plain = createInvalidator(quiet, { windowMs: 0 })
    assert.equal(plain.handle("product.updated", { id: "prod_1" }, "2-1"), true)
    await until(() => quiet.calls() === 1)
  })
})
