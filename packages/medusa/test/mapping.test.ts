import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { MEDUSA_EVENTS, planPush, type Planned } from "../src/lib/events"

/** The message of a plan that needs no lookup. */
const direct = (planned: Planned | null) => (planned && "message" in planned ? planned.message : null)

describe("product events", () => {
  for (const name of ["product.created", "product.updated", "product.deleted"]) {
    it(`${name} → product.updated {id}`, () => {
      assert.deepEqual(direct(planPush(name, { id: "prod_1" })), { event: "product.updated", data: { id: "prod_1" } })
    })
  }

  it("drops extra fields (the service rejects unknown ones)", () => {
    assert.deepEqual(direct(planPush("product.updated", { id: "prod_1", title: "x" }))?.data, { id: "prod_1" })
  })

  for (const name of ["product-variant.created", "product-variant.updated", "product-variant.deleted"]) {
    it(`${name} looks the variant's product up, and publishes product.updated for it`, () => {
      const planned = planPush(name, { id: "variant_1" })
      assert.ok(planned && "lookup" in planned, "a lookup")
      assert.deepEqual(planned.lookup, { entity: "product_variant", path: "product_id", id: "variant_1" })
      assert.deepEqual(planned.then("prod_1"), { event: "product.updated", data: { id: "prod_1" } })
    })
  }

  it("ignores payloads without an id", () => {
    assert.equal(planPush("product.updated", {}), null)
    assert.equal(planPush("product.updated", { id: "" }), null)
    assert.equal(planPush("product.updated", undefined), null)
    assert.equal(planPush("product-variant.updated", { id: 42 }), null)
  })
})

describe("order events", () => {
  it("map status events to the status they prove", () => {
    assert.deepEqual(direct(planPush("order.canceled", { id: "order_1" })), {
      event: "order.updated",
      data: { id: "order_1", status: "canceled" },
    })
    assert.deepEqual(direct(planPush("order.completed", { id: "order_1" }))?.data, { id: "order_1", status: "completed" })
    assert.deepEqual(direct(planPush("order.archived", { id: "order_1" }))?.data, { id: "order_1", status: "archived" })
  })

  it("omit status where the event does not prove one", () => {
    assert.deepEqual(direct(planPush("order.placed", { id: "order_1" }))?.data, { id: "order_1" })
    assert.deepEqual(direct(planPush("order.updated", { id: "order_1" }))?.data, { id: "order_1" })
  })

  it("take order_id from order.fulfillment_created", () => {
    assert.deepEqual(
      direct(planPush("order.fulfillment_created", { order_id: "order_1", fulfillment_id: "ful_1", no_notification: false })),
      { event: "order.updated", data: { id: "order_1" } }
    )
    assert.equal(planPush("order.fulfillment_created", { id: "ful_1" }), null)
  })
})

describe("the subscribed events", () => {
  it("are exactly the ones with a mapping", () => {
    for (const name of MEDUSA_EVENTS) assert.ok(planPush(name, { id: "x", order_id: "x" }), name)
    assert.equal(planPush("cart.updated", { id: "cart_1" }), null)
  })
})
