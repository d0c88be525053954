/**
 * Tell open admin dashboards that a product changed, so they refetch it.
 * Creation and deletion map to `product.updated` too: the product list has to
 * refetch in every case, and the service's event set stays small.
 */
import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"
import { ContainerRegistrationKeys } from "@medusajs/framework/utils"
import { emitAdminEvent } from "../lib/admin-push"
import { PRODUCT_EVENTS, productEventToPush } from "../lib/admin-push-events"

export default async function adminPushProductsHandler({
  event: { name, data },
  container,
}: SubscriberArgs<{ id: string }>) {
  const push = productEventToPush(name, data)
  if (!push) return
  // emitAdminEvent never throws; on failure it logs and resolves { ok: false }.
  await emitAdminEvent(push.event, push.data, {
    logger: container.resolve(ContainerRegistrationKeys.LOGGER),
  })
}

export const config: SubscriberConfig = {
  event: [...PRODUCT_EVENTS],
  context: { subscriberId: "admin-push-products" },
}
