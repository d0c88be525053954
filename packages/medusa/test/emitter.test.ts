import assert from "node:assert/strict"
import { after, describe, it } from "node:test"
import { createAdminPushEmitter, parseRetryAfter } from "../src/lib/emitter"
import { INTERNAL_SECRET, freePort, memoryLogger, startStub } from "./helpers"

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe("createAdminPushEmitter against a local stub", () => {
  const stubs: Array<{ close(): Promise<void> }> = []
  after(() => Promise.all(stubs.map((s) => s.close())))

  it("sends the contract's request and resolves the 202 id", async () => {
    const stub = await startStub((_req, _n, res) => {
      res.writeHead(202, { "Content-Type": "application/json" }).end(JSON.stringify({ id: "evt-1" }))
    })
    stubs.push(stub)
    const emit = createAdminPushEmitter({ url: `${stub.url}/`, secret: INTERNAL_SECRET, logger: memoryLogger() })
    assert.deepEqual(await emit("product.updated", { id: "prod_1" }), { ok: true, id: "evt-1" })

    const [req] = stub.requests
    assert.equal(req?.method, "POST")
    assert.equal(req?.url, "/internal/emit", "one slash even with a trailing slash in url")
    assert.equal(req?.headers.authorization, `Bearer ${INTERNAL_SECRET}`)
    assert.equal(req?.headers["content-type"], "application/json")
    assert.match(String(req?.headers["idempotency-key"]), UUID)
    assert.deepEqual(JSON.parse(req?.body ?? ""), { event: "product.updated", data: { id: "prod_1" } })
  })

  it("retries 503 with the same Idempotency-Key, honouring Retry-After", async () => {
    const stub = await startStub((_req, n, res) => {
      if (n <= 2) res.writeHead(503, { "Retry-After": "0" }).end(JSON.stringify({ error: "unavailable" }))
      else res.writeHead(202, { "Content-Type": "application/json" }).end(JSON.stringify({ id: "evt-3" }))
    })
    stubs.push(stub)
    const logger = memoryLogger()
    const emit = createAdminPushEmitter({ url: stub.url, secret: INTERNAL_SECRET, logger })
    const started = Date.now()
    assert.deepEqual(await emit("order.updated", { id: "order_1" }), { ok: true, id: "evt-3" })
    assert.ok(Date.now() - started < 1000, "Retry-After: 0 means no backoff wait")

    assert.equal(stub.requests.length, 3)
    const keys = new Set(stub.requests.map((r) => r.headers["idempotency-key"]))
    assert.equal(keys.size, 1, "one Idempotency-Key for all attempts of one call")
    assert.match(String([...keys][0]), UUID)
    assert.equal(logger.warnings.length, 2)
    assert.equal(logger.errors.length, 0)
  })

  it("uses a new key per call and accepts a caller-supplied one", async () => {
    const stub = await startStub((_req, _n, res) => res.writeHead(202).end('{"id":"x"}'))
    stubs.push(stub)
    const emit = createAdminPushEmitter({ url: stub.url, secret: INTERNAL_SECRET })
    await emit("product.updated", { id: "a" })
    await emit("product.updated", { id: "a" })
    await emit("product.updated", { id: "a" }, { idempotencyKey: "medusa-evt-42" })
    const keys = stub.requests.map((r) => r.headers["idempotency-key"])
    assert.notEqual(keys[0], keys[1])
    assert.equal(keys[2], "medusa-evt-42")
  })

  it("caps a long Retry-After and gives up after `retries`", async () => {
    const stub = await startStub((_req, _n, res) => res.writeHead(503, { "Retry-After": "3600" }).end())
    stubs.push(stub)
    const logger = memoryLogger()
    const emit = createAdminPushEmitter({ url: stub.url, secret: INTERNAL_SECRET, retries: 2, maxDelayMs: 20, logger })
    const started = Date.now()
    const result = await emit("product.updated", { id: "prod_1" })
    assert.ok(Date.now() - started < 1000, "waits are capped by maxDelayMs")
    assert.equal(result.ok, false)
    assert.match(!result.ok ? result.error : "", /HTTP 503/)
    assert.equal(stub.requests.length, 3, "1 attempt + 2 retries")
    assert.equal(logger.errors.length, 1, "one log line for the final failure")
    assert.match(logger.errors[0] ?? "", /product\.updated not delivered after 3 attempt/)
  })

  it("retries 429 but not other 4xx", async () => {
    let status = 429
    const stub = await startStub((_req, n, res) => {
      if (status === 429 && n === 1) res.writeHead(429, { "Retry-After": "0" }).end()
      else if (status === 429) res.writeHead(202).end('{"id":"after-429"}')
      else res.writeHead(status, { "Content-Type": "application/json" }).end('{"error":"invalid","message":"data.id: required"}')
    })
    stubs.push(stub)
    const emit = createAdminPushEmitter({ url: stub.url, secret: INTERNAL_SECRET, logger: memoryLogger() })
    assert.deepEqual(await emit("product.updated", { id: "p" }), { ok: true, id: "after-429" })
    assert.equal(stub.requests.length, 2)

    for (const s of [400, 401, 413, 415, 422]) {
      status = s
      const sent: number = stub.requests.length
      const result = await emit("product.updated", {})
      assert.equal(result.ok, false)
      assert.match(!result.ok ? result.error : "", new RegExp(`HTTP ${s}: .*data\\.id`), "the error keeps the service's message")
      assert.equal(stub.requests.length - sent, 1, `${s} is not retried`)
    }
  })

  it("times out a hanging service per attempt and resolves ok:false", async () => {
    const stub = await startStub(() => {
      /* never answer */
    })
    stubs.push(stub)
    const logger = memoryLogger()
    const emit = createAdminPushEmitter({ url: stub.url, secret: INTERNAL_SECRET, timeoutMs: 100, retries: 1, backoffBaseMs: 1, logger })
    const result = await emit("product.updated", { id: "prod_1" })
    assert.deepEqual(result, { ok: false, error: "timed out after 100 ms" })
    assert.equal(stub.requests.length, 2)
    const keys = new Set(stub.requests.map((r) => r.headers["idempotency-key"]))
    assert.equal(keys.size, 1)
  })
})

