/**
 * The plugin's options, parsed once at Medusa's start into settings the rest
 * of the plugin can trust.
 *
 * Every option can also come from an environment variable, so secrets stay out
 * of `medusa-config.ts` and out of the repository. A missing or impossible
 * value stops the start with a message naming the option and its variable: a
 * shop that misconfigures the plugin finds out at deploy time, not when an
 * admin wonders why nothing is live.
 */

export interface AdminPushPluginOptions {
  /** Where Medusa's server reaches the service (its `/internal/emit`). Env: ADMIN_PUSH_URL. */
  serviceUrl?: string
  /** Where admin browsers reach the service (WebSocket/SSE, tickets). Env: ADMIN_PUSH_PUBLIC_URL. */
  publicUrl?: string
  /** One of the service's `internal.secrets`. Env: ADMIN_PUSH_SECRET. */
  emitSecret?: string
  /** The service's `auth.jwt_secret`, at least 32 bytes. Env: ADMIN_PUSH_JWT_SECRET. */
  tokenSecret?: string
  /** `aud` of the tokens, the service's `auth.audience`; "" omits it. Env: ADMIN_PUSH_JWT_AUDIENCE. */
  audience?: string
  /** Lifetime of a browser token in seconds. Env: ADMIN_PUSH_TOKEN_TTL_SECONDS. */
  tokenTtlSeconds?: number | string
  /** Per-attempt timeout of an emit in milliseconds. Env: ADMIN_PUSH_EMIT_TIMEOUT_MS. */
  emitTimeoutMs?: number | string
  /** Retries of a failed emit. Env: ADMIN_PUSH_EMIT_RETRIES. */
  emitRetries?: number | string
  /**
   * The transports admin tabs try, in order: `["ws", "sse"]` (default), or `["sse"]` where
   * something between the browsers and the service does not pass WebSocket. Env:
   * ADMIN_PUSH_TRANSPORTS, comma-separated (`sse` or `sse,ws`).
   */
  transports?: AdminPushTransport[] | string
}

export type AdminPushTransport = "ws" | "sse"

/** What the module runs on: every value present and checked. */
export interface AdminPushSettings {
  serviceUrl: string
  publicUrl: string
  emitSecret: string
  tokenSecret: string
  audience: string | null
  tokenTtlSeconds: number
  emitTimeoutMs: number
  emitRetries: number
  transports: AdminPushTransport[]
}

export class AdminPushOptionsError extends Error {
  constructor(
    readonly option: keyof AdminPushPluginOptions,
    problem: string
  ) {
    super(`@admin-push/medusa: option "${option}" (env ${ENV[option]}): ${problem}`)
    this.name = "AdminPushOptionsError"
  }
}

const ENV: Record<keyof AdminPushPluginOptions, string> = {
  serviceUrl: "ADMIN_PUSH_URL",
  publicUrl: "ADMIN_PUSH_PUBLIC_URL",
  emitSecret: "ADMIN_PUSH_SECRET",
  tokenSecret: "ADMIN_PUSH_JWT_SECRET",
  audience: "ADMIN_PUSH_JWT_AUDIENCE",
  tokenTtlSeconds: "ADMIN_PUSH_TOKEN_TTL_SECONDS",
  emitTimeoutMs: "ADMIN_PUSH_EMIT_TIMEOUT_MS",
  emitRetries: "ADMIN_PUSH_EMIT_RETRIES",
  transports: "ADMIN_PUSH_TRANSPORTS",
}

const DEFAULT_SERVICE_URL = "http://127.0.0.1:8080"

/**
 * Options from `medusa-config.ts` win; an option left out (or `undefined`)
 * falls back to its environment variable, then to its default.
 */
export function parseOptions(
  options: Record<string, unknown> | undefined,
  env: Record<string, string | undefined> = process.env
): AdminPushSettings {
  // Unknown keys are not refused: Medusa adds its own (`database`, …) to every module's options.
  const given = options ?? {}
  const raw = (option: keyof AdminPushPluginOptions): unknown => given[option] ?? env[ENV[option]]

  const serviceUrl = url("serviceUrl", raw("serviceUrl") ?? DEFAULT_SERVICE_URL)
  return {
    serviceUrl,
    publicUrl: url("publicUrl", raw("publicUrl") ?? serviceUrl),
    emitSecret: secret("emitSecret", raw("emitSecret"), 1),
    // RFC 7518 §3.2: an HS256 key must be at least 256 bits.
    tokenSecret: secret("tokenSecret", raw("tokenSecret"), 32),
    audience: audience(raw("audience")),
    tokenTtlSeconds: integer("tokenTtlSeconds", raw("tokenTtlSeconds") ?? 300, 10, 86_400),
    emitTimeoutMs: integer("emitTimeoutMs", raw("emitTimeoutMs") ?? 2000, 50, 60_000),
    emitRetries: integer("emitRetries", raw("emitRetries") ?? 3, 0, 10),
    transports: transports(raw("transports")),
  }
}

function url(option: keyof AdminPushPluginOptions, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new AdminPushOptionsError(option, "must be a URL such as http://127.0.0.1:8080")
  }
  let parsed: URL
  try {
    parsed = new URL(value.trim())
  } catch {
    throw new AdminPushOptionsError(option, `"${value}" is not a URL`)
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new AdminPushOptionsError(option, `must be http:// or https://, not ${parsed.protocol}`)
  }
  if (parsed.search || parsed.hash || parsed.username || parsed.password) {
    throw new AdminPushOptionsError(option, "must not carry credentials, a query or a fragment")
  }
  // A path prefix is allowed (the service behind a proxy under /push); no trailing slash.
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, "")}`
}

function secret(option: keyof AdminPushPluginOptions, value: unknown, minBytes: number): string {
  if (typeof value !== "string" || value === "") {
    throw new AdminPushOptionsError(option, "is required")
  }
  if (Buffer.byteLength(value) < minBytes) {
    throw new AdminPushOptionsError(option, `must be at least ${minBytes} bytes (openssl rand -hex 32)`)
  }
  return value
}

function audience(value: unknown): string | null {
  if (value === undefined) return "admin-push"
  if (typeof value !== "string") throw new AdminPushOptionsError("audience", "must be a string")
  return value === "" ? null : value
}

function integer(option: keyof AdminPushPluginOptions, value: unknown, min: number, max: number): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new AdminPushOptionsError(option, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
  }
  return n
}

/** A non-empty list of "ws" and "sse", each at most once; a string is comma-separated. */
function transports(value: unknown): AdminPushTransport[] {
  if (value === undefined) return ["ws", "sse"]
  const list = typeof value === "string" ? value.split(",").map((t) => t.trim()) : value
  if (!Array.isArray(list) || list.length === 0 || list.length > 2 ||
    !list.every((t) => t === "ws" || t === "sse") || new Set(list).size !== list.length) {
    throw new AdminPushOptionsError(
      "transports",
      `must list "ws" and/or "sse" once each, in order of preference (e.g. ["sse"] or "sse,ws"), got ${JSON.stringify(value)}`
    )
  }
  return list as AdminPushTransport[]
}
