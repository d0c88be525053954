/**
 * Tells open admin dashboards that an order changed.
 *
 * Medusa's `order.updated` fires only for detail edits, not for status
 * changes, so placing, canceling, completing, archiving and fulfilling are
 * subscribed to explicitly. `order.fulfillment_created` carries `order_id`
 * instead of `id`; the mapping in ../lib/events handles that.
 */
import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"
import { emitAdminEvent } from "../index"
import { ORDER_EVENTS, orderEventToPush } from "../lib/events"

export default async function adminPushOrdersHandler({
  event: { name, data },
  container,
}: SubscriberArgs<{ id?: string; order_id?: string }>) {
  const push = orderEventToPush(name, data)
  if (push) await emitAdminEvent(container, push.event, push.data)
}

export const config: SubscriberConfig = {
  event: [...ORDER_EVENTS],
  context: { subscriberId: "admin-push-orders" },
}
