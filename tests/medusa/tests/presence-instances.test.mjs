/**
 * Presence in the real Medusa admin across two admin-push instances that share one Redis, one of
 * the admins on SSE: as a shop whose admins reach the service through two sites, each Medusa
 * server handing its admins the instance next to it (`publicUrl`), and one of them behind a
 * proxy that does not pass WebSocket (`transports: ["sse"]`, here ADMIN_PUSH_TRANSPORTS=sse).
 *
 * Anna (Medusa A → instance A, WebSocket) and Carl (Medusa B → instance B, SSE, so everything his
 * tab tells the service goes over HTTP) open the same order: each sees the other; when one of them
 * leaves the order (through the dashboard's own navigation, as an admin does) or closes the tab,
 * the other's page shows it.
 *
 * Times are read from the pages' own clocks (the moment the DOM changed) and printed, not
 * asserted: they depend on the machine.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  WAIT_MS, adminApi, createAdmin, freePort, launchBrowser, loggedInAs, loggedInContext, onFreePorts, pushService,
  startMedusa, startRedis, until,
} from "../lib/stack.mjs";

const CARL = { email: "carl.sse@example.com", password: "e2e-carl-password", first_name: "Carl", last_name: "Sse" };

/** The presence widget's element for `record` once the service has answered for it. */
const presence = (record) => `[data-admin-push-presence="${record}"][data-known]`;
/** The avatar of `actorId` on `record`, in `state` when given. */
const avatar = (record, actorId, state) =>
  `${presence(record)} [data-admin-push-viewer="${actorId}"]${state ? `[data-state="${state}"]` : ""}`;
const OPEN = '[data-admin-push-status="open"]';

