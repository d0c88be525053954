/**
 * A shop's own admin API, as the plugin's README shows it: after a change, one
 * `emitAdminEvent` line makes every open hero-banner page refetch. (Kept in
 * memory: the tests only need the route to change something and say so.)
 */
import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"
import { emitAdminEvent } from "@admin-push/medusa"

interface HeroBanner {
  id: string
  title: string
}

const banners: HeroBanner[] = []

export async function GET(_req: MedusaRequest, res: MedusaResponse) {
  res.json({ hero_banners: banners })
}

export async function POST(req: MedusaRequest<{ title?: unknown }>, res: MedusaResponse) {
  if (typeof req.body.title !== "string" || req.body.title === "") {
    res.status(400).json({ message: "title: a non-empty string is required" })
    return
  }
  const banner = { id: `hb_${banners.length + 1}`, title: req.body.title }
  banners.push(banner)
  await emitAdminEvent(req.scope, "banner.updated", { id: banner.id, action: "created" })
  res.status(201).json({ hero_banner: banner })
}
