/**
 * GET /admin/push-token → { token, expires_in, url }
 *
 * Medusa protects every /admin/* route (session, bearer or API key), so only a
 * logged-in admin reaches this handler. The token is short-lived: the browser
 * client asks for a fresh one before every (re)connect and when the service
 * says `auth_expired`. `url` is where the browser reaches the service, so the
 * prebuilt admin extension needs no build-time configuration.
 */
import type { AuthenticatedMedusaRequest, MedusaResponse } from "@medusajs/framework/http"
import { ADMIN_PUSH_MODULE } from "../../../modules/admin-push"
import type AdminPushModuleService from "../../../modules/admin-push/service"

export async function GET(req: AuthenticatedMedusaRequest, res: MedusaResponse) {
  const { actor_id: actorId, actor_type: actorType } = req.auth_context

  // Secret API keys also pass /admin auth; the push service accepts admin
  // users only, so do not mint a token it would reject anyway.
  if (actorType !== "user") {
    res.status(403).json({ message: "admin-push tokens are issued to admin users only" })
    return
  }

  const grant = req.scope.resolve<AdminPushModuleService>(ADMIN_PUSH_MODULE).grantBrowser(actorId)
  // A bearer credential: keep it out of browser and proxy caches.
  res.setHeader("Cache-Control", "no-store")
  res.json(grant)
}
