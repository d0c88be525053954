/**
 * The `adminPush` module: registered automatically with the plugin's options
 * (Medusa passes a plugin's options to every module it ships), checked by the
 * loader before the server accepts its first request.
 */
import { Module } from "@medusajs/framework/utils"
import { parseOptions } from "./options"
import AdminPushModuleService from "./service"

export const ADMIN_PUSH_MODULE = "adminPush"

/** Fails Medusa's start with the option's name when the options cannot work. */
async function checkOptions({ options }: { options?: Record<string, unknown> }): Promise<void> {
  parseOptions(options)
}

export default Module(ADMIN_PUSH_MODULE, {
  service: AdminPushModuleService,
  loaders: [checkOptions],
})
