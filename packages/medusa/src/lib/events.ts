/**
 * Pure mapping from Medusa v2 events to admin-push events, kept apart from the
 * subscriber file so it can be tested without Medusa installed. (It lives in
 * src/lib because Medusa loads every file in src/subscribers as a subscriber.)
 *
 * Payloads stay minimal on purpose: the service rejects unknown fields, and a
 * dashboard only needs to know *what* to refetch, never the data itself.
 *
 * Some Medusa events name a child of what a screen shows (a variant, not its
 * product): those carry a `Lookup`, which the subscriber resolves through
 * Medusa's query graph before publishing.
 */

/**
 * The service's family events: one per group of admin screens, each with the
 * kinds of record it covers (the service's catalog names the same).
 */
export const FAMILY_KINDS = {
  "catalog.updated": ["collection", "category", "tag", "type"],
  "inventory.updated": ["inventory_item", "inventory_level", "reservation"],
  "customer.updated": ["customer", "customer_group"],
  "promotion.updated": ["promotion", "campaign"],
  "price_list.updated": ["price_list"],
  "settings.updated": ["store", "region", "tax_region", "sales_channel", "stock_location", "shipping_option", "shipping_profile", "user", "invite", "api_key"],
} as const

export type FamilyEvent = keyof typeof FAMILY_KINDS
export type ChangeAction = "created" | "updated" | "deleted"

/** `id` for one record, `ids` for several, neither when a bulk change touched more than `MAX_IDS`. */
export type ChangeData = {
  kind: string
  action: ChangeAction
  id?: string
  ids?: string[]
}

/** More ids than this are not listed: a screen refetches the same either way, and payloads stay small. */
export const MAX_IDS = 50

export type PushMessage =
  | { event: "product.updated"; data: { id: string } }
  | { event: "order.updated"; data: { id: string; status?: string } }
  | { event: FamilyEvent; data: ChangeData }
  | { event: "notification.created"; data: { id: string } }

/** Every built-in event name of the service; the plugin publishes all but `banner.updated` itself. */
export const PUSH_EVENTS = [
  "banner.updated",
  "product.updated",
  "order.updated",
  ...(Object.keys(FAMILY_KINDS) as FamilyEvent[]),
  "notification.created",
] as const
export type PushEventName = (typeof PUSH_EVENTS)[number]

/** Where the id a push needs is found when the event does not carry it. */
export interface Lookup {
  /** The query graph entity the event's own id belongs to, e.g. `product_variant`. */
  entity: string
  /** Dotted path from that entity to the wanted id, e.g. `product_id`. */
  path: string
  id: string
}

/** A push ready to send, or one that needs the id at the end of a lookup first. */
export type Planned = { message: PushMessage } | { lookup: Lookup; then: (id: string) => PushMessage }

type EventData = Record<string, unknown> | null | undefined

/** How one Medusa event about a product, an order or a notification becomes a push. */
interface RecordSource {
  push: "product.updated" | "order.updated" | "notification.created"
  /** The field of the event's data holding the id (default `id`). */
  from?: "id" | "order_id"
  /** When the id is a child's: the entity it belongs to and the path to the wanted id. */
  via?: { entity: string; path: string }
  /** The order status the event proves. */
  status?: string
}

/** How one Medusa event becomes a family event. */
interface FamilySource {
  push: FamilyEvent
  kind: string
  action: ChangeAction
  /** The event's id is of a record inside the one that changed (an address, a membership): name none. */
  inner?: true
}

type Source = RecordSource | FamilySource

const each = (names: readonly string[], source: Source) => names.map((name) => [name, source] as const)

/**
 * `<prefix>.created/updated/deleted` as one family's kind. Workflow events
 * (`customer.updated`) carry `{id}`; module events (`promotion.campaign.updated`,
 * emitted for every record a module's service writes) carry `{id}` with one id
 * or an array of them.
 */
const crud = <F extends FamilyEvent>(prefix: string, push: F, kind: (typeof FAMILY_KINDS)[F][number]) =>
  (["created", "updated", "deleted"] as const).map((action) => [`${prefix}.${action}`, { push, kind, action }] as const)

/**
 * `<prefix>.created/updated/deleted` of a record shown inside another (an address on its customer,
 * a member in its group, a tax rate on its tax region): the owner's kind, `updated`. Its id is
 * not the owner's, so none is named (`inner`) and the owner's screens refetch the same.
 */
const inside = <F extends FamilyEvent>(prefix: string, push: F, kind: (typeof FAMILY_KINDS)[F][number]) =>
  each(["created", "updated", "deleted"].map((action) => `${prefix}.${action}`), {
    push,
    kind,
    action: "updated",
    inner: true,
  })

/** An order sub-view (a return, a claim, a fulfillment…) whose event names the order as `order_id`. */
const ORDER_ID_EVENTS = [
  "order.fulfillment_created",
  "order.fulfillment_canceled",
  "order.return_requested",
  "order.return_received",
  "order.claim_created",
  "order.exchange_created",
  "order-edit.requested",
  "order-edit.confirmed",
  "order-edit.canceled",
]

/**
 * Every Medusa event the plugin listens to. Names are Medusa's own: the
 * `*WorkflowEvents`, `PaymentEvents`, `InventoryEvents`, `PricingEvents` and
 * `NotificationEvents` constants of @medusajs/framework/utils, and for modules
 * without such a constant the module events every Medusa module service emits
 * (`<module>.<record>.<action>`, the events Medusa's own index module follows).
 */
