import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { parseOptions } from "../src/modules/admin-push/options"
import AdminPushModuleService from "../src/modules/admin-push/service"
import { memoryLogger } from "./helpers"

const SECRETS = { emitSecret: "emit-secret", tokenSecret: "t".repeat(32) }

describe("plugin options", () => {
  it("fills defaults around the two secrets", () => {
    assert.deepEqual(parseOptions(SECRETS, {}), {
      serviceUrl: "http://127.0.0.1:8080",
      publicUrl: "http://127.0.0.1:8080",
      emitSecret: "emit-secret",
      tokenSecret: "t".repeat(32),
      audience: "admin-push",
      tokenTtlSeconds: 300,
      emitTimeoutMs: 2000,
      emitRetries: 3,
      transports: ["ws", "sse"],
    })
  })

  it("takes what medusa-config leaves out from the environment, options first", () => {
    const env = {
      ADMIN_PUSH_URL: "http://push.internal:9090/",
      ADMIN_PUSH_PUBLIC_URL: "https://push.example.com/live/",
      ADMIN_PUSH_SECRET: "from-env",
      ADMIN_PUSH_JWT_SECRET: "e".repeat(40),
      ADMIN_PUSH_JWT_AUDIENCE: "",
      ADMIN_PUSH_TOKEN_TTL_SECONDS: "120",
    }
    const settings = parseOptions({ emitSecret: "from-config", serviceUrl: undefined }, env)
    assert.equal(settings.emitSecret, "from-config")
    assert.equal(settings.tokenSecret, "e".repeat(40))
    assert.equal(settings.serviceUrl, "http://push.internal:9090", "no trailing slash")
    assert.equal(settings.publicUrl, "https://push.example.com/live", "a path prefix is kept")
    assert.equal(settings.audience, null, "an empty audience omits aud")
    assert.equal(settings.tokenTtlSeconds, 120)
  })

  it("refuses at start with the option's name and its variable", () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ tokenSecret: SECRETS.tokenSecret }, /option "emitSecret" \(env ADMIN_PUSH_SECRET\): is required/],
      [{ ...SECRETS, tokenSecret: "short" }, /option "tokenSecret" \(env ADMIN_PUSH_JWT_SECRET\): must be at least 32 bytes/],
      [{ ...SECRETS, serviceUrl: "ftp://127.0.0.1:8080" }, /option "serviceUrl" .*must be http:\/\/ or https:\/\//],
      [{ ...SECRETS, publicUrl: "not a url" }, /option "publicUrl" .*is not a URL/],
      [{ ...SECRETS, publicUrl: "https://push.example.com/?token=x" }, /option "publicUrl" .*query/],
      [{ ...SECRETS, tokenTtlSeconds: 0 }, /option "tokenTtlSeconds" .*integer from 10 to 86400/],
      [{ ...SECRETS, emitRetries: "many" }, /option "emitRetries" .*integer from 0 to 10/],
      [{ ...SECRETS, audience: 7 }, /option "audience" .*must be a string/],
      [{ ...SECRETS, transports: [] }, /option "transports" \(env ADMIN_PUSH_TRANSPORTS\): must list "ws" and\/or "sse"/],
      [{ ...SECRETS, transports: ["websocket"] }, /option "transports" .*got \["websocket"\]/],
      [{ ...SECRETS, transports: ["sse", "sse"] }, /option "transports" .*once each/],
      [{ ...SECRETS, transports: "sse;ws" }, /option "transports" .*got "sse;ws"/],
      [{ ...SECRETS, transports: 1 }, /option "transports"/],
    ]
    for (const [options, message] of cases) assert.throws(() => parseOptions(options, {}), message)
  })

  it("takes the transports tabs try, in order, from the option or a comma-separated variable", () => {
    assert.deepEqual(parseOptions({ ...SECRETS, transports: ["sse"] }, {}).transports, ["sse"])
    assert.deepEqual(parseOptions(SECRETS, { ADMIN_PUSH_TRANSPORTS: " sse , ws " }).transports, ["sse", "ws"])
    assert.deepEqual(parseOptions({ ...SECRETS, transports: ["ws"] }, { ADMIN_PUSH_TRANSPORTS: "sse" }).transports, ["ws"],
      "the option wins over its variable")
  })

  it("hands the transports to admin tabs with the token and the URL", () => {
    const service = (transports?: string[]) =>
      new AdminPushModuleService({ logger: memoryLogger() as never }, { ...SECRETS, publicUrl: "https://push.example.com", transports } as never)
    assert.deepEqual(service(["sse"]).grantBrowser("user_01", "Ann").transports, ["sse"])
    assert.deepEqual(service().grantBrowser("user_01", "Ann").transports, ["ws", "sse"])
    assert.equal(service().grantBrowser("user_01", "Ann").url, "https://push.example.com")
  })
})
