import assert from "node:assert/strict"
import { describe, it } from "node:test"
import type { AdminPushBuiltinEvents } from "@admin-push/client"
import { FAMILY_KINDS, MAX_IDS, MEDUSA_EVENTS, planPush, type Planned, type PushEventName } from "../src/lib/events"
import { ROUTE_SOURCES } from "../src/lib/routes"

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

describe("order sub-views", () => {
  for (const name of ["order.fulfillment_canceled", "order.return_requested", "order.return_received", "order.claim_created", "order.exchange_created", "order-edit.confirmed"]) {
    it(`${name} refetches the order it names as order_id`, () => {
      assert.deepEqual(direct(planPush(name, { order_id: "order_1", return_id: "ret_1" })), { event: "order.updated", data: { id: "order_1" } })
    })
  }

  it("a draft order created or deleted (the order module's own events) refetches order screens", () => {
    assert.deepEqual(direct(planPush("order.order.created", { id: "order_1" })), { event: "order.updated", data: { id: "order_1" } })
    assert.deepEqual(direct(planPush("order.order.deleted", { id: "order_1" }))?.data, { id: "order_1" })
  })

  it("a transfer request names the order as id", () => {
    assert.deepEqual(direct(planPush("order.transfer_requested", { id: "order_1", order_change_id: "ordch_1" }))?.data, { id: "order_1" })
  })

  it("a captured or refunded payment looks its order up through the payment collection", () => {
    const planned = planPush("payment.refunded", { id: "pay_1" })
    assert.ok(planned && "lookup" in planned)
    assert.deepEqual(planned.lookup, { entity: "payment", path: "payment_collection.order.id", id: "pay_1" })
    assert.deepEqual(planned.then("order_1"), { event: "order.updated", data: { id: "order_1" } })
  })

  it("a shipment or a delivery looks its order up through the fulfillment", () => {
    const planned = planPush("delivery.created", { id: "ful_1", no_notification: false })
    assert.ok(planned && "lookup" in planned)
    assert.deepEqual(planned.lookup, { entity: "fulfillment", path: "order.id", id: "ful_1" })
  })
})

describe("family events", () => {
  it("a workflow event names its family, kind, action and record", () => {
    assert.deepEqual(direct(planPush("customer.updated", { id: "cus_1" })), {
      event: "customer.updated",
      data: { kind: "customer", action: "updated", id: "cus_1" },
    })
    assert.deepEqual(direct(planPush("inventory-level.updated", { id: "ilev_1", order_id: "order_1" }))?.data, {
      kind: "inventory_level",
      action: "updated",
      id: "ilev_1",
    })
    assert.deepEqual(direct(planPush("invite.accepted", { id: "invite_1" }))?.data, { kind: "invite", action: "updated", id: "invite_1" })
  })

  it("a shipping profile (the fulfillment module's own event) is a setting", () => {
    assert.deepEqual(direct(planPush("fulfillment.shipping-profile.updated", { id: "sp_1" })), {
      event: "settings.updated",
      data: { kind: "shipping_profile", action: "updated", id: "sp_1" },
    })
  })

  it("an address, a group membership or a tax rate changed names its family and kind, not the inner record's id", () => {
    assert.deepEqual(direct(planPush("customer.customer-address.created", { id: "cuaddr_1" }))?.data, { kind: "customer", action: "updated" })
    assert.deepEqual(direct(planPush("customer.customer-group-customer.deleted", { id: ["cusgc_1", "cusgc_2"] }))?.data, {
      kind: "customer_group",
      action: "updated",
    })
    assert.deepEqual(direct(planPush("tax.tax-rate.created", { id: "txr_1" })), {
      event: "settings.updated",
      data: { kind: "tax_region", action: "updated" },
    })
  })

  it("a module event with several ids lists them", () => {
    assert.deepEqual(direct(planPush("promotion.campaign.deleted", { id: ["camp_1", "camp_2"] })), {
      event: "promotion.updated",
      data: { kind: "campaign", action: "deleted", ids: ["camp_1", "camp_2"] },
    })
  })

  it("a bulk change past MAX_IDS names the family and kind only, so its payload stays small", () => {
    const ids = Array.from({ length: MAX_IDS + 1 }, (_, i) => `plist_${i}`)
    assert.deepEqual(direct(planPush("pricing.price-list.updated", { id: ids }))?.data, { kind: "price_list", action: "updated" })
  })

  it("every kind a subscribed event names is one its family has", () => {
    for (const name of MEDUSA_EVENTS) {
      const message = direct(planPush(name, { id: "x" }))
      if (message && message.event in FAMILY_KINDS) {
        const { kind } = message.data as { kind: string }
        assert.ok((FAMILY_KINDS[message.event as keyof typeof FAMILY_KINDS] as readonly string[]).includes(kind), `${name} → ${kind}`)
      }
    }
  })

  it("a created notification lights the bell", () => {
    assert.deepEqual(direct(planPush("notification.notification.created", { id: "noti_1" })), {
      event: "notification.created",
      data: { id: "noti_1" },
    })
  })
})

