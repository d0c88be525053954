/**
 * Admin routes whose change Medusa emits no event for, and what each publishes once it has
 * answered successfully. Pure, like ./events, so it is testable without Medusa.
 *
 * Medusa's pricing module updates a price list with an upsert whose update count its database
 * driver does not report, so `pricing.price-list.updated` is never emitted (Medusa 2.21): an open
 * price list page would stay stale. Creation and deletion do emit, and stay with ./events.
 *
 * A price list's prices are added, changed or removed in one batch (`POST
 * /admin/price-lists/:id/prices/batch`, also the dashboard's own price editor): Medusa's pricing
 * module emits an event per price, naming the price, not its price list. One push per batch
 * names the price list, however many prices it held.
 *
 * A draft order's items change through an edit, and confirming it (the workflow
 * `confirmDraftOrderEditWorkflow`) emits no event, unlike the draft order's own update: an open
 * draft order page would not show the new or changed items.
 *
 * A shipping profile deleted (`deleteShippingProfileWorkflow`, a soft delete) emits no event: the
 * fulfillment module builds its shipping profile events itself, and has one for a creation and an
 * update only. An open list of shipping profiles would go on showing the deleted one.
 */
import type { PushMessage } from "./events"

export interface RouteSource {
  /** Medusa's route matcher, with its `:params`. */
  matcher: string
  method: "POST" | "DELETE"
  /** The push, from the matched route's params. */
  push: (params: Record<string, string | undefined>) => PushMessage | null
}

export const ROUTE_SOURCES: readonly RouteSource[] = [
  {
    matcher: "/admin/price-lists/:id",
    method: "POST",
    push: ({ id }) => (id ? { event: "price_list.updated", data: { kind: "price_list", action: "updated", id } } : null),
  },
  {
    matcher: "/admin/price-lists/:id/prices/batch",
    method: "POST",
    push: ({ id }) => (id ? { event: "price_list.updated", data: { kind: "price_list", action: "updated", id } } : null),
  },
  {
    matcher: "/admin/draft-orders/:id/edit/confirm",
    method: "POST",
    push: ({ id }) => (id ? { event: "order.updated", data: { id } } : null),
  },
  {
    matcher: "/admin/shipping-profiles/:id",
    method: "DELETE",
    push: ({ id }) => (id ? { event: "settings.updated", data: { kind: "shipping_profile", action: "deleted", id } } : null),
  },
]
