/**
 * The real admin-push binary for Node tests (the browser suite and the client package's own
 * tests): started with test secrets on a given or free port, killed when its test ends, and again
 * (SIGKILL) if Node exits early; tokens minted like Medusa mints them, events emitted like Medusa
 * emits them. Every wait is on a condition with a deadline.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

export const JWT_SECRET = "browser-suite-jwt-secret-0123456789abcdef";
export const INTERNAL_SECRET = "browser-suite-internal-secret-0123456789ab";
/** Upper bound on any single wait for something that should happen. */
export const WAIT_MS = 10_000;

const BIN = process.env.ADMIN_PUSH_BIN;

/** Children still running: killed if Node exits without a test's own cleanup having run. */
const children = new Set();
process.on("exit", () => {
  for (const child of children) {
    try { child.kill("SIGKILL"); } catch { /* already gone */ }
  }
});

export function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Resolves when `child` has exited; SIGKILLs it if it has not within `ms` after `signal`. */
export async function stopChild(child, signal = "SIGTERM", ms = WAIT_MS) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  await exited;
  clearTimeout(timer);
}

/** Keeps the last lines a child wrote, to explain a failure. */
export function captureOutput(child, name) {
  const lines = [];
  const keep = (chunk) => {
    for (const line of String(chunk).split("\n")) if (line) lines.push(line);
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return () => `--- last output of ${name} ---\n${lines.join("\n")}`;
}

/** A port nothing listens on right now (bind port 0, read it, release it). */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `url` until it answers 200, or throws after `ms` (describing `what`). */
export async function waitForHttp200(url, what, ms = WAIT_MS, alive = () => true) {
  const deadline = Date.now() + ms;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${what} exited before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await delay(50);
  }
  throw new Error(`${what} did not answer 200 on ${url} within ${ms} ms (last: ${last})`);
}

/**
 * Starts the real binary on `port` (a free one when omitted) with only defaults and `env` applied.
 * @returns {Promise<{port: number, base: string, stop(signal?: string): Promise<void>, output(): string}>}
 */
export async function startService({ port, env = {} } = {}) {
  if (!BIN) throw new Error("ADMIN_PUSH_BIN must point at the admin-push binary");
  port ??= await freePort();
  const child = track(spawn(BIN, ["--config", "/dev/null"], {
    env: {
      PATH: process.env.PATH,
      RUST_LOG: process.env.RUST_LOG ?? "warn",
      ADMIN_PUSH__SERVER__BIND: `127.0.0.1:${port}`,
      ADMIN_PUSH__AUTH__JWT_SECRET: JWT_SECRET,
      ADMIN_PUSH__INTERNAL__SECRETS: JSON.stringify([INTERNAL_SECRET]),
      ADMIN_PUSH__SERVER__DRAIN_SECS: "1",
      ADMIN_PUSH__LOG__LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  }));
  const output = captureOutput(child, `admin-push :${port}`);
  const base = `http://127.0.0.1:${port}`;
  const alive = () => child.exitCode === null && child.signalCode === null;
  try {
    await waitForHttp200(`${base}/healthz`, "admin-push", WAIT_MS, alive);
  } catch (err) {
    await stopChild(child, "SIGKILL");
    throw new Error(`${err.message}\n${output()}`);
  }
  return { port, base, output, stop: (signal = "SIGTERM") => stopChild(child, signal) };
}

/**
 * A redis-server of the test's own on 127.0.0.1 and a free port, keeping nothing on disk; for
 * admin-push instances that share it as their backplane.
 */
export async function startRedis() {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "admin-push-test-redis-"));
  const child = track(spawn("redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
  ], { stdio: ["ignore", "pipe", "pipe"] }));
  const output = captureOutput(child, `redis-server :${port}`);
  const alive = () => child.exitCode === null && child.signalCode === null;
  const accepts = () => new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => { socket.destroy(); resolve(true); });
    socket.once("error", () => resolve(false));
  });
  const stop = async () => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + WAIT_MS;
  while (!(await accepts())) {
    if (!alive() || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not accept connections within ${WAIT_MS} ms\n${output()}`);
    }
    await delay(50);
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}

/** A Medusa admin JWT (HS256), valid for `secs` seconds from now. */
export function adminToken({ actorId = "user_browser", secs = 3600 } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({
    actor_id: actorId,
    actor_type: "user",
    auth_identity_id: "authid_browser",
    app_metadata: { user_id: actorId },
    iat: now,
    exp: now + secs,
  })}`;
  const signature = createHmac("sha256", JWT_SECRET).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

/** Publishes `product.updated {id}` and returns the event id the service assigned. */
export function emitProduct(base, productId) {
  return emitEvent(base, "product.updated", { id: productId });
}

/** Publishes one event and returns the id the service assigned. */
export async function emitEvent(base, event, data) {
  const res = await fetch(`${base}/internal/emit`, {
    method: "POST",
    headers: { Authorization: `Bearer ${INTERNAL_SECRET}`, "Content-Type": "application/json" },
    body: JSON.stringify({ event, data }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const body = await res.json().catch(() => null);
  if (res.status !== 202 || typeof body?.id !== "string") {
    throw new Error(`emit answered HTTP ${res.status} ${JSON.stringify(body)}`);
  }
  return body.id;
}

/** True when `program` is on PATH. */
export function installed(program) {
  return spawnSync("sh", ["-c", `command -v ${program}`]).status === 0;
}

/** Subscriber connections the service holds open right now (its `admin_push_connections` gauge). */
export async function openConnections(base) {
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(WAIT_MS) })).text();
  return text.split("\n")
    .filter((line) => line.startsWith("admin_push_connections{"))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

/**
 * Waits until the service holds exactly `n` subscriber connections (a close reaches the server
 * a little after the page let go; there is no event to wait on from here).
 */
export async function waitForConnections(base, n, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let open;
  while ((open = await openConnections(base)) !== n) {
    if (Date.now() > deadline) throw new Error(`the service holds ${open} connections, not ${n}, after ${ms} ms`);
    await delay(20);
  }
}
