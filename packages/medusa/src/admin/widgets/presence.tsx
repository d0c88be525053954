/**
 * Who else has this record open: a quiet row of initials on the order, draft order, product and
 * customer detail pages, each with a tooltip (name, viewing or editing), and a warning while
 * this admin has an edit form open on a record someone else is editing too.
 *
 * The tab reports `viewing` for the record of the page, `editing` while one of the dashboard's
 * edit drawers or forms (a route below the detail page) is open; see ../lib/presence. It shows
 * nothing when nobody else is there.
 */
import { defineWidgetConfig } from "@medusajs/admin-sdk"
import { Avatar, Text, Tooltip } from "@medusajs/ui"
import type { AdminPushViewer } from "@admin-push/client"
import { useEffect, useState } from "react"
import { useLocation } from "react-router-dom"
import { useAdminPush } from "../lib/hooks"
import { live } from "../lib/live"
import { initials, presenceOf } from "../lib/presence"

/** Avatars shown before the rest are counted as "+n". */
const SHOWN = 5

function describe(viewer: AdminPushViewer): string {
  return `${viewer.name ?? "Another admin"} · ${viewer.state}`
}

const Presence = () => {
  useAdminPush() // joins the page's connection (the Live badge may not be on this screen)
  const { pathname } = useLocation()
  const here = presenceOf(pathname)
  const record = here?.record ?? null
  const state = here?.state ?? null
  const [seen, setSeen] = useState<{ record: string; others: AdminPushViewer[] } | null>(null)

  useEffect(() => {
    if (!record) return undefined
    const off = live().onPresence(record, (others) => setSeen({ record, others }))
    return () => {
      off()
      live().setPresence(record, null)
    }
  }, [record])
  useEffect(() => {
    if (record && state) live().setPresence(record, state)
  }, [record, state])

  if (!record) return null
  const known = seen?.record === record
  const others = known ? seen.others : []
  // Nobody else: nothing to see, only a marker saying whether the service has answered yet.
  if (others.length === 0) return <span hidden data-admin-push-presence={record} data-known={known ? "" : undefined} />
  const editors = others.filter((v) => v.state === "editing")
  const shown = others.slice(0, SHOWN)
  return (
    <div className="flex flex-col items-end gap-y-1" data-admin-push-presence={record} data-known="">
      <div className="flex items-center gap-x-2">
        <Text size="xsmall" className="text-ui-fg-subtle">
          Also here
        </Text>
        <div className="flex -space-x-1">
          {shown.map((viewer) => (
            <Tooltip key={viewer.actor_id} content={describe(viewer)}>
              <span data-admin-push-viewer={viewer.actor_id} data-state={viewer.state}>
                <Avatar
                  size="xsmall"
                  variant="rounded"
                  fallback={initials(viewer.name, viewer.actor_id)}
                />
              </span>
            </Tooltip>
          ))}
        </div>
        {others.length > SHOWN && (
          <Text size="xsmall" className="text-ui-fg-muted">
            +{others.length - SHOWN}
          </Text>
        )}
      </div>
      {state === "editing" && editors.length > 0 && (
        <Text size="xsmall" className="text-ui-fg-subtle" data-admin-push-editing-warning="">
          {editors.map((v) => v.name ?? "Another admin").join(", ")} {editors.length > 1 ? "are" : "is"} also
          editing this record; changes may overlap.
        </Text>
      )}
    </div>
  )
}

/** The detail pages that show presence (README: "Who else is on a record"). */
export const config = defineWidgetConfig({
  zone: ["order.details.before", "draft_order.details.before", "product.details.before", "customer.details.before"],
})

export default Presence
