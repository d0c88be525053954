/**
 * Compiled by `tsc` (never run): the published types accept what the README shows and reject
 * misuse. A line marked `@ts-expect-error` fails the check when it stops being an error.
 */
import { AdminPush, AdminPushError, debounce, type AdminPushStatus } from "@admin-push/client"

const push = new AdminPush({ url: "https://push.example.com", getToken: async () => "jwt", events: ["product.updated"] })
const refetch = debounce((id: string) => void id, 200)
const off: () => void = push.on<{ id: string }>("product.updated", (data, envelope) => {
  refetch(data.id)
  const id: string | undefined = envelope.id
  void id
})
off()
push.on("customer.updated", ({ kind, action, id, ids }) => {
  const k: "customer" | "customer_group" = kind
  const a: "created" | "updated" | "deleted" = action
  void [k, a, id, ids]
})
// @ts-expect-error a family event's kind is one of its family's
push.on("inventory.updated", ({ kind }) => kind === "customer")
push.on("resync", ({ reason }) => {
  const r: "gap" | "lagged" | "restart" = reason
  void r
})
push.on("status", (status: AdminPushStatus) => {
  if (status.state === "reconnecting" && status.retryAt !== null) void new Date(status.retryAt)
  if (status.state === "refused") void status.error?.message
})
push.on("error", (err) => {
  const e: AdminPushError = err
  if (e.fatal) void e.status
})
push.start()
push.stop()
const role: "solo" | "leader" | "follower" | null = push.role
void role
void new AdminPush({ getToken: () => "jwt", shared: false, transports: ["sse"] })

// @ts-expect-error getToken is required
void new AdminPush({ url: "https://push.example.com" })
// @ts-expect-error transports are "ws" and "sse" only
void new AdminPush({ getToken: () => "jwt", transports: ["polling"] })
// @ts-expect-error a state the client never reports
const never: AdminPushStatus["state"] = "flickering"
void never
