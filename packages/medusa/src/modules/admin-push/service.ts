/**
 * The plugin's one service: publish events to admin-push and mint the tokens
 * admin tabs present to it, with the settings parsed from the plugin options.
 *
 * Subscribers, the token route and the shop's own code resolve it from the
 * container, so the secrets live in exactly one object on the server and never
 * reach the browser (the token route hands out a short-lived token and the
 * public URL, nothing else).
 */
import type { Logger } from "@medusajs/framework/types"
import { createAdminPushEmitter, type AdminPushEmitter, type AdminPushEventName, type EmitOptions, type EmitResult } from "../../lib/emitter"
import { signAdminPushToken } from "../../lib/token"
import { parseOptions, type AdminPushPluginOptions, type AdminPushSettings, type AdminPushTransport } from "./options"

export interface AdminPushBrowserGrant {
  /** A JWT for the service's `POST /admin-ws/ticket`. */
  token: string
  expires_in: number
  /** Where the browser reaches the service. */
  url: string
  /** The transports the browser tries, in order (the `transports` option). */
  transports: AdminPushTransport[]
}

export default class AdminPushModuleService {
  readonly #settings: AdminPushSettings
  readonly #emit: AdminPushEmitter

  constructor({ logger }: { logger: Logger }, options: AdminPushPluginOptions) {
    // Already checked by the module's loader at start; parsing again here is pure and cannot fail.
    this.#settings = parseOptions(options as Record<string, unknown>)
    this.#emit = createAdminPushEmitter({
      url: this.#settings.serviceUrl,
      secret: this.#settings.emitSecret,
      timeoutMs: this.#settings.emitTimeoutMs,
      retries: this.#settings.emitRetries,
      logger,
    })
  }

  /**
   * Publishes one event. Never throws: a push is a hint for open dashboards,
   * the database stays the source of truth, so a failure is logged once and
   * resolves to `{ ok: false, error }`.
   */
  emit(event: AdminPushEventName, data: Record<string, unknown>, opts?: EmitOptions): Promise<EmitResult> {
    return this.#emit(event, data, opts)
  }

  /** What an admin tab needs to connect as `actorId`, shown to other admins as `name`. */
  grantBrowser(actorId: string, name?: string | null): AdminPushBrowserGrant {
    const { token, expiresIn } = signAdminPushToken({
      actorId,
      name,
      secret: this.#settings.tokenSecret,
      ttlSeconds: this.#settings.tokenTtlSeconds,
      audience: this.#settings.audience,
    })
    return { token, expires_in: expiresIn, url: this.#settings.publicUrl, transports: this.#settings.transports }
  }
}
