/**
 * Tells open admin dashboards that something they may show changed, so they
 * refetch it. Which Medusa events, and what each becomes, is ../lib/events;
 * this file only resolves the lookups an event needs and publishes.
 */
import type { SubscriberArgs, SubscriberConfig } from "@medusajs/framework"
import { ContainerRegistrationKeys } from "@medusajs/framework/utils"
import { emitAdminEvent } from "../index"
import { MEDUSA_EVENTS, planPush, type Lookup } from "../lib/events"

type Container = SubscriberArgs<unknown>["container"]

/**
 * The id at the end of `lookup.path`, or null. Soft-deleted rows count: a
 * deleted variant still names the product whose page must refetch.
 */
async function resolve(container: Container, { entity, path, id }: Lookup): Promise<string | null> {
  const query = container.resolve(ContainerRegistrationKeys.QUERY)
  const { data } = await query.graph({ entity, fields: [path], filters: { id }, withDeleted: true })
  const found = path.split(".").reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], data[0])
  return typeof found === "string" && found.length > 0 ? found : null
}

export default async function adminPushHandler({ event: { name, data }, container }: SubscriberArgs<Record<string, unknown>>) {
  const planned = planPush(name, data)
  if (!planned) return
  let message = "message" in planned ? planned.message : null
  if ("lookup" in planned) {
    // Like an emit, a failed lookup must not fail Medusa's event handling: log it and move on.
    const id = await resolve(container, planned.lookup).catch((err: unknown) => {
      container.resolve(ContainerRegistrationKeys.LOGGER).warn(`admin-push: ${name}: cannot find ${planned.lookup.entity} ${planned.lookup.id}'s ${planned.lookup.path}: ${String(err)}`)
      return null
    })
    message = id ? planned.then(id) : null
  }
  if (message) await emitAdminEvent(container, message.event, message.data)
}

export const config: SubscriberConfig = {
  event: [...MEDUSA_EVENTS],
  context: { subscriberId: "admin-push" },
}