const SOURCES: ReadonlyMap<string, Source> = new Map([
  // Creation and deletion map to `product.updated` too: the product list has to refetch in every case.
  ...each(["product.created", "product.updated", "product.deleted"], { push: "product.updated" }),
  // Variant events carry only the variant's id; an open product page needs its product's.
  ...each(["product-variant.created", "product-variant.updated", "product-variant.deleted"], {
    push: "product.updated",
    via: { entity: "product_variant", path: "product_id" },
  }),
  // Medusa's `order.updated` fires only for detail edits, not for status changes.
  ...each(["order.placed", "order.updated"], { push: "order.updated" }),
  ["order.canceled", { push: "order.updated", status: "canceled" }],
  ["order.completed", { push: "order.updated", status: "completed" }],
  ["order.archived", { push: "order.updated", status: "archived" }],
  ...each(ORDER_ID_EVENTS, { push: "order.updated", from: "order_id" }),
  ["order.transfer_requested", { push: "order.updated" }],
  // Creating a draft order, or deleting one, runs no workflow event; the order module's own does.
  ...each(["order.order.created", "order.order.deleted"], { push: "order.updated" }),
  // Payments and shipments name their own record; the order page is found through the links.
  ...each(["payment.captured", "payment.refunded"], {
    push: "order.updated",
    via: { entity: "payment", path: "payment_collection.order.id" },
  }),
  ...each(["shipment.created", "delivery.created"], {
    push: "order.updated",
    via: { entity: "fulfillment", path: "order.id" },
  }),

  ...crud("product-collection", "catalog.updated", "collection"),
  ...crud("product-category", "catalog.updated", "category"),
  ...crud("product-tag", "catalog.updated", "tag"),
  ...crud("product-type", "catalog.updated", "type"),

  ...crud("inventory-item", "inventory.updated", "inventory_item"),
  ...crud("inventory-level", "inventory.updated", "inventory_level"),
  ...crud("reservation-item", "inventory.updated", "reservation"),

  ...crud("customer", "customer.updated", "customer"),
  ...crud("customer.customer-group", "customer.updated", "customer_group"),
  ...inside("customer.customer-address", "customer.updated", "customer"),
  ...inside("customer.customer-group-customer", "customer.updated", "customer_group"),

  ...crud("promotion.promotion", "promotion.updated", "promotion"),
  ...crud("promotion.campaign", "promotion.updated", "campaign"),

  ...crud("pricing.price-list", "price_list.updated", "price_list"),

  ...crud("store.store", "settings.updated", "store"),
  ...crud("region", "settings.updated", "region"),
  ...crud("tax.tax-region", "settings.updated", "tax_region"),
  // A region's tax rates are shown on its tax region's page.
  ...inside("tax.tax-rate", "settings.updated", "tax_region"),
  ...crud("sales-channel", "settings.updated", "sales_channel"),
  ...crud("stock_location.stock-location", "settings.updated", "stock_location"),
  ...crud("shipping-option", "settings.updated", "shipping_option"),
  // Shipping profiles have no workflow events; the fulfillment module emits its own (none for a
  // deletion: ./routes publishes that).
  ...crud("fulfillment.shipping-profile", "settings.updated", "shipping_profile"),
  ...crud("user", "settings.updated", "user"),
  ...crud("api_key.api-key", "settings.updated", "api_key"),
  ["invite.created", { push: "settings.updated", kind: "invite", action: "created" }],
  ...each(["invite.resent", "invite.accepted"], { push: "settings.updated", kind: "invite", action: "updated" }),
  ["invite.deleted", { push: "settings.updated", kind: "invite", action: "deleted" }],

  // Every notification, feed or not: the bell refetches a short list either way.
  ["notification.notification.created", { push: "notification.created" }],
])

/** The Medusa events the subscriber listens to. */
export const MEDUSA_EVENTS: readonly string[] = [...SOURCES.keys()]

const nonEmptyString = (v: unknown): v is string => typeof v === "string" && v.length > 0

function build(source: RecordSource, id: string): PushMessage {
  if (source.push === "order.updated") return { event: source.push, data: source.status ? { id, status: source.status } : { id } }
  return { event: source.push, data: { id } }
}

/** A family event for one id, several, or (past `MAX_IDS`, or none given) the family as a whole. */
function change({ push, kind, action, inner }: FamilySource, id: unknown): PushMessage {
  const ids = inner ? [] : (Array.isArray(id) ? id : [id]).filter(nonEmptyString)
  const which = ids.length === 1 ? { id: ids[0] } : ids.length > 1 && ids.length <= MAX_IDS ? { ids } : {}
  return { event: push, data: { kind, action, ...which } }
}

/** What to publish for Medusa event `name`, or null when it is not ours or lacks its id. */
export function planPush(name: string, data: EventData): Planned | null {
  const source = SOURCES.get(name)
  if (!source) return null
  if ("kind" in source) return { message: change(source, data?.id) }
  const id = data?.[source.from ?? "id"]
  if (!nonEmptyString(id)) return null
  if (source.via) return { lookup: { ...source.via, id }, then: (parent) => build(source, parent) }
  return { message: build(source, id) }
}
