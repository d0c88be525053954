/**
 * Mint the short-lived JWT an admin tab presents to the admin-push service.
 *
 * Why not hand the browser Medusa's own token? The service would then need
 * Medusa's JWT_SECRET, and whoever holds that secret can mint Medusa admin
 * tokens. A dedicated secret (ADMIN_PUSH_JWT_SECRET) plus `aud: "admin-push"`
 * means a leaked push-service config grants nothing but "listen to
 * invalidation hints", and a push token cannot be replayed against Medusa.
 *
 * HS256 is a few lines with node:crypto, so no JWT dependency is needed.
 */
import { createHmac } from "node:crypto"

export const ADMIN_PUSH_AUDIENCE = "admin-push"

export interface AdminPushTokenClaims {
  actor_id: string
  actor_type: "user"
  /** The admin's display name, shown to the other admins on a record both have open. */
  name?: string
  aud?: string
  iat: number
  exp: number
}

export interface SignAdminPushTokenInput {
  actorId: string
  secret: string
  /** Default 300 (5 minutes). The browser client fetches a new one before every (re)connect. */
  ttlSeconds?: number
  /** Seconds since the epoch; injectable for tests. */
  now?: number
  /** Default "admin-push"; `null` omits `aud` (for a service configured without `auth.audience`). */
  audience?: string | null
  /** The admin's display name (see `adminDisplayName`); omitted when empty. */
  name?: string | null
}

/** The fields of a Medusa user a display name is made of. */
export interface AdminNameFields {
  first_name?: string | null
  last_name?: string | null
  email?: string | null
}

/**
 * How other admins see this one ("Anna is also on this order"): first and last name, or the
 * email when the user has neither; null when there is nothing to show. The push service only
 * ever shows the name a signed token carries, never one a browser sends.
 */
export function adminDisplayName(user: AdminNameFields | null | undefined): string | null {
  if (!user) return null
  const full = [user.first_name, user.last_name]
    .map((part) => (typeof part === "string" ? part.trim() : ""))
    .filter(Boolean)
    .join(" ")
  if (full) return full
  const email = typeof user.email === "string" ? user.email.trim() : ""
  return email || null
}

const base64url = (input: string | Buffer) => Buffer.from(input).toString("base64url")

export function signAdminPushToken(input: SignAdminPushTokenInput): {
  token: string
  expiresIn: number
  claims: AdminPushTokenClaims
} {
  const { actorId, secret } = input
  if (!actorId) throw new Error("signAdminPushToken: actorId is required")
  // RFC 7518 §3.2: an HS256 key must be at least 256 bits.
  if (!secret || Buffer.byteLength(secret) < 32) {
    throw new Error("signAdminPushToken: secret must be at least 32 bytes")
  }
  const ttl = input.ttlSeconds ?? 300
  if (!Number.isInteger(ttl) || ttl <= 0) throw new Error("signAdminPushToken: ttlSeconds must be a positive integer")

  const iat = input.now ?? Math.floor(Date.now() / 1000)
  const audience = input.audience === undefined ? ADMIN_PUSH_AUDIENCE : input.audience
  const name = input.name?.trim()
  const claims: AdminPushTokenClaims = {
    actor_id: actorId,
    actor_type: "user",
    ...(name ? { name } : {}),
    ...(audience ? { aud: audience } : {}),
    iat,
    exp: iat + ttl,
  }

  const signingInput = `${base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${base64url(JSON.stringify(claims))}`
  const signature = createHmac("sha256", secret).update(signingInput).digest("base64url")
  return { token: `${signingInput}.${signature}`, expiresIn: ttl, claims }
}
