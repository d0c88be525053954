/**
 * What a shop's own server code imports from the plugin: `emitAdminEvent` for
 * its own routes and workflows (the hero-banner one-liner), and the module's
 * name and types for anything more.
 */
import type { AdminPushEventName, EmitOptions, EmitResult } from "./lib/emitter"
import { ADMIN_PUSH_MODULE } from "./modules/admin-push"
import type AdminPushModuleService from "./modules/admin-push/service"

export { ADMIN_PUSH_MODULE }
export type { AdminPushModuleService, AdminPushEventName, EmitOptions, EmitResult }
export type { AdminPushPluginOptions } from "./modules/admin-push/options"

/** Anything that resolves registrations: `req.scope` in a route, `container` in a subscriber. */
export interface Scope {
  resolve<T>(key: string): T
}

/**
 * Tells every open admin tab that something changed, e.g. after a hero banner
 * was saved: `await emitAdminEvent(req.scope, "banner.updated", { id, action: "updated" })`.
 * Never throws; resolves to `{ ok: true, id }` or, after retries, `{ ok: false, error }`.
 */
export function emitAdminEvent(
  scope: Scope,
  event: AdminPushEventName,
  data: Record<string, unknown>,
  opts?: EmitOptions
): Promise<EmitResult> {
  return scope.resolve<AdminPushModuleService>(ADMIN_PUSH_MODULE).emit(event, data, opts)
}
