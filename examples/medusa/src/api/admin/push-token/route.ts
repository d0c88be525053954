/**
 * GET /admin/push-token → { token, expires_in }
 *
 * Medusa protects every /admin/* route (session, bearer or API key), so only a
 * logged-in admin reaches this handler. The token is short-lived: the browser
 * client asks for a fresh one before every (re)connect and when the service
 * says `auth_expired`, so a long TTL would buy nothing.
 */
import type { AuthenticatedMedusaRequest, MedusaResponse } from "@medusajs/framework/http"
import { signAdminPushToken } from "../../../lib/admin-push-token"

export async function GET(req: AuthenticatedMedusaRequest, res: MedusaResponse) {
  const { actor_id: actorId, actor_type: actorType } = req.auth_context

  // Secret API keys also pass /admin auth; the push service accepts admin
  // users only, so do not mint a token it would reject anyway.
  if (actorType !== "user") {
    res.status(403).json({ message: "admin-push tokens are issued to admin users only" })
    return
  }

  const secret = process.env.ADMIN_PUSH_JWT_SECRET
  if (!secret || Buffer.byteLength(secret) < 32) {
    res.status(500).json({ message: "ADMIN_PUSH_JWT_SECRET is not set (or shorter than 32 bytes)" })
    return
  }

  const ttlSeconds = Math.floor(Number(process.env.ADMIN_PUSH_TOKEN_TTL_SECONDS)) || 300
  // ADMIN_PUSH_JWT_AUDIENCE="" omits `aud`, for a service without `auth.audience`.
  const audience = process.env.ADMIN_PUSH_JWT_AUDIENCE ?? "admin-push"
  const { token, expiresIn } = signAdminPushToken({ actorId, secret, ttlSeconds, audience: audience || null })

  // A bearer credential: keep it out of browser and proxy caches.
  res.setHeader("Cache-Control", "no-store")
  res.json({ token, expires_in: expiresIn })
}
