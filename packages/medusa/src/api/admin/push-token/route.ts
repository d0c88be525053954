/**
 * GET /admin/push-token → { token, expires_in, url, transports }
 *
 * Medusa protects every /admin/* route (session, bearer or API key), so only a
 * logged-in admin reaches this handler. The token is short-lived: the browser
 * client asks for a fresh one before every (re)connect and when the service
 * says `auth_expired`. `url` is where the browser reaches the service, and
 * `transports` which ways it tries, so the prebuilt admin extension needs no
 * build-time configuration.
 *
 * The token also carries the admin's display name (first and last name, or the
 * email), looked up here in Medusa's user module: it is what other admins see
 * on a record both have open, and the service shows no name but a signed one.
 */
import type { AuthenticatedMedusaRequest, MedusaResponse } from "@medusajs/framework/http"
import type { IUserModuleService } from "@medusajs/framework/types"
import { Modules } from "@medusajs/framework/utils"
import { adminDisplayName } from "../../../lib/token"
import { ADMIN_PUSH_MODULE } from "../../../modules/admin-push"
import type AdminPushModuleService from "../../../modules/admin-push/service"

/** The admin's display name, or null when the user cannot be read (the token is still useful). */
async function displayNameOf(req: AuthenticatedMedusaRequest, actorId: string): Promise<string | null> {
  try {
    const users = req.scope.resolve<IUserModuleService>(Modules.USER)
    const user = await users.retrieveUser(actorId, { select: ["id", "first_name", "last_name", "email"] })
    return adminDisplayName(user)
  } catch {
    return null
  }
}

export async function GET(req: AuthenticatedMedusaRequest, res: MedusaResponse) {
  const { actor_id: actorId, actor_type: actorType } = req.auth_context

  // Secret API keys also pass /admin auth; the push service accepts admin
  // users only, so do not mint a token it would reject anyway.
  if (actorType !== "user") {
    res.status(403).json({ message: "admin-push tokens are issued to admin users only" })
    return
  }

  const name = await displayNameOf(req, actorId)
  const grant = req.scope.resolve<AdminPushModuleService>(ADMIN_PUSH_MODULE).grantBrowser(actorId, name)
  // A bearer credential: keep it out of browser and proxy caches.
  res.setHeader("Cache-Control", "no-store")
  res.json(grant)
}
