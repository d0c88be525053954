/**
 * Example widget: a "Live updates" badge above the product list. Mounting it
 * is also what keeps the page live: useAdminPush() opens (or joins) the tab's
 * shared connection and invalidates the product queries on every push.
 */
import { defineWidgetConfig } from "@medusajs/admin-sdk"
import { Container, StatusBadge, Text } from "@medusajs/ui"
import { useAdminPush } from "../lib/use-admin-push"

const LABEL = { open: "Live", connecting: "Connecting…", closed: "Offline" } as const
const COLOR = { open: "green", connecting: "orange", closed: "red" } as const

const AdminPushStatusWidget = () => {
  const { state, transport } = useAdminPush()
  return (
    <Container className="flex items-center justify-between px-6 py-3">
      <Text size="small" leading="compact" weight="plus">
        Live updates
      </Text>
      <StatusBadge color={COLOR[state]} title={transport ? `via ${transport.toUpperCase()}` : undefined}>
        {LABEL[state]}
      </StatusBadge>
    </Container>
  )
}

export const config = defineWidgetConfig({
  zone: "product.list.before",
})

export default AdminPushStatusWidget
