/**
 * Publishes, after the admin routes of ../lib/routes answer successfully, the push their change
 * needs (Medusa emits no event for it). The push goes out once the answer is sent: it never
 * delays or fails the admin's request.
 */
import { defineMiddlewares, type MedusaNextFunction, type MedusaRequest, type MedusaResponse } from "@medusajs/framework/http"
import { emitAdminEvent } from "../index"
import { ROUTE_SOURCES, type RouteSource } from "../lib/routes"

const publishAfterSuccess =
  ({ push }: RouteSource) =>
  (req: MedusaRequest, res: MedusaResponse, next: MedusaNextFunction) => {
    res.on("finish", () => {
      const message = res.statusCode < 300 ? push(req.params) : null
      if (message) void emitAdminEvent(req.scope, message.event, message.data)
    })
    next()
  }

export default defineMiddlewares({
  routes: ROUTE_SOURCES.map((source) => ({
    matcher: source.matcher,
    methods: [source.method],
    middlewares: [publishAfterSuccess(source)],
  })),
})
