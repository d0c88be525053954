/**
 * useAdminPush / useAdminPushEvent with React, the service's real browser
 * client (static/admin-push.js) and the real service: one connection for
 * many widgets, one refetch per burst, cleanup on unmount.
 */
import assert from "node:assert/strict"
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { after, before, describe, it } from "node:test"
import { fileURLToPath, pathToFileURL } from "node:url"
import { QueryClient, QueryClientProvider, useQuery } from "@tanstack/react-query"
import { StrictMode, createElement as h } from "react"
import TestRenderer, { act } from "react-test-renderer"
import { createAdminPushEmitter } from "../src/lib/admin-push"
import { signAdminPushToken } from "../src/lib/admin-push-token"
import { INTERNAL_SECRET, JWT_SECRET, memoryLogger, serviceBinary, startService, type RunningService } from "./helpers"

type HookModule = typeof import("../src/admin/lib/use-admin-push")

const here = dirname(fileURLToPath(import.meta.url))
const clientPath = resolve(process.env.ADMIN_PUSH_CLIENT ?? join(here, "../../../static/admin-push.js"))
const { bin, skip: noBin } = serviceBinary()
const noWebSocket = typeof WebSocket === "undefined" && "this Node has no global WebSocket (Node 20: --experimental-websocket)"
const skip = noBin || noWebSocket
if (!noBin && noWebSocket) console.warn(`\n*** hook test SKIPPED: ${noWebSocket} ***\n`)

// Tell React we drive updates with act().
;(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true

/**
 * The hook as a Medusa project holds it: the kit's files plus the copied
 * browser client. Vite would replace `import.meta.env.VITE_*` at build time;
 * the copy gets the same treatment (all unset, so config defaults apply).
 */
async function loadHook(): Promise<HookModule> {
  assert.ok(existsSync(clientPath), `browser client not found at ${clientPath} (set ADMIN_PUSH_CLIENT)`)
  const dir = join(here, ".hook-under-test")
  mkdirSync(dir, { recursive: true })
  const src = join(here, "../src/admin/lib")
  for (const file of ["use-admin-push.ts", "admin-push-invalidate.ts"]) {
    const code = readFileSync(join(src, file), "utf8").replaceAll("import.meta.env.", "({} as ImportMetaEnv).")
    writeFileSync(join(dir, file), code)
  }
  copyFileSync(clientPath, join(dir, "admin-push.js"))
  return (await import(pathToFileURL(join(dir, "use-admin-push.ts")).href)) as HookModule
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

async function waitFor(check: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await act(() => sleep(25))
  }
}

describe("useAdminPush with the real client and service", { skip }, () => {
  let service: RunningService
  let hook: HookModule
  let tokenCalls = 0

  before(async () => {
    service = await startService(bin!)
    hook = await loadHook()
    hook.configureAdminPush({
      url: service.url,
      getToken: async () => {
        tokenCalls++
        return signAdminPushToken({ actorId: "user_01", secret: JWT_SECRET }).token
      },
    })
  })
  after(async () => {
    await service?.stop()
  })

  it("shares one connection, refetches once per burst, and closes after the last widget", async () => {
    const fetches = { products: 0, preview: 0, banners: 0, other: 0 }
    const statuses: string[] = []
    const orderEvents: unknown[] = []

    // Three widgets, as Medusa would mount them, in StrictMode (double effects).
    const Products = () => {
      useQuery({ queryKey: ["products", "list", { query: {} }], queryFn: async () => ++fetches.products })
      const status = hook.useAdminPush()
      statuses.push(status.state)
      return null
    }
    const OrderPreview = () => {
      useQuery({ queryKey: [["orders", "detail", "order_1"], "preview"], queryFn: async () => ++fetches.preview })
      hook.useAdminPushEvent("order.updated", (data) => orderEvents.push(data))
      return null
    }
    const Banners = () => {
      useQuery({ queryKey: ["hero-banners"], queryFn: async () => ++fetches.banners })
      useQuery({ queryKey: ["regions", "list"], queryFn: async () => ++fetches.other })
      hook.useAdminPush()
      return null
    }
    const client = new QueryClient()
    let renderer!: TestRenderer.ReactTestRenderer
    await act(async () => {
      renderer = TestRenderer.create(
        h(StrictMode, null, h(QueryClientProvider, { client }, h(Products), h(OrderPreview), h(Banners)))
      )
    })

    await waitFor(() => statuses.at(-1) === "open", "status open")
    assert.equal(tokenCalls, 1, "one connection (one token fetch) for three widgets")
    await waitFor(() => fetches.products > 0 && fetches.preview > 0 && fetches.banners > 0, "initial fetches")
    const base = { ...fetches }

    const emit = createAdminPushEmitter({ url: service.url, secret: INTERNAL_SECRET, logger: memoryLogger() })
    for (let i = 0; i < 20; i++) assert.equal((await emit("product.updated", { id: `prod_${i}` })).ok, true)
    assert.equal((await emit("order.updated", { id: "order_1", status: "canceled" })).ok, true)
    assert.equal((await emit("banner.updated", { id: "hb_1", action: "updated" })).ok, true)

    await waitFor(() => fetches.banners > base.banners && fetches.preview > base.preview && fetches.products > base.products, "refetches")
    await act(() => sleep(600)) // anything still pending from the burst would land now
    assert.deepEqual(
      { products: fetches.products - base.products, preview: fetches.preview - base.preview, banners: fetches.banners - base.banners, other: fetches.other - base.other },
      { products: 1, preview: 1, banners: 1, other: 0 },
      "one refetch per kind for the burst; unrelated queries untouched"
    )
    assert.deepEqual(orderEvents, [{ id: "order_1", status: "canceled" }])

    await act(async () => renderer.unmount())
    await act(() => sleep(1300)) // the shared connection closes 1 s after the last widget

    // Mounting again needs a new connection: the old one was really stopped.
    await act(async () => {
      renderer = TestRenderer.create(h(QueryClientProvider, { client }, h(Products)))
    })
    await waitFor(() => tokenCalls === 2 && statuses.at(-1) === "open", "a fresh connection")
    await act(async () => renderer.unmount())
    await act(() => sleep(1300))
  })
})
