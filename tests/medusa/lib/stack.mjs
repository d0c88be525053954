/**
 * The stack the Medusa suite runs against, all real: the admin-push binary, the test shop's
 * built Medusa server (with @admin-push/medusa installed from its tarball, on a throwaway
 * PostgreSQL database that run.sh prepared), and the system's headless Chromium logged in to
 * the admin dashboard.
 *
 * Every wait polls a condition under a deadline; nothing sleeps in place of synchronisation.
 * Every process started here is killed when the suite ends, and SIGKILLed if Node exits early.
 */
import { execFileSync, spawn } from "node:child_process";
import { setTimeout as delay } from "node:timers/promises";
import { chromium } from "playwright-core";
import {
  captureOutput, freePort, openConnections, startRedis, startService, stopChild, track, waitForConnections,
  waitForHttp200,
} from "../../browser/lib/service.mjs";

export { freePort, startRedis };
export const ADMIN = { email: "admin@example.com", password: "e2e-admin-password" };
/** Upper bound on any single wait for something that should happen. */
export const WAIT_MS = 20_000;

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (tests/medusa/run.sh sets it)`);
  return value;
};

/** Polls `check` until it resolves truthy; throws naming `what` after `ms`. */
export async function until(what, check, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(50);
  }
}

/**
 * The admin-push service on a fixed port, so it can be killed and started again where the
 * plugin (and every open tab) expects it, with the secrets the plugin was given; `env` adds to
 * (or overrides) its environment.
 */
export function pushService({ port, adminOrigin, env: extra = {} }) {
  let service = null;
  const base = `http://127.0.0.1:${port}`;
  return {
    base,
    async start() {
      service = await startService({
        port,
        env: {
          ADMIN_PUSH__AUTH__JWT_SECRET: env("ADMIN_PUSH_JWT_SECRET"),
          ADMIN_PUSH__AUTH__AUDIENCE: "admin-push",
          ADMIN_PUSH__AUTH__ALLOWED_ORIGINS: JSON.stringify([adminOrigin]),
          ADMIN_PUSH__INTERNAL__SECRETS: JSON.stringify([env("ADMIN_PUSH_SECRET")]),
          ...extra,
        },
      });
    },
    /** Open subscriber connections, from the service's own gauge. */
    connections: () => openConnections(base),
    /** Resolves once the service holds exactly `n` subscriber connections. */
    waitForConnections: (n) => waitForConnections(base, n, WAIT_MS),
    kill: () => service?.stop("SIGKILL"),
    stop: () => service?.stop(),
  };
}

/**
 * The shop's built server (`.medusa/server`, as `medusa start` runs in production); `env`
 * overrides its environment.
 */
export async function startMedusa({ port, pushBase, adminOrigin, env: overrides = {} }) {
  const child = track(spawn(env("MEDUSA_BIN"), ["start"], {
    cwd: env("MEDUSA_SERVER_DIR"),
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: "production",
      COOKIE_SECURE: "false",
      PORT: String(port),
      DATABASE_URL: env("DATABASE_URL"),
      MEDUSA_DISABLE_TELEMETRY: "true",
      JWT_SECRET: "e2e-medusa-jwt-secret-0123456789abcdef",
      COOKIE_SECRET: "e2e-medusa-cookie-secret-0123456789ab",
      STORE_CORS: adminOrigin,
      ADMIN_CORS: adminOrigin,
      AUTH_CORS: adminOrigin,
      ADMIN_PUSH_URL: pushBase,
      ADMIN_PUSH_PUBLIC_URL: pushBase,
      ADMIN_PUSH_SECRET: env("ADMIN_PUSH_SECRET"),
      ADMIN_PUSH_JWT_SECRET: env("ADMIN_PUSH_JWT_SECRET"),
      ...overrides,
    },
  }));
  const output = captureOutput(child, `medusa :${port}`);
  const base = `http://localhost:${port}`;
  // Medusa stays up when its port turns out to be taken: that counts as exiting, at once.
  const alive = () => child.exitCode === null && child.signalCode === null && !PORT_TAKEN.test(output());
  try {
    await waitForHttp200(`${base}/health`, "Medusa", 120_000, alive);
  } catch (err) {
    await stopChild(child, "SIGKILL");
    throw new Error(`${err.message}\n${output()}`);
  }
  return { base, stop: () => stopChild(child) };
}

const PORT_TAKEN = /EADDRINUSE|Address already in use/;

/**
 * Runs `start`, which picks free ports and starts servers on them, again (up to three times in
 * all) when one of those ports was taken before its server bound it: a port found free is only
 * free until someone else binds it, an outgoing connection's own port included, and a busy
 * machine runs many suites at once. `start` stops what it started before it throws.
 */
export async function onFreePorts(start) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3 || !PORT_TAKEN.test(err.message)) throw err;
    }
  }
}

