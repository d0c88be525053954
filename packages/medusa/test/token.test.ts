import assert from "node:assert/strict"
import { createHmac, timingSafeEqual } from "node:crypto"
import { describe, it } from "node:test"
import { adminDisplayName, signAdminPushToken } from "../src/lib/token"
import { JWT_SECRET } from "./helpers"

/** An independent HS256 check, written from RFC 7519 rather than from the signer. */
function verifyHs256(token: string, secret: string) {
  const parts = token.split(".")
  assert.equal(parts.length, 3, "three dot-separated parts")
  const [h = "", p = "", s = ""] = parts
  for (const part of parts) assert.match(part, /^[A-Za-z0-9_-]+$/, "base64url without padding")
  const expected = createHmac("sha256", secret).update(`${h}.${p}`).digest()
  const actual = Buffer.from(s, "base64url")
  assert.ok(actual.length === expected.length && timingSafeEqual(actual, expected), "signature verifies")
  return {
    header: JSON.parse(Buffer.from(h, "base64url").toString()),
    claims: JSON.parse(Buffer.from(p, "base64url").toString()),
  }
}

describe("signAdminPushToken", () => {
  it("produces an HS256 JWT with the push claims", () => {
    const { token, expiresIn } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET, now: 1_700_000_000 })
    const { header, claims } = verifyHs256(token, JWT_SECRET)
    assert.deepEqual(header, { alg: "HS256", typ: "JWT" })
    assert.deepEqual(claims, {
      actor_id: "user_01",
      actor_type: "user",
      aud: "admin-push",
      iat: 1_700_000_000,
      exp: 1_700_000_300,
    })
    assert.equal(expiresIn, 300)
  })

  it("honours ttlSeconds and defaults `now` to the clock", () => {
    const before = Math.floor(Date.now() / 1000)
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET, ttlSeconds: 60 })
    const { claims } = verifyHs256(token, JWT_SECRET)
    assert.ok(claims.iat >= before && claims.iat <= before + 2)
    assert.equal(claims.exp - claims.iat, 60)
  })

  it("can omit aud for a service without auth.audience", () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET, audience: null })
    assert.equal("aud" in verifyHs256(token, JWT_SECRET).claims, false)
  })

  it("does not verify with another secret", () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET })
    assert.throws(() => verifyHs256(token, `${JWT_SECRET}x`), /signature verifies/)
  })

  it("refuses weak secrets, empty actors and bad TTLs", () => {
    assert.throws(() => signAdminPushToken({ actorId: "user_01", secret: "short" }), /32 bytes/)
    assert.throws(() => signAdminPushToken({ actorId: "", secret: JWT_SECRET }), /actorId/)
    assert.throws(() => signAdminPushToken({ actorId: "u", secret: JWT_SECRET, ttlSeconds: 0 }), /ttlSeconds/)
  })

  it("carries the admin's display name when given one", () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET, name: "  Anna Berg " })
    assert.equal(verifyHs256(token, JWT_SECRET).claims.name, "Anna Berg")
    for (const name of [undefined, null, "", "   "]) {
      const { token: unnamed } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET, name })
      assert.equal("name" in verifyHs256(unnamed, JWT_SECRET).claims, false)
    }
  })
})

describe("adminDisplayName", () => {
  it("is first and last name, trimmed, else the email", () => {
    assert.equal(adminDisplayName({ first_name: " Anna ", last_name: "Berg ", email: "anna@example.com" }), "Anna Berg")
    assert.equal(adminDisplayName({ first_name: "Anna", last_name: null, email: "anna@example.com" }), "Anna")
    assert.equal(adminDisplayName({ first_name: "", last_name: "Berg", email: "anna@example.com" }), "Berg")
    assert.equal(adminDisplayName({ first_name: null, last_name: " ", email: " anna@example.com " }), "anna@example.com")
    assert.equal(adminDisplayName({ first_name: null, last_name: null, email: null }), null)
    assert.equal(adminDisplayName(null), null)
  })
})