describe("the subscribed events", () => {
  it("are exactly the ones with a mapping", () => {
    for (const name of MEDUSA_EVENTS) assert.ok(planPush(name, { id: "x", order_id: "x" }), name)
    assert.equal(planPush("cart.updated", { id: "cart_1" }), null)
  })
})

describe("the admin routes published after they answer", () => {
  it("a price list's own update (Medusa emits no event for it) → price_list.updated {kind, action, id}", () => {
    const route = ROUTE_SOURCES.find(({ matcher, method }) => matcher === "/admin/price-lists/:id" && method === "POST")
    assert.deepEqual(route?.push({ id: "plist_1" }), {
      event: "price_list.updated",
      data: { kind: "price_list", action: "updated", id: "plist_1" },
    })
    assert.equal(route?.push({}), null)
  })

  it("a batch of a price list's prices → one price_list.updated {kind, action, id} for the price list", () => {
    const route = ROUTE_SOURCES.find(({ matcher, method }) => matcher === "/admin/price-lists/:id/prices/batch" && method === "POST")
    assert.deepEqual(route?.push({ id: "plist_1" }), {
      event: "price_list.updated",
      data: { kind: "price_list", action: "updated", id: "plist_1" },
    })
  })

  it("a draft order's edit confirmed (Medusa emits no event for it) → order.updated {id}", () => {
    const route = ROUTE_SOURCES.find(({ matcher, method }) => matcher === "/admin/draft-orders/:id/edit/confirm" && method === "POST")
    assert.deepEqual(route?.push({ id: "order_1" }), { event: "order.updated", data: { id: "order_1" } })
    assert.equal(route?.push({}), null)
  })

  it("a shipping profile deleted (its module emits no event for it) → settings.updated {kind, action: deleted, id}", () => {
    const route = ROUTE_SOURCES.find(({ matcher, method }) => matcher === "/admin/shipping-profiles/:id" && method === "DELETE")
    assert.deepEqual(route?.push({ id: "sp_1" }), {
      event: "settings.updated",
      data: { kind: "shipping_profile", action: "deleted", id: "sp_1" },
    })
    assert.equal(route?.push({}), null)
  })

  it("name only kinds their family has", () => {
    for (const { matcher, push } of ROUTE_SOURCES) {
      const message = push({ id: "x" })
      assert.ok(message, matcher)
      if (!(message.event in FAMILY_KINDS)) continue
      const { kind } = message.data as { kind: string }
      assert.ok((FAMILY_KINDS[message.event as keyof typeof FAMILY_KINDS] as readonly string[]).includes(kind), `${matcher} → ${kind}`)
    }
  })
})

/** True only when A and B are the same union: checked by `tsc` when the tests are type-checked. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false

describe("the names on the wire", () => {
  it("are the same in the plugin and in the browser client's types", () => {
    const agree: Same<keyof AdminPushBuiltinEvents, PushEventName> = true
    assert.ok(agree)
  })
})
