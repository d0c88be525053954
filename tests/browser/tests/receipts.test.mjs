/**
 * Screen-refresh receipts in a real browser: tabs of one browser share one connection, so a
 * follower tab's receipt goes to the leader over the BroadcastChannel and leaves on the leader's
 * connection: a frame on WebSocket, a POST over SSE; once per event however many tabs ask. The
 * service's /metrics shows it by event name and transport.
 *
 * The pages run the client file of the package as it is on disk (the binary embeds the one it
 * was built with), so these tests need no rebuild of the service to follow the client.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import {
  WAIT_MS, adminToken, emitProduct, launchBrowser, openPage, startClient, startService, waitForEvents, waitForState,
} from "../lib/harness.mjs";

const CLIENT_JS = readFileSync(new URL("../../../packages/client/admin-push.js", import.meta.url), "utf8");

/** A browser (context) whose pages load the client from disk. */
async function newBrowserContext(browser) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  await context.route("**/static/admin-push.js", (route) =>
    route.fulfill({ status: 200, contentType: "text/javascript", body: CLIENT_JS }));
  return context;
}

/**
 * A tab of `context`, its client open, recording the receipts it sends itself: WebSocket frames
 * and POSTs to the receipt route (with their answers' statuses).
 */
async function openTab(browser, service, context, transports) {
  const tab = await openPage(browser, service.base, { context });
  const sent = { frames: [], posts: [], answers: [] };
  tab.page.on("websocket", (ws) => ws.on("framesent", ({ payload }) => {
    if (String(payload).includes('"receipt"')) sent.frames.push(JSON.parse(String(payload)));
  }));
  tab.page.on("request", (req) => {
    if (req.url().endsWith("/admin-ws/receipt")) sent.posts.push(JSON.parse(req.postData() ?? "null"));
  });
  tab.page.on("response", (res) => {
    if (res.url().endsWith("/admin-ws/receipt")) sent.answers.push(res.status());
  });
  await startClient(tab.page, { nextToken: () => adminToken({ actorId: "user_anna" }), options: { transports } });
  await waitForState(tab.page, "open");
  return { ...tab, sent };
}

/** One sample line of the service's /metrics (0 when the series does not exist yet). */
async function sample(service, series) {
  const text = await (await fetch(`${service.base}/metrics`, { signal: AbortSignal.timeout(WAIT_MS) })).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Polls /metrics until `series` is at least `value`. */
async function untilSample(service, series, value) {
  const deadline = Date.now() + WAIT_MS;
  let now = 0;
  while ((now = await sample(service, series)) < value) {
    if (Date.now() > deadline) throw new Error(`${series} is ${now}, not ${value}, after ${WAIT_MS} ms`);
    await delay(50);
  }
  return now;
}

/** Polls `check()` (in Node) until true. */
async function until(check, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${WAIT_MS} ms: ${what}`);
    await delay(20);
  }
}

const receipt = (page, id) => page.evaluate((id) => window.push.receipt(id), id);
const count = (transport) => `admin_push_screen_refresh_seconds_count{event="product.updated",transport="${transport}"}`;

describe("screen-refresh receipts", () => {
  let browser;
  before(async () => { browser = await launchBrowser(); });
  after(async () => { await browser?.close(); });

  test("on WebSocket, followers' receipts leave as one frame on the leader's connection", { timeout: 60_000 }, async (t) => {
    const service = await startService();
    const context = await newBrowserContext(browser);
    t.after(async () => { await context.close(); await service.stop(); });
    const leader = await openTab(browser, service, context, ["ws"]);
    const first = await openTab(browser, service, context, ["ws"]);
    const second = await openTab(browser, service, context, ["ws"]);
    assert.deepEqual(
      await Promise.all([leader, first, second].map((tab) => tab.page.evaluate(() => window.push.role))),
      ["leader", "follower", "follower"],
    );

    const id = await emitProduct(service.base, "prod_1");
    for (const tab of [leader, first, second]) await waitForEvents(tab.page, [id]);
    // Both followers were told the event is in the sample (one tab open: the rate is 1).
    assert.equal(await receipt(first.page, id), true);
    assert.equal(await receipt(first.page, id), false, "the same tab asks only once");
    await untilSample(service, count("ws"), 1);
    await until(() => leader.sent.frames.length >= 1, "the leader's receipt frame");
    assert.equal(await receipt(leader.page, id), false, "the leader already sent it");

    // The second follower asks too, then reports a record: the leader takes both messages in
    // order, so once the service's answer to the report comes back to that tab, the leader has
    // handled the receipt and the service has read every frame before the report.
    const asked = await second.page.evaluate((id) => {
      window.answered = false;
      window.push.onPresence("product:prod_1", () => { window.answered = true; });
      const asked = window.push.receipt(id);
      window.push.setPresence("product:prod_1", "viewing");
      return asked;
    }, id);
    assert.equal(asked, true, "the second follower was told the event is in the sample too");
    await second.page.waitForFunction(() => window.answered, null, { timeout: WAIT_MS, polling: 20 });
    assert.equal(await sample(service, count("ws")), 1);
    assert.deepEqual(leader.sent.frames, [{ type: "receipt", id }]);
    assert.deepEqual([first.sent.frames, second.sent.frames], [[], []], "followers hold no connection");
  });

  test("over SSE a follower's receipt is the leader's POST, answered 204, counted once", { timeout: 60_000 }, async (t) => {
    const service = await startService();
    const context = await newBrowserContext(browser);
    t.after(async () => { await context.close(); await service.stop(); });
    const leader = await openTab(browser, service, context, ["sse"]);
    const follower = await openTab(browser, service, context, ["sse"]);
    assert.equal(await follower.page.evaluate(() => window.push.role), "follower");
    const connection = await leader.page.evaluate(() => window.t.control.find((c) => c.event === "ready").data.connection);

    const id = await emitProduct(service.base, "prod_1");
    for (const tab of [leader, follower]) await waitForEvents(tab.page, [id]);
    assert.equal(await receipt(follower.page, id), true);
    await until(() => leader.sent.answers.length >= 1, "the answer to the leader's receipt");
    assert.deepEqual(leader.sent.answers, [204]);
    assert.deepEqual(leader.sent.posts, [{ connection, id }]);
    assert.deepEqual(follower.sent.posts, []);
    assert.equal(await sample(service, count("sse")), 1);
    assert.equal(await receipt(leader.page, id), false, "the leader already sent it");
    assert.equal(await receipt(follower.page, id), false);
    assert.deepEqual(leader.sent.posts, [{ connection, id }]);
  });
});
