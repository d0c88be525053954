/**
 * Presence in a real browser: tabs of one browser share one connection, so the leader tab
 * reports what every tab has open, and a tab that closes leaves the report; over SSE the report
 * is an HTTP request. Two browser contexts are two admins' browsers.
 *
 * The pages run the client file of the package as it is on disk (the binary embeds the one it
 * was built with), so these tests need no rebuild of the service to follow the client.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import {
  JWT_SECRET, WAIT_MS, launchBrowser, openConnections, openPage, startClient, startNginx, startRedis, startService,
  waitForState,
} from "../lib/harness.mjs";

/** A balancer as one would set one up for SSE: HTTP/1.1 to the upstreams, nothing sticky. */
const PLAIN_PROXY = `
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_read_timeout 60s;`;

const CLIENT_JS = readFileSync(new URL("../../../packages/client/admin-push.js", import.meta.url), "utf8");

/** A token like the Medusa plugin's: the admin's display name in `name`. */
function namedToken(actorId, name) {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ actor_id: actorId, actor_type: "user", name, iat: now, exp: now + 3600 })}`;
  return `${unsigned}.${createHmac("sha256", JWT_SECRET).update(unsigned).digest("base64url")}`;
}

/** A tab of `context` (a new browser when omitted) of one admin, its client open. */
async function openTab(browser, service, { actorId, name, context, transports }) {
  if (!context) {
    context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    await context.route("**/static/admin-push.js", (route) =>
      route.fulfill({ status: 200, contentType: "text/javascript", body: CLIENT_JS }));
  }
  const tab = await openPage(browser, service.base, { context });
  await startClient(tab.page, { nextToken: () => namedToken(actorId, name), options: transports ? { transports } : {} });
  await waitForState(tab.page, "open");
  await tab.page.evaluate(() => { window.viewers = {}; });
  return tab;
}

/** This tab has `record` open in `state` (or not, with null), and records what it hears about it. */
function setPresence(page, record, state) {
  return page.evaluate(([record, state]) => {
    if (!(record in window.viewers)) {
      window.viewers[record] = null;
      window.push.onPresence(record, (viewers) => { window.viewers[record] = viewers; });
    }
    window.push.setPresence(record, state);
  }, [record, state]);
}

/** Waits until the tab's latest list of other admins on `record` reads `expected` ("Name:state,…"). */
async function waitForViewers(page, record, expected) {
  try {
    await page.waitForFunction(
      ([record, expected]) => window.viewers[record]?.map((v) => `${v.name}:${v.state}`).join(",") === expected,
      [record, expected],
      { timeout: WAIT_MS, polling: 20 },
    );
  } catch (err) {
    const seen = await page.evaluate(() => window.viewers).catch(() => "page gone");
    throw new Error(`${record}: not "${expected}" within ${WAIT_MS} ms; seen ${JSON.stringify(seen)}`, { cause: err });
  }
}

describe("presence", () => {
  let browser;
  before(async () => { browser = await launchBrowser(); });
  after(async () => { await browser?.close(); });

  test("a follower tab's record reaches the other admin through its leader, and leaves with the tab", { timeout: 60_000 }, async (t) => {
    const service = await startService();
    const leader = await openTab(browser, service, { actorId: "user_anna", name: "Anna" });
    const follower = await openTab(browser, service, { actorId: "user_anna", name: "Anna", context: leader.context });
    const ben = await openTab(browser, service, { actorId: "user_ben", name: "Ben" });
    t.after(async () => { await leader.context.close(); await ben.context.close(); await service.stop(); });
    assert.deepEqual([await leader.page.evaluate(() => window.push.role), await follower.page.evaluate(() => window.push.role)],
      ["leader", "follower"]);
    assert.equal(await openConnections(service.base), 2, "one connection per browser");

    await setPresence(follower.page, "order:o1", "editing");
    await setPresence(ben.page, "order:o1", "viewing");
    await waitForViewers(ben.page, "order:o1", "Anna:editing");
    await waitForViewers(follower.page, "order:o1", "Ben:viewing");

    // The leader tab has the same order open, only viewing: Anna still counts once, editing.
    await setPresence(leader.page, "order:o1", "viewing");
    await waitForViewers(leader.page, "order:o1", "Ben:viewing");
    await setPresence(leader.page, "order:o1", null);
    await setPresence(ben.page, "product:p1", "viewing");
    await setPresence(leader.page, "product:p1", "viewing");
    await waitForViewers(ben.page, "product:p1", "Anna:viewing");
    await waitForViewers(ben.page, "order:o1", "Anna:editing");

    // The follower tab closes: the leader, waiting on that tab's lock, drops its records.
    await follower.page.close();
    await waitForViewers(ben.page, "order:o1", "");
    await waitForViewers(ben.page, "product:p1", "Anna:viewing");
  });

  test("a follower's record survives its leader tab closing: the next leader reports it", { timeout: 60_000 }, async (t) => {
    const service = await startService();
    const leader = await openTab(browser, service, { actorId: "user_anna", name: "Anna" });
    const follower = await openTab(browser, service, { actorId: "user_anna", name: "Anna", context: leader.context });
    const ben = await openTab(browser, service, { actorId: "user_ben", name: "Ben" });
    t.after(async () => { await leader.context.close(); await ben.context.close(); await service.stop(); });

    await setPresence(follower.page, "order:o1", "viewing");
    await setPresence(ben.page, "order:o1", "viewing");
    await waitForViewers(ben.page, "order:o1", "Anna:viewing");
    await leader.page.close();
    await waitForState(follower.page, "open");
    assert.equal(await follower.page.evaluate(() => window.push.role), "leader");
    // Anna's old connection closed (she may vanish for a moment), then her new leader reports her again.
    await waitForViewers(ben.page, "order:o1", "Anna:viewing");
    await waitForViewers(follower.page, "order:o1", "Ben:viewing");
  });

  test("over SSE the leader reports by HTTP, and both admins see each other", { timeout: 60_000 }, async (t) => {
    const service = await startService();
    const anna = await openTab(browser, service, { actorId: "user_anna", name: "Anna", transports: ["sse"] });
    const annaFollower = await openTab(browser, service, { actorId: "user_anna", name: "Anna", context: anna.context, transports: ["sse"] });
    const ben = await openTab(browser, service, { actorId: "user_ben", name: "Ben", transports: ["sse"] });
    t.after(async () => { await anna.context.close(); await ben.context.close(); await service.stop(); });
    const reports = [];
    anna.page.on("request", (req) => { if (req.url().endsWith("/admin-ws/presence")) reports.push(req.method()); });
    assert.equal(await anna.page.evaluate(() => window.push.transport), "sse");

    await setPresence(anna.page, "order:o1", "viewing");
    await setPresence(ben.page, "order:o1", "editing");
    await waitForViewers(anna.page, "order:o1", "Ben:editing");
    await waitForViewers(ben.page, "order:o1", "Anna:viewing");
    await setPresence(annaFollower.page, "order:o1", "editing");
    await waitForViewers(ben.page, "order:o1", "Anna:editing");
    await waitForViewers(annaFollower.page, "order:o1", "Ben:editing");
    assert.ok(reports.length >= 1 && reports.every((m) => m === "POST"), "the leader tab reported over HTTP");

    await setPresence(ben.page, "order:o1", null);
    await waitForViewers(anna.page, "order:o1", "");
  });

  test("over SSE a refused report is told like on WebSocket: presence_refused naming the limit", { timeout: 60_000 }, async (t) => {
    const service = await startService({ env: { ADMIN_PUSH__PRESENCE__MAX_RECORDS: "1" } });
    const anna = await openTab(browser, service, { actorId: "user_anna", name: "Anna", transports: ["sse"] });
    t.after(async () => { await anna.context.close(); await service.stop(); });
    await anna.page.evaluate(() => {
      window.refusals = [];
      window.push.on("presence_refused", (data) => window.refusals.push(data));
    });
    await setPresence(anna.page, "order:o1", "viewing");
    await waitForViewers(anna.page, "order:o1", "");
    await setPresence(anna.page, "order:o2", "viewing");
    await anna.page.waitForFunction(() => window.refusals.length > 0, null, { timeout: WAIT_MS, polling: 20 });
    const [refusal] = await anna.page.evaluate(() => window.refusals);
    assert.equal(refusal.error, "too_many_records");
    assert.match(refusal.message, /presence report refused: HTTP 400/);
  });

  test("behind a round-robin balancer over two instances, SSE admins see each other with no sticky sessions", { timeout: 90_000 }, async (t) => {
    const redis = await startRedis();
    const env = { ADMIN_PUSH__HUB__BACKEND: "redis", ADMIN_PUSH__HUB__REDIS_URL: redis.url };
    const instances = [await startService({ env }), await startService({ env })];
    const nginx = await startNginx({ upstreamPorts: instances.map((i) => i.port), location: PLAIN_PROXY });
    t.after(async () => {
      await nginx.stop();
      for (const instance of instances) await instance.stop();
      await redis.stop();
    });
    const anna = await openTab(browser, nginx, { actorId: "user_anna", name: "Anna", transports: ["sse"] });
    const ben = await openTab(browser, nginx, { actorId: "user_ben", name: "Ben", transports: ["sse"] });
    t.after(async () => { await anna.context.close(); await ben.context.close(); });
    // Which way each of Ben's reports went: taken by the instance holding his stream (204), or
    // forwarded by the other one (202).
    const answers = [];
    ben.page.on("response", (res) => { if (res.url().endsWith("/admin-ws/presence")) answers.push(res.status()); });

    await setPresence(anna.page, "order:o1", "viewing");
    for (const [state, shown] of [["viewing", "Ben:viewing"], ["editing", "Ben:editing"], ["viewing", "Ben:viewing"], [null, ""]]) {
      await setPresence(ben.page, "order:o1", state);
      await waitForViewers(anna.page, "order:o1", shown);
    }
    t.diagnostic(`Ben's reports answered ${answers.join(", ")}`);
    assert.ok(answers.includes(202), `some of Ben's reports reached the instance without his stream: ${answers}`);
    assert.deepEqual(answers.filter((status) => status !== 202 && status !== 204), [], "none refused");
  });
});
