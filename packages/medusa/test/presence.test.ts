import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { initials, presenceOf } from "../src/admin/lib/presence"

describe("presenceOf", () => {
  it("is the record of a detail page, viewing", () => {
    assert.deepEqual(presenceOf("/app/orders/order_01JABC"), { record: "order:order_01JABC", state: "viewing" })
    assert.deepEqual(presenceOf("/app/products/prod_01X/"), { record: "product:prod_01X", state: "viewing" })
    assert.deepEqual(presenceOf("/app/customers/cus_01"), { record: "customer:cus_01", state: "viewing" })
    assert.deepEqual(presenceOf("/app/draft-orders/order_01D"), { record: "draft_order:order_01D", state: "viewing" })
  })

  it("is editing while a drawer or form below the detail page is open", () => {
    assert.deepEqual(presenceOf("/app/orders/order_01/refund"), { record: "order:order_01", state: "editing" })
    assert.deepEqual(presenceOf("/app/orders/order_01/metadata/edit"), { record: "order:order_01", state: "editing" })
    assert.deepEqual(presenceOf("/app/products/prod_01/edit"), { record: "product:prod_01", state: "editing" })
    assert.deepEqual(presenceOf("/app/customers/cus_01/edit"), { record: "customer:cus_01", state: "editing" })
  })

  it("is nothing on lists, list-level routes and other screens", () => {
    for (const path of ["/app/orders", "/app/orders/export", "/app/products/create", "/app/products/import",
      "/app/customers/create", "/app/draft-orders/create", "/app/promotions/promo_01", "/app", "/"]) {
      assert.equal(presenceOf(path), null, path)
    }
  })
})

describe("initials", () => {
  it("takes the first and last word, or an email's local part", () => {
    assert.equal(initials("Anna Berg", "user_1"), "AB")
    assert.equal(initials("Anna Maria Berg", "user_1"), "AB")
    assert.equal(initials("anna.berg@example.com", "user_1"), "AB")
    assert.equal(initials("Anna", "user_1"), "AN")
    assert.equal(initials(undefined, "user_1"), "U1")
  })
})
