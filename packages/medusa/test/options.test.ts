import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { parseOptions } from "../src/modules/admin-push/options"

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
    ]
    for (const [options, message] of cases) assert.throws(() => parseOptions(options, {}), message)
  })
})
