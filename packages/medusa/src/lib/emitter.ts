/**
 * Publishes events to the admin-push service (`POST /internal/emit`).
 *
 * Used by the plugin's module service, which the subscribers, the shop's own
 * routes and `emitAdminEvent` all go through. It must never break the
 * caller: a push is a hint for open dashboards ("refetch this"), the source of
 * truth is the database. So every failure ends as `{ ok: false, error }` plus
 * one log line, never as a thrown error inside a workflow or a request.
 */
import { randomUUID } from "node:crypto"
import type { PushEventName } from "./events"

/** Built-in event names of the service (docs/protocol.md); `events.extra` may add more. */
export type AdminPushEventName = PushEventName | (string & {})

export type EmitResult = { ok: true; id: string } | { ok: false; error: string }

/** The subset of Medusa's logger (and of `console`) this module uses. */
export interface AdminPushLogger {
  error(message: string): void
  warn?(message: string): void
}

export interface AdminPushEmitterOptions {
  /** Service origin, e.g. `http://127.0.0.1:8080` (no trailing `/internal/emit`). */
  url: string
  /** One of the service's `internal.secrets`. */
  secret: string | undefined
  /** Per-attempt timeout. Default 2000 ms. */
  timeoutMs?: number
  /** Retries after the first attempt. Default 3. */
  retries?: number
  /** Default logger for calls that do not pass one. Default `console`. */
  logger?: AdminPushLogger
  /** Injected for tests; default the global `fetch`. */
  fetch?: typeof fetch
  /** First backoff step; doubles per retry. Default 100 ms. */
  backoffBaseMs?: number
  /** Upper bound of any single wait, including a server's `Retry-After`. Default 5000 ms. */
  maxDelayMs?: number
}

export interface EmitOptions {
  logger?: AdminPushLogger
  /**
   * Defaults to a fresh UUID per call. Pass a stable key (e.g. derived from
   * the Medusa event) to also de-duplicate re-deliveries of the same event.
   */
  idempotencyKey?: string
}

export type AdminPushEmitter = (
  event: AdminPushEventName,
  data: Record<string, unknown>,
  opts?: EmitOptions
) => Promise<EmitResult>

/** Thrown internally for answers worth another attempt; never escapes `emit`. */
class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number
  ) {
    super(message)
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** `Retry-After` is either delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * 5xx, 408 and 429 are transient. Retrying them is safe because every attempt
 * of one call carries the same Idempotency-Key: the service answers a repeat
 * with the first answer and broadcasts nothing twice.
 */
function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

export function createAdminPushEmitter(options: AdminPushEmitterOptions): AdminPushEmitter {
  const endpoint = `${options.url.replace(/\/+$/, "")}/internal/emit`
  const timeoutMs = options.timeoutMs ?? 2000
  const retries = Math.max(0, options.retries ?? 3)
  const baseMs = options.backoffBaseMs ?? 100
  const maxDelayMs = options.maxDelayMs ?? 5000
  const defaultLogger = options.logger ?? console
  const doFetch = options.fetch ?? fetch

  async function attempt(body: string, idempotencyKey: string): Promise<string> {
    let res: Response
    try {
      res = await doFetch(endpoint, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${options.secret}`,
          "Content-Type": "application/json",
          "Idempotency-Key": idempotencyKey,
        },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      // Connection refused/reset, DNS, or our own timeout (TimeoutError).
      const e = err as Error
      const why = e.name === "TimeoutError" ? `timed out after ${timeoutMs} ms` : describe(e)
      throw new RetryableError(why)
    }

    // Always consume the body so the keep-alive socket is released.
    const text = await res.text().catch(() => "")
    if (res.ok) {
      try {
        const parsed = JSON.parse(text) as { id?: unknown }
        return typeof parsed.id === "string" ? parsed.id : ""
      } catch {
        return "" // accepted; an unexpected body is no reason to re-send
      }
    }
    const message = `HTTP ${res.status}${text ? `: ${text.slice(0, 300)}` : ""}`
    if (isRetryableStatus(res.status)) {
      throw new RetryableError(message, parseRetryAfter(res.headers.get("retry-after")))
    }
    throw new Error(message) // 400/401/413/415/422: a bug or misconfiguration, retrying won't help
  }

  return async function emit(event, data, opts = {}) {
    const logger = opts.logger ?? defaultLogger
    if (!options.secret) {
      const error = "admin-push: no emit secret configured, event not sent"
      logger.error(`${error}: ${event}`)
      return { ok: false, error }
    }

    const idempotencyKey = opts.idempotencyKey ?? randomUUID()
    let body: string
    try {
      body = JSON.stringify({ event, data })
    } catch (err) {
      const error = `cannot serialize data: ${describe(err)}`
      logger.error(`admin-push: ${event} not sent: ${error}`)
      return { ok: false, error }
    }

    for (let n = 0; ; n++) {
      try {
        return { ok: true, id: await attempt(body, idempotencyKey) }
      } catch (err) {
        const error = describe(err)
        if (!(err instanceof RetryableError) || n >= retries) {
          logger.error(
            `admin-push: ${event} not delivered after ${n + 1} attempt(s): ${error}`
          )
          return { ok: false, error }
        }
        // Exponential backoff with "equal jitter": half fixed, half random, so
        // many Medusa workers retrying at once do not hit the service in lockstep.
        const exp = Math.min(maxDelayMs, baseMs * 2 ** n)
        const backoff = exp / 2 + Math.random() * (exp / 2)
        const delay = Math.min(maxDelayMs, err.retryAfterMs ?? backoff)
        logger.warn?.(`admin-push: ${event} attempt ${n + 1} failed (${error}), retrying in ${Math.round(delay)} ms`)
        await sleep(delay)
      }
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    // undici puts the useful part (ECONNREFUSED …) in `cause`.
    const cause = (err as Error & { cause?: unknown }).cause
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message
  }
  return String(err)
}