describe("never throws into the caller", () => {
  it("unreachable URL → ok:false after retries", async () => {
    const port = await freePort() // nothing listens there
    const logger = memoryLogger()
    const emit = createAdminPushEmitter({ url: `http://127.0.0.1:${port}`, secret: INTERNAL_SECRET, backoffBaseMs: 1, logger })
    const result = await emit("banner.updated", { id: "hb_1", action: "updated" })
    assert.equal(result.ok, false)
    assert.match(!result.ok ? result.error : "", /ECONNREFUSED|fetch failed/)
    assert.equal(logger.warnings.length, 3, "3 retries by default")
    assert.equal(logger.errors.length, 1)
  })

  it("a throwing fetch implementation → ok:false", async () => {
    const emit = createAdminPushEmitter({
      url: "http://example.invalid",
      secret: INTERNAL_SECRET,
      retries: 0,
      logger: memoryLogger(),
      fetch: async () => {
        throw new TypeError("boom")
      },
    })
    assert.deepEqual(await emit("product.updated", { id: "p" }), { ok: false, error: "boom" })
  })

  it("unserializable data → ok:false", async () => {
    const emit = createAdminPushEmitter({ url: "http://example.invalid", secret: INTERNAL_SECRET, logger: memoryLogger() })
    const result = await emit("product.updated", { id: 1n })
    assert.equal(result.ok, false)
  })
})

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    assert.equal(parseRetryAfter("2"), 2000)
    assert.equal(parseRetryAfter(null), undefined)
    assert.equal(parseRetryAfter("soon"), undefined)
    const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT")
    assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:03 GMT", now), 3000)
  })
})
