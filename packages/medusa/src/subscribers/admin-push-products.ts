/**
 * Tells open admin dashboards that a product changed, so they refetch it.
 * Creation and deletion map to `product.updated` too: the product list has to
 * refetch in every case, and the service's event set stays small.
 */
import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"
import { emitAdminEvent } from "../index"
import { PRODUCT_EVENTS, productEventToPush } from "../lib/events"

export default async function adminPushProductsHandler({ event: { name, data }, container }: SubscriberArgs<{ id: string }>) {
  const push = productEventToPush(name, data)
  if (push) await emitAdminEvent(container, push.event, push.data)
}

export const config: SubscriberConfig = {
  event: [...PRODUCT_EVENTS],
  context: { subscriberId: "admin-push-products" },
}
