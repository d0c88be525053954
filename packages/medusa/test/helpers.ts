/** Shared test helpers: a quiet logger, a local HTTP stub, the real service, an SSE reader. */
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync, accessSync, constants } from "node:fs"
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http"
import { createServer as createNetServer, type AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { EventSourceParserStream, type EventSourceMessage } from "eventsource-parser/stream"
import type { AdminPushLogger } from "../src/lib/emitter"

export const JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"
export const INTERNAL_SECRET = "test-internal-secret-000000000000000"

/** Collects log lines instead of printing them. */
export function memoryLogger(): AdminPushLogger & { errors: string[]; warnings: string[] } {
  const errors: string[] = []
  const warnings: string[] = []
  return { errors, warnings, error: (m) => errors.push(m), warn: (m) => warnings.push(m) }
}

export interface RecordedRequest {
  method: string
  url: string
  headers: IncomingMessage["headers"]
  body: string
}

/** A local HTTP server whose answers the test scripts; records every request. */
export async function startStub(
  answer: (req: RecordedRequest, n: number, res: ServerResponse) => unknown
): Promise<{ url: string; requests: RecordedRequest[]; close(): Promise<void> }> {
  const requests: RecordedRequest[] = []
  const server = createHttpServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const recorded = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString() }
    requests.push(recorded)
    await answer(recorded, requests.length, res)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A port nothing listens on right now (bind 0, read it, release it). */
export async function freePort(): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * Where the real service binary is, from ADMIN_PUSH_BIN. Unset: the
 * integration tests are skipped loudly, unless CI is set, where it is an error
 * (`mustFail`), so a CI run can never pass without them.
 */
export function serviceBinary(): { bin?: string; skip: string | false; mustFail: boolean } {
  const bin = process.env.ADMIN_PUSH_BIN && resolve(process.env.ADMIN_PUSH_BIN)
  if (bin) {
    accessSync(bin, constants.X_OK) // fail clearly on a wrong path
    return { bin, skip: false, mustFail: false }
  }
  const why = "ADMIN_PUSH_BIN is not set: integration tests against the real admin-push service are SKIPPED"
  if (!process.env.CI) console.warn(`\n*** ${why} ***\n`)
  return { skip: why, mustFail: Boolean(process.env.CI) }
}

export interface RunningService {
  url: string
  /** stdout+stderr so far, for failure messages. */
  output(): string
  stop(): Promise<void>
}

/**
 * Start the real binary on a free port with test secrets; resolves once
 * /healthz answers 200. `overrides` replaces env vars; `undefined` removes one.
 */
export async function startService(bin: string, overrides: Record<string, string | undefined> = {}): Promise<RunningService> {
  // A port found free can be taken by another process before the service binds
  // it (a busy machine runs many suites at once): then try another one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(await freePort(), bin, overrides)
    } catch (err) {
      if (attempt >= 3 || !String((err as Error).message).includes("Address already in use")) throw err
    }
  }
}

async function startOn(port: number, bin: string, overrides: Record<string, string | undefined>): Promise<RunningService> {
  // An empty config file in a fresh directory: defaults plus our env overrides,
  // never a stray ./config.toml from wherever the tests run.
  const dir = mkdtempSync(join(tmpdir(), "admin-push-test-"))
  const configFile = join(dir, "config.toml")
  writeFileSync(configFile, "")

  const url = `http://127.0.0.1:${port}`
  const env: Record<string, string | undefined> = {
    ...process.env,
    ADMIN_PUSH__SERVER__BIND: `127.0.0.1:${port}`,
    ADMIN_PUSH__SERVER__DRAIN_SECS: "1",
    ADMIN_PUSH__AUTH__JWT_SECRET: JWT_SECRET,
    ADMIN_PUSH__AUTH__AUDIENCE: "admin-push",
    // figment reads env values as TOML-like values, so an array literal works.
    ADMIN_PUSH__INTERNAL__SECRETS: `["${INTERNAL_SECRET}"]`,
    ...overrides,
  }
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key]

  let output = ""
  const child: ChildProcess = spawn(bin, ["--config", configFile], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env })
  child.stdout?.on("data", (d) => (output += d))
  child.stderr?.on("data", (d) => (output += d))
  let exited: string | undefined
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = `exited (code ${code}, signal ${signal})`
      resolve()
    })
  )

  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
      await exit
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }

  const deadline = Date.now() + 20_000
  for (;;) {
    if (exited) {
      await stop()
      throw new Error(`admin-push ${exited} before it was healthy:\n${output}`)
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })
      await res.body?.cancel()
      if (res.status === 200) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`admin-push did not answer /healthz within 20 s:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { url, output: () => output, stop }
}

/** An SSE subscription read through eventsource-parser. */
export async function openSse(url: string, headers: Record<string, string>) {
  const abort = new AbortController()
  const res = await fetch(url, { headers: { Accept: "text/event-stream", ...headers }, signal: abort.signal })
  if (res.status !== 200 || !res.body) {
    const text = await res.text()
    throw new Error(`SSE ${url}: HTTP ${res.status} ${text}`)
  }
  const reader = res.body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream())
    .getReader()

  return {
    response: res,
    /** Read events until one matches; fails after `timeoutMs`. */
    async until(match: (e: EventSourceMessage) => boolean, timeoutMs = 5000): Promise<EventSourceMessage> {
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no matching SSE event within ${timeoutMs} ms`)), timeoutMs)
      })
      try {
        for (;;) {
          const { value, done } = await Promise.race([reader.read(), timeout])
          if (done) throw new Error("SSE stream ended")
          if (match(value)) return value
        }
      } finally {
        clearTimeout(timer)
      }
    },
    close() {
      abort.abort()
      reader.cancel().catch(() => {})
    },
  }
}
