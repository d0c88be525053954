import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { ORDER_EVENTS, PRODUCT_EVENTS, orderEventToPush, productEventToPush } from "../src/lib/events"

describe("productEventToPush", () => {
  for (const name of PRODUCT_EVENTS) {
    it(`${name} → product.updated {id}`, () => {
      assert.deepEqual(productEventToPush(name, { id: "prod_1" }), { event: "product.updated", data: { id: "prod_1" } })
    })
  }

  it("drops extra fields (the service rejects unknown ones)", () => {
    assert.deepEqual(productEventToPush("product.updated", { id: "prod_1", title: "x" })?.data, { id: "prod_1" })
  })

  it("ignores other events and payloads without an id", () => {
    assert.equal(productEventToPush("product-variant.updated", { id: "variant_1" }), null)
    assert.equal(productEventToPush("product.updated", {}), null)
    assert.equal(productEventToPush("product.updated", { id: "" }), null)
    assert.equal(productEventToPush("product.updated", undefined), null)
  })
})

describe("orderEventToPush", () => {
  it("maps status events to the status they prove", () => {
    assert.deepEqual(orderEventToPush("order.canceled", { id: "order_1" }), {
      event: "order.updated",
      data: { id: "order_1", status: "canceled" },
    })
    assert.deepEqual(orderEventToPush("order.completed", { id: "order_1" })?.data, { id: "order_1", status: "completed" })
    assert.deepEqual(orderEventToPush("order.archived", { id: "order_1" })?.data, { id: "order_1", status: "archived" })
  })

  it("omits status where the event does not prove one", () => {
    assert.deepEqual(orderEventToPush("order.placed", { id: "order_1" })?.data, { id: "order_1" })
    assert.deepEqual(orderEventToPush("order.updated", { id: "order_1" })?.data, { id: "order_1" })
  })

  it("takes order_id from order.fulfillment_created", () => {
    assert.deepEqual(
      orderEventToPush("order.fulfillment_created", { order_id: "order_1", fulfillment_id: "ful_1", no_notification: false }),
      { event: "order.updated", data: { id: "order_1" } }
    )
    assert.equal(orderEventToPush("order.fulfillment_created", { id: "ful_1" }), null)
  })

  it("handles every subscribed event and nothing else", () => {
    for (const name of ORDER_EVENTS) {
      const data = name === "order.fulfillment_created" ? { order_id: "o" } : { id: "o" }
      assert.equal(orderEventToPush(name, data)?.event, "order.updated", name)
    }
    assert.equal(orderEventToPush("order.return_requested", { id: "o" }), null)
    assert.equal(orderEventToPush("order.placed", { id: 42 }), null)
  })
})