/** Open subscriber connections on `base` over `transport`, from the service's own gauge. */
async function connections(base, transport) {
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(WAIT_MS) })).text();
  const line = text.split("\n").find((l) => l.startsWith(`admin_push_connections{transport="${transport}"}`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

/**
 * A new tab of `context` that records, from its own clock and from the start of every document it
 * loads, when a change to its DOM made one of `selectors` match (`on`) or stop matching (`off`),
 * and when the dashboard changed route (`nav`); `since(kind, selector, t)` resolves with the first
 * such moment at or after `t`.
 */
async function recordingTab(context, selectors) {
  const page = await context.newPage();
  const sockets = [];
  const problems = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  page.on("pageerror", (err) => problems.push(err.message));
  await page.addInitScript((selectors) => {
    const log = (window.__adminPushLog = []);
    const matching = new Map(selectors.map((s) => [s, false]));
    const check = () => {
      for (const [selector, was] of matching) {
        const is = !!document.querySelector(selector);
        if (is !== was) log.push({ selector, kind: is ? "on" : "off", at: Date.now() });
        matching.set(selector, is);
      }
    };
    new MutationObserver(check)
      .observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
    // The dashboard's own route changes (a click on a link, the Back button), logged as `nav`.
    const pushState = history.pushState;
    history.pushState = function (...args) {
      log.push({ selector: "", kind: "nav", at: Date.now() });
      return pushState.apply(this, args);
    };
    addEventListener("popstate", () => log.push({ selector: "", kind: "nav", at: Date.now() }));
  }, selectors);
  return {
    page,
    sockets,
    problems,
    since: async (kind, selector, t) => {
      const handle = await page.waitForFunction(
        ({ kind, selector, t }) => window.__adminPushLog.find((e) => e.kind === kind && e.selector === selector && e.at >= t)?.at,
        { kind, selector, t },
        { timeout: WAIT_MS },
      );
      return handle.jsonValue();
    },
  };
}

/** Leaves the order for the order list the way an admin does: a click on the dashboard's link. */
async function toOrderList(page) {
  await page.locator('a[href="/app/orders"]').first().click();
  await page.waitForURL((url) => url.pathname === "/app/orders", { timeout: WAIT_MS });
}

/**
 * Two admin-push instances on `redis`, each with a Medusa of its own on the same database; the
 * second Medusa's admin uses SSE. Stops what it started if any of it fails to start.
 */
async function startInstances(redis) {
  const [portA, portB] = [await freePort(), await freePort()];
  const origins = [`http://localhost:${portA}`, `http://localhost:${portB}`];
  const hub = {
    ADMIN_PUSH__HUB__BACKEND: "redis",
    ADMIN_PUSH__HUB__REDIS_URL: redis.url,
    ADMIN_PUSH__HUB__STREAM_KEY: "admin-push:medusa-presence",
    // Either site's admin may reach either instance.
    ADMIN_PUSH__AUTH__ALLOWED_ORIGINS: JSON.stringify(origins),
  };
  const pushA = pushService({ port: await freePort(), adminOrigin: origins[0], env: hub });
  const pushB = pushService({ port: await freePort(), adminOrigin: origins[1], env: hub });
  const started = await Promise.allSettled([
    pushA.start().then(() => startMedusa({ port: portA, pushBase: pushA.base, adminOrigin: origins[0] })),
    pushB.start().then(() => startMedusa({
      port: portB, pushBase: pushB.base, adminOrigin: origins[1], env: { ADMIN_PUSH_TRANSPORTS: "sse" },
    })),
  ]);
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    await Promise.all(started.map((s) => (s.status === "fulfilled" ? s.value.stop() : undefined)));
    await Promise.all([pushA.stop(), pushB.stop()]);
    throw failed.reason;
  }
  const [medusaA, medusaB] = started.map((s) => s.value);
  return { pushA, pushB, medusaA, medusaB };
}

describe("presence across two admin-push instances on one Redis, one admin on SSE", () => {
  let redis, pushA, pushB, medusaA, medusaB, api, browser, regionId, anna, carl;
  before(async () => {
    redis = await startRedis();
    ({ pushA, pushB, medusaA, medusaB } = await onFreePorts(() => startInstances(redis)));
    api = await adminApi(medusaA.base);
    ({ region: { id: regionId } } = await api("POST", "/admin/regions", { name: "Instances", currency_code: "eur" }));
    ({ user: anna } = await api("GET", "/admin/users/me"));
    await api("POST", `/admin/users/${anna.id}`, { first_name: "Anna", last_name: "Admin" });
    carl = await createAdmin(medusaA.base, api, CARL);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await Promise.all([medusaA?.stop(), medusaB?.stop()]);
    await Promise.all([pushA?.stop(), pushB?.stop()]);
    await redis?.stop();
  });

  test("two admins on one order, on two instances, one over SSE, see each other come and go", { timeout: 240_000 }, async (t) => {
    const { draft_order: draft } = await api("POST", "/admin/draft-orders", {
      email: "buyer@example.com",
      region_id: regionId,
      items: [{ title: "Instance Lamp", unit_price: 1200, quantity: 1 }],
    });
    const { order } = await api("POST", `/admin/draft-orders/${draft.id}/convert-to-order`);
    const record = `order:${order.id}`;
    const orderPath = `/app/orders/${order.id}`;
    const annaContext = await loggedInContext(browser, medusaA.base);
    const carlContext = await loggedInAs(browser, medusaB.base, CARL);
    t.after(async () => { await annaContext.close(); await carlContext.close(); });
    const print = (what, ms) => t.diagnostic(`${what}: ${ms} ms`);

    // Anna on the order, through Medusa A and instance A, over WebSocket; nobody else there yet.
    const watched = [OPEN, avatar(record, carl.id), avatar(record, carl.id, "viewing"), avatar(record, anna.id),
      avatar(record, anna.id, "viewing")];
    const annaTab = await recordingTab(annaContext, watched);
    await annaTab.page.goto(`${medusaA.base}${orderPath}`);
    await annaTab.page.locator(presence(record)).waitFor({ state: "attached", timeout: WAIT_MS });
    await annaTab.page.locator(OPEN).waitFor({ timeout: WAIT_MS });
    assert.equal(await annaTab.page.locator(`${OPEN} [title]`).first().getAttribute("title"), "Live updates via WebSocket");
    assert.equal(await annaTab.page.locator(avatar(record, carl.id)).count(), 0, "Carl is not there yet");

    // Carl opens it through Medusa B: his tab takes SSE to instance B, never a WebSocket.
    const carlTab = await recordingTab(carlContext, watched);
    const carlStarted = Date.now();
    await carlTab.page.goto(`${medusaB.base}${orderPath}`);
    const carlOpen = await carlTab.since("on", OPEN, carlStarted);
    const annaSawCarl = await annaTab.since("on", avatar(record, carl.id, "viewing"), carlStarted);
    const carlSawAnna = await carlTab.since("on", avatar(record, anna.id, "viewing"), carlStarted);
    assert.equal(await carlTab.page.locator(`${OPEN} [title]`).first().getAttribute("title"), "Live updates via SSE");
    print("Carl (SSE, instance B) live on the order → his initials on Anna's page (WS, instance A)", annaSawCarl - carlOpen);
    print("Carl's navigation to the order → his initials on Anna's page (includes loading the dashboard)", annaSawCarl - carlStarted);
    print("Carl live on the order → Anna's initials on his page", carlSawAnna - carlOpen);
    assert.equal((await annaTab.page.locator(avatar(record, carl.id)).innerText()).trim(), "CS", "Carl's initials");
    assert.equal(await annaTab.page.locator(`${presence(record)} [data-admin-push-viewer]`).count(), 1, "only Carl");
    assert.equal(await carlTab.page.locator(`${presence(record)} [data-admin-push-viewer]`).count(), 1, "only Anna");

    // Where each one is connected, from the services' own gauges.
    await until("instance A to hold Anna's WebSocket and instance B Carl's SSE stream", async () =>
      (await connections(pushA.base, "ws")) === 1 && (await connections(pushA.base, "sse")) === 0 &&
      (await connections(pushB.base, "sse")) === 1 && (await connections(pushB.base, "ws")) === 0);

    // Carl leaves the order for the order list, inside the dashboard: his tab says so over HTTP.
    // Times from the moment the dashboard changed route.
    let t0 = Date.now();
    await toOrderList(carlTab.page);
    let nav = await carlTab.since("nav", "", t0);
    print("Carl (SSE, instance B) leaves for the order list → gone from Anna's page (WS, instance A)",
      await annaTab.since("off", avatar(record, carl.id), nav) - nav);

    // He comes back (the browser's Back button): seen again.
    t0 = Date.now();
    await carlTab.page.goBack();
    await carlTab.page.waitForURL((url) => url.pathname === orderPath, { timeout: WAIT_MS });
    nav = await carlTab.since("nav", "", t0);
    print("Carl (SSE) back on the order → on Anna's page again", await annaTab.since("on", avatar(record, carl.id, "viewing"), nav) - nav);
    await carlTab.page.locator(avatar(record, anna.id, "viewing")).waitFor({ timeout: WAIT_MS });

    // Anna leaves for the order list: Carl, over SSE on the other instance, sees her go.
    t0 = Date.now();
    await toOrderList(annaTab.page);
    nav = await annaTab.since("nav", "", t0);
    print("Anna (WS, instance A) leaves for the order list → gone from Carl's page (SSE, instance B)",
      await carlTab.since("off", avatar(record, anna.id), nav) - nav);
    t0 = Date.now();
    await annaTab.page.goBack();
    await annaTab.page.waitForURL((url) => url.pathname === orderPath, { timeout: WAIT_MS });
    nav = await annaTab.since("nav", "", t0);
    print("Anna back on the order → on Carl's page again", await carlTab.since("on", avatar(record, anna.id, "viewing"), nav) - nav);
    await annaTab.page.locator(avatar(record, carl.id, "viewing")).waitFor({ timeout: WAIT_MS });

    // Carl closes his tab: his SSE stream on instance B ends, and Anna's page on A shows it.
    const closed = Date.now();
    await carlTab.page.close();
    print("Carl's tab closed → gone from Anna's page", await annaTab.since("off", avatar(record, carl.id), closed) - closed);

    assert.deepEqual(carlTab.sockets, [], "Carl's tab never opened a WebSocket");
    assert.ok(annaTab.sockets.length > 0, "Anna's tab is on WebSocket");
    assert.deepEqual(annaTab.problems, [], "no page errors in Anna's tab");
    assert.deepEqual(carlTab.problems, [], "no page errors in Carl's tab");
  });
});
