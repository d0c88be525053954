/**
 * One connection per browser: tabs of one origin elect a leader that holds the only connection
 * and relays to the others; a page that leaves (closed, or frozen in the back/forward cache)
 * lets go of its connection, and nothing is lost on the way.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  adminToken, emitEvent, emitProduct, launchBrowser, openConnections, openPage, recorded, startClient, startService,
  waitForConnections, waitForEvents, waitForState, waitUntilOpen,
} from "../lib/harness.mjs";

/** Asserts the page received exactly `ids`, once each, in the order emitted. */
async function assertReceivedExactly(page, ids, what) {
  const got = (await recorded(page)).events.map((e) => e.id);
  assert.deepEqual(got, ids, `${what}: every event once, in emitted order`);
}

describe("tabs of one browser", () => {
  let browser;
  before(async () => { browser = await launchBrowser({ backForwardCache: true }); });
  after(async () => { await browser?.close(); });

  test("three tabs share one connection and lose nothing when the leader tab closes", { timeout: 60_000 }, async (t) => {
    const service = await startService();
    const first = await openPage(browser, service.base);
    const tabs = [first, await openPage(browser, service.base, { context: first.context }),
      await openPage(browser, service.base, { context: first.context })];
    t.after(async () => { await first.context.close(); await service.stop(); });

    for (const { page } of tabs) {
      await startClient(page, { nextToken: () => adminToken() });
      await waitForState(page, "open");
    }
    const roles = await Promise.all(tabs.map(({ page }) => page.evaluate(() => window.push.role)));
    assert.deepEqual(roles.toSorted(), ["follower", "follower", "leader"]);
    assert.equal(await openConnections(service.base), 1, "one connection for three tabs");
    for (const { page } of tabs) {
      const ready = (await recorded(page)).control.filter((c) => c.event === "ready");
      assert.equal(ready.length, 1, "every tab is told its (shared) connection is ready");
    }

    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await emitProduct(service.base, `before-${i}`));
    for (const { page } of tabs) await waitForEvents(page, ids);

    // Close the leader while events keep coming: some reach it and are relayed, some arrive while
    // no tab holds a connection, some after the next leader resumed.
    const leader = tabs[roles.indexOf("leader")];
    const rest = tabs.filter((tab) => tab !== leader);
    for (let i = 0; i < 5; i++) ids.push(await emitProduct(service.base, `closing-${i}`));
    const closing = Date.now();
    const closed = leader.page.close();
    for (let i = 0; i < 10; i++) ids.push(await emitProduct(service.base, `handover-${i}`));
    await closed;
    for (const { page } of rest) await waitForState(page, "open");
    t.diagnostic(`leader tab closed → the others open again on the next leader's connection: ${Date.now() - closing} ms`);
    for (let i = 0; i < 3; i++) ids.push(await emitProduct(service.base, `after-${i}`));

    for (const { page } of rest) {
      await waitForEvents(page, ids);
      await assertReceivedExactly(page, ids, "a tab that stayed");
      const seen = await recorded(page);
      assert.equal(seen.control.filter((c) => c.event === "resync").length, 0, "resumed, no resync");
    }
    const after = await Promise.all(rest.map(({ page }) => page.evaluate(() => window.push.role)));
    assert.deepEqual(after.toSorted(), ["follower", "leader"], "another tab took over");
    await waitForConnections(service.base, 1);
  });

  test("a tab that took over before any event was relayed resumes from the leader's ready point", { timeout: 60_000 }, async (t) => {
    const service = await startService();
    const first = await openPage(browser, service.base);
    await startClient(first.page, { nextToken: () => adminToken() });
    await waitForState(first.page, "open");
    // The second tab joins an open connection: it is welcomed, and no event has been relayed yet.
    const second = await openPage(browser, service.base, { context: first.context });
    t.after(async () => { await first.context.close(); await service.stop(); });
    await startClient(second.page, { nextToken: () => adminToken() });
    await waitForState(second.page, "open");
    assert.equal(await second.page.evaluate(() => window.push.role), "follower");

    // Hold the next leader's ticket request, so an event is surely published while no tab holds
    // a connection: only a resume from the old leader's point can bring it.
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    let asked;
    const ticketAsked = new Promise((resolve) => { asked = resolve; });
    await second.page.route("**/admin-ws/ticket", async (route) => {
      asked();
      await held;
      await route.continue();
    });
    await first.page.close();
    await ticketAsked;
    const ids = [await emitProduct(service.base, "during-handover")];
    release();
    await waitForState(second.page, "open");
    ids.push(await emitProduct(service.base, "after"));
    await waitForEvents(second.page, ids);
    await assertReceivedExactly(second.page, ids, "the tab that took over");
    const seen = await recorded(second.page);
    assert.equal(seen.control.filter((c) => c.event === "resync").length, 0, "resumed, no resync");
  });

  test("over SSE, an event name only a follower tab listens for reaches it through the leader", { timeout: 30_000 }, async (t) => {
    // SSE delivers a named event only to a listener for that name, so the leader must learn it.
    const service = await startService({ env: { ADMIN_PUSH__EVENTS__EXTRA: JSON.stringify(["shop.note"]) } });
    const first = await openPage(browser, service.base);
    const second = await openPage(browser, service.base, { context: first.context });
    t.after(async () => { await first.context.close(); await service.stop(); });

    for (const { page } of [first, second]) {
      await startClient(page, { nextToken: () => adminToken(), options: { transports: ["sse"] } });
      await waitForState(page, "open");
    }
    assert.equal(await second.page.evaluate(() => window.push.role), "follower");
    await second.page.evaluate(() => {
      window.notes = [];
      window.push.on("shop.note", (data) => window.notes.push(data));
    });
    // The follower posted its new name to the leader before this emit left Node; once the
    // leader has relayed the marker back it has had that message in its queue for a round trip.
    const marker = await emitProduct(service.base, "marker");
    await waitForEvents(second.page, [marker]);
    const id = await emitEvent(service.base, "shop.note", { text: "hello" });
    await waitForEvents(second.page, [id]);
    assert.deepEqual(await second.page.evaluate(() => window.notes), [{ text: "hello" }]);
  });

  test("tabs that opt out with shared: false connect on their own", { timeout: 30_000 }, async (t) => {
    const service = await startService();
    const first = await openPage(browser, service.base);
    const second = await openPage(browser, service.base, { context: first.context });
    t.after(async () => { await first.context.close(); await service.stop(); });

    for (const { page } of [first, second]) {
      await startClient(page, { nextToken: () => adminToken(), options: { shared: false } });
      await waitUntilOpen(page);
      assert.equal(await page.evaluate(() => window.push.role), "solo");
    }
    await waitForConnections(service.base, 2);
  });

  test("a leader tab that is frozen hands over, and the leader catches it up when it resumes", { timeout: 60_000 }, async (t) => {
    const service = await startService();
    const first = await openPage(browser, service.base);
    const second = await openPage(browser, service.base, { context: first.context });
    t.after(async () => { await first.context.close(); await service.stop(); });

    await startClient(first.page, { nextToken: () => adminToken() });
    await waitForState(first.page, "open");
    await startClient(second.page, { nextToken: () => adminToken() });
    await waitForState(second.page, "open");
    assert.equal(await first.page.evaluate(() => window.push.role), "leader");
    const ids = [await emitProduct(service.base, "before")];
    for (const { page } of [first, second]) await waitForEvents(page, ids);

    // Chrome freezes background tabs to save power after a `freeze` event (headless Chromium
    // never hides a page, so the event is dispatched here; the page just keeps running).
    await first.page.evaluate(() => document.dispatchEvent(new Event("freeze")));
    await second.page.waitForFunction(() => window.push.role === "leader");
    await waitForState(second.page, "open");
    for (let i = 0; i < 3; i++) ids.push(await emitProduct(service.base, `frozen-${i}`));
    await waitForEvents(second.page, ids);
    await waitForConnections(service.base, 1);
    assert.equal((await recorded(first.page)).events.length, 1, "a frozen tab receives nothing");

    await first.page.evaluate(() => document.dispatchEvent(new Event("resume")));
    await waitForEvents(first.page, ids);
    ids.push(await emitProduct(service.base, "resumed"));
    for (const { page } of [first, second]) {
      await waitForEvents(page, ids);
      await assertReceivedExactly(page, ids, "across the freeze");
    }
    assert.equal(await first.page.evaluate(() => window.push.role), "follower");
    assert.equal((await recorded(first.page)).control.filter((c) => c.event === "resync").length, 0,
      "caught up from the new leader's recent events, no resync");
    await waitForConnections(service.base, 1);
  });

  test("a page in the back/forward cache holds no connection and resumes when restored", { timeout: 60_000 }, async (t) => {
    const service = await startService();
    const { page, close } = await openPage(browser, service.base);
    t.after(async () => { await close(); await service.stop(); });

    await startClient(page, { nextToken: () => adminToken() });
    await waitUntilOpen(page);
    const ids = [await emitProduct(service.base, "before")];
    await waitForEvents(page, ids);
    await waitForConnections(service.base, 1);

    await page.goto(`${service.base}/healthz`);
    await waitForConnections(service.base, 0);
    for (let i = 0; i < 3; i++) ids.push(await emitProduct(service.base, `away-${i}`));

    // A restore from the cache fires no load event, so only wait for the navigation to commit.
    const back = Date.now();
    await page.goBack({ waitUntil: "commit" });
    assert.equal(await page.evaluate(() => typeof window.t), "object",
      "the page came back from the back/forward cache with its state (not reloaded)");
    await waitUntilOpen(page, { readies: 2 });
    t.diagnostic(`back from the cache → open and resumed: ${Date.now() - back} ms`);
    ids.push(await emitProduct(service.base, "back"));
    await waitForEvents(page, ids);
    await assertReceivedExactly(page, ids, "across the stay in the cache");

    const seen = await recorded(page);
    assert.equal(seen.control.filter((c) => c.event === "resync").length, 0, "resumed from its last id");
    const states = seen.statuses.map((s) => s.state).filter((s, i, all) => s !== all[i - 1]);
    assert.deepEqual(states, ["connecting", "open", "reconnecting", "open"]);
    await waitForConnections(service.base, 1);
  });
});
