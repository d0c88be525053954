/**
 * Compiled by `tsc` (never run): the published types accept what the README shows and reject
 * misuse. A line marked `@ts-expect-error` fails the check when it stops being an error.
 */
import { AdminPush, AdminPushError, debounce, type AdminPushStatus, type AdminPushViewer } from "@admin-push/client"

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

push.setPresence("order:order_01", "viewing")
push.setPresence("product:prod_01", "editing")
push.setPresence("order:order_01", null)
const offPresence: () => void = push.onPresence("order:order_01", (viewers, { record, more }) => {
  const first: AdminPushViewer | undefined = viewers[0]
  const state: "viewing" | "editing" | undefined = first?.state
  const name: string | undefined = first?.name
  void [state, name, record, more satisfies number]
})
offPresence()
push.on("ready", ({ connection, actor_id }) => void [connection.length, actor_id.length])
push.on("presence_refused", ({ error, message }) => void [error, message])
// @ts-expect-error a presence state the service does not know
push.setPresence("order:order_01", "typing")
// @ts-expect-error a record is <kind>:<id>
push.setPresence("order_01", "viewing")

const sent: boolean = push.receipt("1764115200000-1")
void sent
push.on("product.updated", (_data, envelope) => {
  if (envelope.id) push.receipt(envelope.id)
})
push.on("ready", ({ receipt_rate, presence_ttl_ms }) => void [receipt_rate?.toFixed(2), presence_ttl_ms])
// @ts-expect-error a receipt names an event by its id
push.receipt({ id: "1-1" })
