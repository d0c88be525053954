/**
 * The small "Live" indicator on every screen of the dashboard that has a widget zone.
 *
 * Mounting it is also what makes the dashboard live when an admin lands on
 * one of them first: it joins the page's connection with the dashboard's QueryClient.
 * It stays one line high and says "Reconnecting" once during an outage (the
 * client does not flicker), with the next attempt's time on hover.
 */
import { defineWidgetConfig } from "@medusajs/admin-sdk"
import { StatusBadge } from "@medusajs/ui"
import type { AdminPushStatus } from "@admin-push/client"
import { useAdminPush } from "../lib/hooks"

const LOOK: Record<AdminPushStatus["state"], { label: string; color: "green" | "orange" | "red" | "grey" }> = {
  open: { label: "Live", color: "green" },
  connecting: { label: "Connecting", color: "orange" },
  reconnecting: { label: "Reconnecting", color: "orange" },
  refused: { label: "Offline", color: "red" },
  closed: { label: "Offline", color: "grey" },
}

function describe(status: AdminPushStatus): string {
  if (status.state === "open") return `Live updates via ${status.transport === "sse" ? "SSE" : "WebSocket"}`
  const why = status.error ? `: ${status.error.message}` : ""
  const next = status.retryAt ? ` (next try ${new Date(status.retryAt).toLocaleTimeString()})` : ""
  return `Live updates ${LOOK[status.state].label.toLowerCase()}${why}${next}`
}

const LiveStatus = () => {
  const status = useAdminPush()
  const { label, color } = LOOK[status.state]
  return (
    <div className="flex justify-end" data-admin-push-status={status.state}>
      <StatusBadge color={color} title={describe(status)}>
        {label}
      </StatusBadge>
    </div>
  )
}

/**
 * Every list and detail screen of the dashboard that has a widget zone: an
 * admin may land on any of them first, and the bell in the top bar is live
 * from whichever one started the connection.
 */
export const config = defineWidgetConfig({
  zone: [
    "product.list.before",
    "product.details.before",
    "product_variant.details.before",
    "product_collection.list.before",
    "product_collection.details.before",
    "product_category.list.before",
    "product_category.details.before",
    "product_tag.list.before",
    "product_tag.details.before",
    "product_type.list.before",
    "product_type.details.before",
    "order.list.before",
    "order.details.before",
    "draft_order.list.before",
    "draft_order.details.before",
    "inventory_item.list.before",
    "inventory_item.details.before",
    "reservation.list.before",
    "reservation.details.before",
    "customer.list.before",
    "customer.details.before",
    "customer_group.list.before",
    "customer_group.details.before",
    "promotion.list.before",
    "promotion.details.before",
    "campaign.list.before",
    "campaign.details.before",
    "price_list.list.before",
    "price_list.details.before",
    "region.list.before",
    "region.details.before",
    "tax.list.before",
    "tax.details.before",
    "sales_channel.list.before",
    "sales_channel.details.before",
    "location.list.before",
    "location.details.before",
    "shipping_profile.list.before",
    "shipping_profile.details.before",
    "store.details.before",
    "user.list.before",
    "user.details.before",
    "api_key.list.before",
    "api_key.details.before",
  ],
})

export default LiveStatus
