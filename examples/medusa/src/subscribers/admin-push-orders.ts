/**
 * Tell open admin dashboards that an order changed.
 *
 * Medusa's `order.updated` fires only for detail edits, not for status
 * changes, so placing, canceling, completing, archiving and fulfilling are
 * subscribed to explicitly. `order.fulfillment_created` carries `order_id`
 * instead of `id`; the mapping in ../lib/admin-push-events handles that.
 */
import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"
import { ContainerRegistrationKeys } from "@medusajs/framework/utils"
import { emitAdminEvent } from "../lib/admin-push"
import { ORDER_EVENTS, orderEventToPush } from "../lib/admin-push-events"

export default async function adminPushOrdersHandler({
  event: { name, data },
  container,
}: SubscriberArgs<{ id?: string; order_id?: string }>) {
  const push = orderEventToPush(name, data)
  if (!push) return
  await emitAdminEvent(push.event, push.data, {
    logger: container.resolve(ContainerRegistrationKeys.LOGGER),
  })
}

export const config: SubscriberConfig = {
  event: [...ORDER_EVENTS],
  context: { subscriberId: "admin-push-orders" },
}