/** The admin-push service and Medusa on free ports, the service allowing the admin's origin. */
export function startStack() {
  return onFreePorts(async () => {
    const port = await freePort();
    const adminOrigin = `http://localhost:${port}`;
    const push = pushService({ port: await freePort(), adminOrigin });
    try {
      await push.start();
      const medusa = await startMedusa({ port, pushBase: push.base, adminOrigin });
      return { push, medusa };
    } catch (err) {
      await push.stop();
      throw err;
    }
  });
}

/**
 * The admin API as a script (or another admin) uses it: bearer token from email/password. The
 * function keeps, as `lastCall`, when its latest call started and returned (`Date.now()`), for
 * figures measured from a change's last call.
 */
export async function adminApi(base) {
  const login = await fetch(`${base}/auth/user/emailpass`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(ADMIN),
  });
  const { token } = await login.json();
  if (!token) throw new Error(`admin login failed: HTTP ${login.status}`);
  async function call(method, path, body) {
    const start = Date.now();
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    call.lastCall = { start, end: Date.now() };
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
  return call;
}

/**
 * Headless Chromium. With `marker`, the browser's command line carries it, so that
 * `signalBrowser` can find the browser's processes.
 */
export function launchBrowser({ marker } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
      ...(marker ? [`--admin-push-test=${marker}`] : []),
    ],
  });
}

/**
 * Sends `signal` to every process of the browser launched with `marker`: Chromium's main process
 * leads a process group of its own, its renderers and network service included. `SIGSTOP` is a
 * browser that vanished without a word: its sockets stay open (the kernel still answers for
 * them), but nothing more is sent or read on them.
 */
export function signalBrowser(marker, signal) {
  const pid = Number(execFileSync("pgrep", ["-o", "-f", "--", `--admin-push-test=${marker}`]).toString().trim());
  process.kill(-pid, signal);
}

/** A browser context logged in to the admin through its own login form. */
export function loggedInContext(browser, base) {
  return loggedInAs(browser, base, ADMIN);
}

/** What a suite file drives: the service and Medusa (startStack), the admin API, and the browser. */
export async function startAll() {
  const { push, medusa } = await startStack();
  return { push, medusa, api: await adminApi(medusa.base), browser: await launchBrowser() };
}

/** Stops what startAll started, whatever of it did start. */
export async function stopAll({ push, medusa, browser }) {
  await browser?.close();
  await medusa?.stop();
  await push?.stop();
}

/**
 * Opens `path` in a new tab of `context`, waits for the live indicator to say "open", and
 * records the tab's own WebSockets (to prove which tab holds the connection).
 */
export async function openScreen(context, base, path, { live = true } = {}) {
  const page = await context.newPage();
  const sockets = [];
  const problems = [];
  page.on("websocket", (ws) => sockets.push(ws));
  page.on("pageerror", (err) => problems.push(err.message));
  await page.goto(`${base}${path}`);
  if (live) await liveIndicator(page, "open");
  return { page, sockets, problems };
}

/** Waits until the plugin's indicator on `page` shows `state`. */
export function liveIndicator(page, state) {
  return page.locator(`[data-admin-push-status="${state}"]`).first().waitFor({ timeout: WAIT_MS });
}

let watches = 0;

/**
 * Starts watching `page` for `text` to appear (or, with `gone`, to leave) and returns a function
 * that resolves with the page's clock reading at that moment. Call it before making the change:
 * the page records the time from its own DOM mutations, not when this process next looks.
 */
export async function watchText(page, text, { gone = false } = {}) {
  const key = `w${++watches}`;
  await page.evaluate(({ text, gone, key }) => {
    const seen = (window.__adminPushWatches ??= {});
    const observer = new MutationObserver(() => check());
    const check = () => {
      if (key in seen || document.body.innerText.includes(text) === gone) return;
      seen[key] = Date.now();
      observer.disconnect();
    };
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
    check();
  }, { text, gone, key });
  return async () => {
    const handle = await page.waitForFunction((key) => window.__adminPushWatches?.[key], key, { timeout: WAIT_MS });
    return handle.jsonValue();
  };
}

/** Another admin user, made the way the dashboard makes one: invited, registered, accepted. */
export async function createAdmin(base, api, { email, password, first_name, last_name }) {
  const { invite } = await api("POST", "/admin/invites", { email });
  const registered = await fetch(`${base}/auth/user/emailpass/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const { token } = await registered.json();
  if (!token) throw new Error(`register ${email}: HTTP ${registered.status}`);
  const accepted = await fetch(`${base}/admin/invites/accept?token=${encodeURIComponent(invite.token)}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ email, first_name, last_name }),
  });
  const body = await accepted.json();
  if (!accepted.ok) throw new Error(`accept invite for ${email}: HTTP ${accepted.status} ${JSON.stringify(body)}`);
  return body.user;
}

/** A browser context logged in to the admin at `base` as `email`, through its login form. */
export async function loggedInAs(browser, base, { email, password }) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/app/login`);
  await page.locator('input[name="email"]').fill(email);
  await page.locator('input[name="password"]').fill(password);
  await page.locator('button[type="submit"]').click();
  await page.waitForURL((url) => !url.pathname.includes("/login"), { timeout: WAIT_MS });
  await page.close();
  return context;
}
