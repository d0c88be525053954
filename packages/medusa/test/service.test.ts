/**
 * The plugin's emitter and tokens against the REAL admin-push binary (ADMIN_PUSH_BIN), per the wire
 * contract: emit → SSE delivery, retry through a flaky proxy, token checks.
 */
import assert from "node:assert/strict"
import { createHmac } from "node:crypto"
import { after, before, describe, it } from "node:test"
import { createAdminPushEmitter } from "../src/lib/emitter"
import { MEDUSA_EVENTS, PUSH_EVENTS, planPush } from "../src/lib/events"
import { signAdminPushToken } from "../src/lib/token"
import { INTERNAL_SECRET, JWT_SECRET, memoryLogger, openSse, serviceBinary, startService, startStub, type RunningService } from "./helpers"

const { bin, skip, mustFail } = serviceBinary()

/** A token shaped like the ones Medusa's /auth routes issue (no `aud`). */
function medusaStyleToken(secret: string, claims: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000)
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url")
  const payload = {
    actor_id: "user_01MEDUSA",
    actor_type: "user",
    auth_identity_id: "authid_01",
    app_metadata: { user_id: "user_01MEDUSA" },
    iat: now,
    exp: now + 86_400,
    ...claims,
  }
  const input = `${enc({ alg: "HS256", typ: "JWT" })}.${enc(payload)}`
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`
}

async function postTicket(url: string, token: string) {
  const res = await fetch(`${url}/admin-ws/ticket`, { method: "POST", headers: { Authorization: `Bearer ${token}` } })
  const text = await res.text()
  return { status: res.status, wwwAuthenticate: res.headers.get("www-authenticate"), body: text ? JSON.parse(text) : undefined }
}

if (mustFail) {
  it("ADMIN_PUSH_BIN must be set when CI is set", () => {
    assert.fail("CI is set but ADMIN_PUSH_BIN is not: the integration tests cannot run")
  })
}

describe("against the real service (auth.audience = admin-push)", { skip }, () => {
  let service: RunningService

  before(async () => {
    service = await startService(bin!)
  })
  after(async () => {
    await service?.stop()
  })

  it("an emitted event reaches an SSE subscriber with the returned id", async () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET })
    const sse = await openSse(`${service.url}/admin-sse`, { Authorization: `Bearer ${token}` })
    try {
      assert.match(sse.response.headers.get("content-type") ?? "", /^text\/event-stream/)
      const ready = await sse.until((e) => e.event === "ready")
      assert.equal(JSON.parse(ready.data).transport, "sse")

      const emit = createAdminPushEmitter({ url: service.url, secret: INTERNAL_SECRET, logger: memoryLogger() })
      const result = await emit("product.updated", { id: "prod_1" })
      assert.equal(result.ok, true, `emit failed: ${JSON.stringify(result)}`)
      const id = result.ok ? result.id : ""
      assert.ok(id, "202 body carries an id")

      const got = await sse.until((e) => e.event === "product.updated")
      assert.equal(got.id, id, "the SSE record's id is the one emit returned")
      assert.deepEqual(JSON.parse(got.data), { id: "prod_1" })
    } finally {
      sse.close()
    }
  })

  it("every plugin payload shape is accepted (banner, order with status)", async () => {
    const emit = createAdminPushEmitter({ url: service.url, secret: INTERNAL_SECRET, retries: 0, logger: memoryLogger() })
    for (const [event, data] of [
      ["banner.updated", { id: "hb_1", action: "updated" }],
      ["banner.updated", { action: "reordered", ids: ["hb_2", "hb_1"] }],
      ["order.updated", { id: "order_1", status: "canceled" }],
      ["order.updated", { id: "order_1" }],
    ] as const) {
      const result = await emit(event, data)
      assert.equal(result.ok, true, `${event} ${JSON.stringify(data)}: ${JSON.stringify(result)}`)
    }
  })

  it("every message the subscriber can publish is one the service's catalog accepts", async () => {
    const emit = createAdminPushEmitter({ url: service.url, secret: INTERNAL_SECRET, retries: 0, logger: memoryLogger() })
    for (const name of MEDUSA_EVENTS) {
      const planned = planPush(name, { id: "rec_1", order_id: "order_1" })
      assert.ok(planned, name)
      const message = "lookup" in planned ? planned.then("parent_1") : planned.message
      const result = await emit(message.event, message.data)
      assert.equal(result.ok, true, `${name} → ${message.event} ${JSON.stringify(message.data)}: ${JSON.stringify(result)}`)
    }
  })

  it("every built-in name the plugin knows is one the service knows (the events filter refuses unknown names)", async () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET })
    const sse = await openSse(`${service.url}/admin-sse?events=${PUSH_EVENTS.join(",")}`, { Authorization: `Bearer ${token}` })
    try {
      assert.equal(sse.response.status, 200)
    } finally {
      sse.close()
    }
  })

  it("invalid data is a 422 and is not retried", async () => {
    const logger = memoryLogger()
    const emit = createAdminPushEmitter({ url: service.url, secret: INTERNAL_SECRET, logger })
    const result = await emit("product.updated", { id: "prod_1", title: "not allowed" })
    assert.equal(result.ok, false)
    assert.match(!result.ok ? result.error : "", /^HTTP 422/)
    assert.equal(logger.warnings.length, 0, "no retry")
  })

  it("a wrong internal secret is a 401 and is not retried", async () => {
    const logger = memoryLogger()
    const emit = createAdminPushEmitter({ url: service.url, secret: "wrong-secret-wrong-secret-wrong-secret", logger })
    const result = await emit("product.updated", { id: "prod_1" })
    assert.match(!result.ok ? result.error : "", /^HTTP 401/)
    assert.equal(logger.warnings.length, 0)
  })

  it("retries through a proxy that answers 503 twice, with one Idempotency-Key the service de-duplicates", async () => {
    const proxy = await startStub(async (req, n, res) => {
      if (n <= 2) {
        res.writeHead(503, { "Retry-After": "0" }).end()
        return
      }
      const upstream = await fetch(`${service.url}${req.url}`, {
        method: req.method,
        headers: {
          authorization: String(req.headers.authorization),
          "content-type": String(req.headers["content-type"]),
          "idempotency-key": String(req.headers["idempotency-key"]),
        },
        body: req.body,
      })
      res.writeHead(upstream.status, { "Content-Type": upstream.headers.get("content-type") ?? "application/json" })
      res.end(await upstream.text())
    })
    try {
      const emit = createAdminPushEmitter({ url: proxy.url, secret: INTERNAL_SECRET, logger: memoryLogger() })
      const first = await emit("product.updated", { id: "prod_2" })
      assert.equal(first.ok, true, JSON.stringify(first))
      assert.equal(proxy.requests.length, 3)
      const key = String(proxy.requests[0]?.headers["idempotency-key"])
      assert.ok(proxy.requests.every((r) => r.headers["idempotency-key"] === key))

      // The same key straight to the service: the first answer again, no new event.
      const direct = createAdminPushEmitter({ url: service.url, secret: INTERNAL_SECRET, logger: memoryLogger() })
      const again = await direct("product.updated", { id: "prod_2" }, { idempotencyKey: key })
      assert.deepEqual(again, first)
    } finally {
      await proxy.close()
    }
  })

  it("accepts a signAdminPushToken token for a ticket", async () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET })
    const res = await postTicket(service.url, token)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(typeof res.body.ticket, "string")
    assert.ok(res.body.ticket.length >= 22, "≥128 bits")
    assert.equal(typeof res.body.expires_in, "number")
  })

  it("rejects a token for another audience with 401", async () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET, audience: "someone-else" })
    assert.equal((await postTicket(service.url, token)).status, 401)
  })

  // Contract: aud is "checked when set". A token WITHOUT aud must not pass a
  // service that requires one, or the audience protects nothing.
  it("rejects a Medusa-issued style token (no aud) with 401", async () => {
    const res = await postTicket(service.url, medusaStyleToken(JWT_SECRET))
    assert.equal(res.status, 401)
    assert.match(res.wwwAuthenticate ?? "", /^Bearer/)
    assert.equal(res.body?.error, "unauthorized")
  })

  it("rejects a push token signed with another secret, or expired", async () => {
    const forged = signAdminPushToken({ actorId: "user_01", secret: `${JWT_SECRET}-other` }).token
    assert.equal((await postTicket(service.url, forged)).status, 401)
    const expired = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET, ttlSeconds: 60, now: Math.floor(Date.now() / 1000) - 3600 }).token
    assert.equal((await postTicket(service.url, expired)).status, 401)
  })
})

describe("against the real service without auth.audience (development set-up)", { skip }, () => {
  let service: RunningService

  before(async () => {
    service = await startService(bin!, { ADMIN_PUSH__AUTH__AUDIENCE: undefined })
  })
  after(async () => {
    await service?.stop()
  })

  it("accepts Medusa's own token shape", async () => {
    const res = await postTicket(service.url, medusaStyleToken(JWT_SECRET))
    assert.equal(res.status, 200, JSON.stringify(res.body))
  })

  it("accepts a plugin token with aud (aud is checked only when configured)", async () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET })
    const res = await postTicket(service.url, token)
    assert.equal(res.status, 200, JSON.stringify(res.body))
  })

  it("accepts a plugin token minted with audience: null", async () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET, audience: null })
    assert.equal((await postTicket(service.url, token)).status, 200)
  })
})

// The admin tab (e.g. http://localhost:9000) fetches tickets from the service's
// origin: a cross-origin POST with an Authorization header, so the browser
// sends a CORS preflight first. Contract: CORS headers for listed origins.
describe("against the real service with auth.allowed_origins (the admin's browser)", { skip }, () => {
  const ADMIN_ORIGIN = "http://localhost:9000"
  let service: RunningService

  before(async () => {
    service = await startService(bin!, { ADMIN_PUSH__AUTH__ALLOWED_ORIGINS: `["${ADMIN_ORIGIN}"]` })
  })
  after(async () => {
    await service?.stop()
  })

  it("answers the ticket preflight for the admin's origin", async () => {
    const res = await fetch(`${service.url}/admin-ws/ticket`, {
      method: "OPTIONS",
      headers: {
        Origin: ADMIN_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
      },
    })
    await res.body?.cancel()
    assert.ok(res.status >= 200 && res.status < 300, `preflight status ${res.status}`)
    assert.equal(res.headers.get("access-control-allow-origin"), ADMIN_ORIGIN)
    assert.match(res.headers.get("access-control-allow-headers") ?? "", /authorization|\*/i)
  })

  it("sends Access-Control-Allow-Origin on the ticket answer", async () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET })
    const res = await fetch(`${service.url}/admin-ws/ticket`, {
      method: "POST",
      headers: { Origin: ADMIN_ORIGIN, Authorization: `Bearer ${token}` },
    })
    await res.body?.cancel()
    assert.equal(res.status, 200)
    assert.equal(res.headers.get("access-control-allow-origin"), ADMIN_ORIGIN)
  })

  it("sends Access-Control-Allow-Origin on the SSE fallback (EventSource with a ticket)", async () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET })
    const ticketRes = await fetch(`${service.url}/admin-ws/ticket`, { method: "POST", headers: { Authorization: `Bearer ${token}` } })
    const { ticket } = (await ticketRes.json()) as { ticket: string }
    const sse = await openSse(`${service.url}/admin-sse?ticket=${encodeURIComponent(ticket)}`, { Origin: ADMIN_ORIGIN })
    try {
      assert.equal(sse.response.headers.get("access-control-allow-origin"), ADMIN_ORIGIN)
      await sse.until((e) => e.event === "ready")
    } finally {
      sse.close()
    }
  })

  it("refuses another origin with 403", async () => {
    const { token } = signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET })
    const res = await fetch(`${service.url}/admin-ws/ticket`, {
      method: "POST",
      headers: { Origin: "https://evil.example", Authorization: `Bearer ${token}` },
    })
    await res.body?.cancel()
    assert.equal(res.status, 403)
  })
})
