/**
 * Which record a dashboard URL shows, and whether an edit form of it is open: what the
 * presence widget reports for the tab.
 *
 * The dashboard opens every form that changes a record (edit, refund, fulfill, addresses,
 * metadata…) as a drawer or modal at a route below the record's detail page, with the detail
 * page still mounted under it (`/app/orders/order_01…/refund`). So the URL alone says it: the
 * detail page is `viewing`, anything below it is `editing`.
 */

export type PresenceState = "viewing" | "editing"

/** The detail pages that show presence: the URL segment, the record kind, the id's prefix. */
export const PRESENCE_PAGES = [
  { segment: "orders", kind: "order", prefix: "order_" },
  { segment: "draft-orders", kind: "draft_order", prefix: "order_" },
  { segment: "products", kind: "product", prefix: "prod_" },
  { segment: "customers", kind: "customer", prefix: "cus_" },
] as const

/** The ids presence accepts (the service's record shape): letters, digits, `_`, `-`, at most 64. */
const ID = /^[A-Za-z0-9_-]{1,64}$/

/**
 * The record (`order:order_01…`) and state a pathname stands for, or null when it is no record's
 * detail page (a list, `/orders/export`, another screen).
 */
export function presenceOf(pathname: string): { record: `${string}:${string}`; state: PresenceState } | null {
  const parts = pathname.split("/").filter(Boolean)
  for (let i = parts.length - 2; i >= 0; i--) {
    const page = PRESENCE_PAGES.find((p) => p.segment === parts[i])
    const id = parts[i + 1]
    if (!page || !id || !id.startsWith(page.prefix) || !ID.test(id)) continue
    return { record: `${page.kind}:${id}`, state: parts.length > i + 2 ? "editing" : "viewing" }
  }
  return null
}

/** Two letters for an avatar: the initials of a name, or of an email's local part. */
export function initials(name: string | undefined, fallback: string): string {
  const source = (name ?? "").split("@")[0]?.trim() || fallback
  const words = source.split(/[\s._-]+/).filter(Boolean)
  const letters = words.length > 1 ? `${words[0]![0]}${words[words.length - 1]![0]}` : source.slice(0, 2)
  return letters.toUpperCase()
}
