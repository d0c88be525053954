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

export type PushMessage =
  | { event: "product.updated"; data: { id: string } }
  | { event: "order.updated"; data: { id: string; status?: string } }

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

/** How one Medusa event becomes a push. */
interface Source {
  push: PushMessage["event"]
  /** The field of the event's data holding the id (default `id`). */
  from?: "id" | "order_id"
  /** When the id is a child's: the entity it belongs to and the path to the wanted id. */
  via?: { entity: string; path: string }
  /** The order status the event proves. */
  status?: string
}

const each = (names: readonly string[], source: Source) => names.map((name) => [name, source] as const)

/**
 * Every Medusa event the plugin listens to. Names are Medusa's own
 * (`ProductWorkflowEvents`, `ProductVariantWorkflowEvents`,
 * `OrderWorkflowEvents` in @medusajs/framework/utils).
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
  ["order.fulfillment_created", { push: "order.updated", from: "order_id" }],
])

/** The Medusa events the subscriber listens to. */
export const MEDUSA_EVENTS: readonly string[] = [...SOURCES.keys()]

const nonEmptyString = (v: unknown): v is string => typeof v === "string" && v.length > 0

function build(source: Source, id: string): PushMessage {
  if (source.push === "product.updated") return { event: source.push, data: { id } }
  return { event: source.push, data: source.status ? { id, status: source.status } : { id } }
}

/** What to publish for Medusa event `name`, or null when it is not ours or lacks its id. */
export function planPush(name: string, data: EventData): Planned | null {
  const source = SOURCES.get(name)
  if (!source) return null
  const id = data?.[source.from ?? "id"]
  if (!nonEmptyString(id)) return null
  if (source.via) return { lookup: { ...source.via, id }, then: (parent) => build(source, parent) }
  return { message: build(source, id) }
}
