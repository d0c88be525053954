/**
 * The harness for the browser suite: the real admin-push binary, a real nginx, a real headless
 * Chromium (driven by playwright-core, never downloaded), and a page that runs the real browser
 * client from the service's own origin.
 *
 * Every wait is on a condition with a deadline; nothing sleeps in place of synchronisation. Every
 * process started here is killed when its test ends, and again (SIGKILL) if Node exits early.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { chromium } from "playwright-core";

export const JWT_SECRET = "browser-suite-jwt-secret-0123456789abcdef";
export const INTERNAL_SECRET = "browser-suite-internal-secret-0123456789ab";
/** Upper bound on any single wait for something that should happen. */
export const WAIT_MS = 10_000;

const BIN = process.env.ADMIN_PUSH_BIN;
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const NGINX = process.env.NGINX_BIN ?? "nginx";

/** Children still running: killed if Node exits without a test's own cleanup having run. */
const children = new Set();
process.on("exit", () => {
  for (const child of children) {
    try { child.kill("SIGKILL"); } catch { /* already gone */ }
  }
});

function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Resolves when `child` has exited; SIGKILLs it if it has not within `ms` after `signal`. */
async function stopChild(child, signal = "SIGTERM", ms = WAIT_MS) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  await exited;
  clearTimeout(timer);
}

/** Keeps the last lines a child wrote, to explain a failure. */
function captureOutput(child, name) {
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
async function waitForHttp200(url, what, ms = WAIT_MS, alive = () => true) {
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
export async function emitProduct(base, productId) {
  const res = await fetch(`${base}/internal/emit`, {
    method: "POST",
    headers: { Authorization: `Bearer ${INTERNAL_SECRET}`, "Content-Type": "application/json" },
    body: JSON.stringify({ event: "product.updated", data: { id: productId } }),
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

/**
 * A real nginx in front of `upstreamPort`, on a free port, configured in a fresh temp dir.
 * `location` is the body of `location /` (the proxy_pass is added).
 */
export async function startNginx({ upstreamPort, location }) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "admin-push-nginx-"));
  chmodSync(dir, 0o755); // worker processes (not root) must reach their temp paths
  writeFileSync(join(dir, "nginx.conf"), `
worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream admin_push { server 127.0.0.1:${upstreamPort}; }
  server {
    listen 127.0.0.1:${port};
    location / {
      ${location}
      proxy_pass http://admin_push;
    }
  }
}
`);
  const child = track(spawn(NGINX, [
    "-p", dir, "-c", join(dir, "nginx.conf"),
    "-g", `daemon off; pid ${dir}/nginx.pid; error_log stderr;`,
  ], { stdio: ["ignore", "pipe", "pipe"] }));
  const output = captureOutput(child, `nginx :${port}`);
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    await stopChild(child, "SIGQUIT" /* graceful */, 3000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForHttp200(`http://127.0.0.1:${port}/healthz`, "nginx", WAIT_MS, alive);
  } catch (err) {
    await stop();
    throw new Error(`${err.message}\n${output()}`);
  }
  return { port, base: `http://127.0.0.1:${port}`, output, stop };
}

/** Headless Chromium from the system (fresh temporary profile per launch). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    timeout: 30_000,
  });
}

/**
 * A fresh page (own context) opened on `origin`'s console page, with console errors and page
 * errors collected for failure messages.
 */
export async function openPage(browser, origin) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const problems = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    const { url } = msg.location();
    if (msg.type() === "error" || msg.type() === "warning") problems.push(`console.${msg.type()}: ${msg.text()} (${url})`);
  });
  page.on("response", (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} ${res.request().method()} ${res.url()}`);
  });
  const res = await page.goto(`${origin}/`);
  if (res?.status() !== 200) throw new Error(`GET ${origin}/ answered ${res?.status()}`);
  return { page, context, problems, close: () => context.close() };
}

/**
 * Starts the real browser client (`/static/admin-push.js`) in `page`. Tokens come from Node:
 * `nextToken(call)` is invoked for every getToken call (1-based) and returns a JWT.
 * In the page, `window.t` records what the client reported:
 * `events` (every non-control event envelope), `control` ({event, data, at}),
 * `statuses` ({state, transport, at}), `errors` (messages), `tokenCalls`.
 */
export async function startClient(page, { nextToken, options = {} }) {
  let calls = 0;
  await page.exposeFunction("nextToken", () => nextToken(++calls));
  await page.evaluate(async (options) => {
    const { AdminPush } = await import("/static/admin-push.js");
    const t = { events: [], control: [], statuses: [], errors: [], tokenCalls: 0 };
    window.t = t;
    const push = new AdminPush({
      ...options,
      getToken: async () => { t.tokenCalls++; return window.nextToken(); },
    });
    push.on("*", (_data, envelope) => t.events.push({ ...envelope, at: Date.now() }));
    for (const name of ["ready", "resync", "reconnect", "auth_expired"]) {
      push.on(name, (data) => t.control.push({ event: name, data, at: Date.now() }));
    }
    push.on("status", (s) => t.statuses.push({ ...s, at: Date.now() }));
    push.on("error", (err) => t.errors.push(String(err?.message ?? err)));
    window.push = push;
    push.start();
  }, options);
  return { tokenCalls: () => calls };
}

/** What the page's client has recorded so far (see startClient). */
export function recorded(page) {
  return page.evaluate(() => window.t);
}

/** Waits until the page's client is open and has received `n` `ready` events in total. */
export async function waitUntilOpen(page, { readies = 1, ms = WAIT_MS } = {}) {
  try {
    await page.waitForFunction(
      (n) => window.push?.state === "open" && window.t.control.filter((c) => c.event === "ready").length >= n,
      readies,
      { timeout: ms, polling: 20 },
    );
  } catch (err) {
    throw new Error(`client not open (ready #${readies}) within ${ms} ms: ${JSON.stringify(await recorded(page))}`, { cause: err });
  }
}

/** Waits until the page's client has received every event id in `ids`. */
export async function waitForEvents(page, ids, ms = WAIT_MS) {
  try {
    await page.waitForFunction(
      (ids) => ids.every((id) => window.t.events.some((e) => e.id === id)),
      ids,
      { timeout: ms, polling: 10 },
    );
  } catch (err) {
    throw new Error(`events ${ids.join(",")} not all received within ${ms} ms: ${JSON.stringify(await recorded(page))}`, { cause: err });
  }
}

/** Waits until the page's client has received the control event `name` `n` times. */
export async function waitForControl(page, name, { n = 1, ms = WAIT_MS } = {}) {
  try {
    await page.waitForFunction(
      ([name, n]) => window.t.control.filter((c) => c.event === name).length >= n,
      [name, n],
      { timeout: ms, polling: 20 },
    );
  } catch (err) {
    throw new Error(`control event ${name} (#${n}) not received within ${ms} ms: ${JSON.stringify(await recorded(page))}`, { cause: err });
  }
}
