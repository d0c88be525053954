/**
 * Pure mapping from Medusa v2 events to admin-push events, kept apart from the
 * subscriber files so it can be tested without Medusa installed. (It lives in
 * src/lib because Medusa loads every file in src/subscribers as a subscriber.)
 *
 * Payloads stay minimal on purpose: the service rejects unknown fields, and a
 * dashboard only needs to know *what* to refetch, never the data itself.
 */

export interface PushMessage {
  event: "product.updated" | "order.updated"
  data: { id: string; status?: string }
}

export const PRODUCT_EVENTS = ["product.created", "product.updated", "product.deleted"] as const

/**
 * Medusa's `order.updated` fires only for detail edits (addresses, email…),
 * not for status changes, so the status events must be listened to as well.
 */
export const ORDER_EVENTS = [
  "order.placed",
  "order.updated",
  "order.canceled",
  "order.completed",
  "order.archived",
  "order.fulfillment_created",
] as const

/**
 * The order `status` an event implies. Only set where the event alone proves
 * it; `order.placed` is left out (a placed order is usually "pending", but the
 * dashboard refetches anyway and a wrong hint would be worse than none).
 */
const ORDER_STATUS: Partial<Record<string, string>> = {
  "order.canceled": "canceled",
  "order.completed": "completed",
  "order.archived": "archived",
}

type EventData = Record<string, unknown> | null | undefined

const nonEmptyString = (v: unknown): v is string => typeof v === "string" && v.length > 0

export function productEventToPush(name: string, data: EventData): PushMessage | null {
  if (!(PRODUCT_EVENTS as readonly string[]).includes(name)) return null
  const id = data?.id
  return nonEmptyString(id) ? { event: "product.updated", data: { id } } : null
}

export function orderEventToPush(name: string, data: EventData): PushMessage | null {
  if (!(ORDER_EVENTS as readonly string[]).includes(name)) return null
  // order.fulfillment_created carries { order_id, fulfillment_id, no_notification }.
  const id = name === "order.fulfillment_created" ? data?.order_id : data?.id
  if (!nonEmptyString(id)) return null
  const status = ORDER_STATUS[name]
  return { event: "order.updated", data: status ? { id, status } : { id } }
}
