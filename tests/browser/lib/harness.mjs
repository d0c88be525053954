/**
 * The harness for the browser suite: the real admin-push binary, a real nginx, a real headless
 * Chromium (driven by playwright-core, never downloaded), and a page that runs the real browser
 * client from the service's own origin.
 *
 * Every wait is on a condition with a deadline; nothing sleeps in place of synchronisation. Every
 * process started here is killed when its test ends, and again (SIGKILL) if Node exits early.
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { chromium } from "playwright-core";
import {
  WAIT_MS, captureOutput, freePort, startService, stopChild, track, waitForHttp200,
} from "./service.mjs";

export * from "./service.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const NGINX = process.env.NGINX_BIN ?? "nginx";

/**
 * A real nginx in front of `upstreamPort` (or, round robin, each of `upstreamPorts`), on a free
 * port, configured in a fresh temp dir. `location` is the body of `location /` (the proxy_pass is
 * added).
 */
export async function startNginx({ upstreamPort, upstreamPorts = [upstreamPort], location }) {
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
  upstream admin_push { ${upstreamPorts.map((port) => `server 127.0.0.1:${port};`).join(" ")} }
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

/**
 * Headless Chromium from the system (fresh temporary profile per launch). Playwright turns the
 * back/forward cache off by default; `backForwardCache` leaves it on, as in a user's browser.
 */
export function launchBrowser({ backForwardCache = false } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: backForwardCache ? ["--disable-back-forward-cache"] : [],
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    timeout: 30_000,
  });
}

/**
 * One Chromium and one default service for a whole `describe` block: started before its first
 * test, stopped after its last. The returned object holds `browser` and `service` once started.
 */
export function sharedBrowserAndService() {
  const shared = {};
  before(async () => {
    shared.browser = await launchBrowser();
    shared.service = await startService();
  });
  after(async () => {
    await shared.browser?.close();
    await shared.service?.stop();
  });
  return shared;
}

/**
 * A fresh page opened on `origin`'s console page, with console errors and page errors collected
 * for failure messages. In its own context, or as another tab of `context` (tabs of one context
 * share storage, locks and broadcast channels, like tabs of one browser profile). With `clock`,
 * the page's timers run on Playwright's controllable clock from the start.
 */
export async function openPage(browser, origin, { context: shared, clock = false } = {}) {
  const context = shared ?? await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  if (clock) await page.clock.install();
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
  return { page, context, problems, close: () => (shared ? page.close() : context.close()) };
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

/** Waits until the page's client reports `state` (in this tab, or relayed from the leader tab). */
export async function waitForState(page, state, ms = WAIT_MS) {
  try {
    await page.waitForFunction((state) => window.push?.state === state, state, { timeout: ms, polling: 20 });
  } catch (err) {
    throw new Error(`client not ${state} within ${ms} ms: ${JSON.stringify(await recorded(page))}`, { cause: err });
  }
}
