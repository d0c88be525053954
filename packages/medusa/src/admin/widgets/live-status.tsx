/**
 * The small "Live" indicator on every product and order screen.
 *
 * Mounting it is also what makes those screens live when an admin lands on
 * one first: it joins the page's connection with the dashboard's QueryClient.
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

export const config = defineWidgetConfig({
  zone: [
    "product.list.before",
    "product.details.before",
    "product_variant.details.before",
    "product_collection.details.before",
    "product_category.details.before",
    "order.list.before",
    "order.details.before",
    "draft_order.list.before",
    "draft_order.details.before",
    "customer.details.before",
  ],
})

export default LiveStatus
