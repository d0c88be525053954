/**
 * The browser client (`/static/admin-push.js`) in a real Chromium against the real service:
 * direct WebSocket delivery, a service restart mid-session, and a token that expires mid-session.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  WAIT_MS, adminToken, emitProduct, launchBrowser, openPage, recorded, startClient, startService,
  waitForControl, waitForEvents, waitUntilOpen,
} from "../lib/harness.mjs";

/** Asserts `ids` arrived exactly once each, in the order emitted. */
function assertReceivedInOrder(events, ids, what) {
  const got = events.map((e) => e.id).filter((id) => ids.includes(id));
  assert.deepEqual(got, ids, `${what}: every event once, in emitted order`);
}

describe("the browser client", () => {
  let browser;
  before(async () => { browser = await launchBrowser(); });
  after(async () => { await browser?.close(); });

  test("receives an emitted event over WebSocket and reports transport ws", { timeout: 30_000 }, async (t) => {
    const service = await startService();
    const { page, problems, close } = await openPage(browser, service.base);
    t.after(async () => { await close(); await service.stop(); });

    await startClient(page, { nextToken: () => adminToken() });
    await waitUntilOpen(page);
    const id = await emitProduct(service.base, "p1");
    await waitForEvents(page, [id]);

    const seen = await recorded(page);
    const event = seen.events.find((e) => e.id === id);
    assert.equal(event.event, "product.updated");
    assert.deepEqual(event.data, { id: "p1" });
    assert.deepEqual(seen.statuses.at(-1).state, "open");
    assert.equal(seen.statuses.at(-1).transport, "ws", "status names the transport");
    assert.equal(await page.evaluate(() => window.push.transport), "ws");
    assert.equal(seen.control[0].event, "ready");
    assert.equal(seen.control[0].data.transport, "ws");
    assert.deepEqual(problems, [], "no page errors");
  });

  test("resumes after the service restarts on the same port, with a resync and no silent loss", { timeout: 60_000 }, async (t) => {
    let service = await startService();
    const port = service.port;
    const { page, close } = await openPage(browser, service.base);
    t.after(async () => { await close(); await service.stop(); });

    // Small backoff keeps the test short; the client's logic is unchanged.
    await startClient(page, { nextToken: () => adminToken(), options: { minBackoffMs: 100, maxBackoffMs: 1000 } });
    await waitUntilOpen(page);
    const beforeIds = [await emitProduct(service.base, "before-1"), await emitProduct(service.base, "before-2")];
    await waitForEvents(page, beforeIds);

    // SIGTERM: the service drains (reconnect{after_ms} to every connection, WS close 1012) and exits.
    const stopped = Date.now();
    await service.stop("SIGTERM");
    const drainedIn = Date.now() - stopped;
    await waitForControl(page, "reconnect");
    service = await startService({ port });
    const restartedAt = Date.now();

    // Emitted before the client is back: the memory hub of the new process holds it, but the client's
    // resume id is from the old process, so either it arrives or the client is told to resync.
    const early = await emitProduct(service.base, "after-early");
    await waitUntilOpen(page, { readies: 2, ms: 15_000 });
    const reopenedIn = Date.now() - restartedAt;
    const afterIds = [];
    for (let i = 1; i <= 3; i++) afterIds.push(await emitProduct(service.base, `after-${i}`));
    await waitForEvents(page, afterIds);

    const seen = await recorded(page);
    t.diagnostic(`drain took ${drainedIn} ms; client open again (${seen.statuses.at(-1).transport}) ${reopenedIn} ms after the new process was healthy; ${seen.errors.length} connect errors while it was down`);
    assertReceivedInOrder(seen.events, beforeIds, "before the restart");
    assertReceivedInOrder(seen.events, afterIds, "after the restart");
    const resyncs = seen.control.filter((c) => c.event === "resync");
    const gotEarly = seen.events.some((e) => e.id === early);
    assert.ok(gotEarly || resyncs.length > 0, "the event emitted during the restart arrived, or a resync told the app to refetch");
    // The memory hub forgets history on restart: the old resume point is from another epoch.
    assert.equal(resyncs.length, 1, `exactly one resync: ${JSON.stringify(seen.control)}`);
    assert.equal(resyncs[0].data.reason, "gap");
    const reconnect = seen.control.find((c) => c.event === "reconnect");
    assert.ok(Number.isFinite(reconnect.data.after_ms) && reconnect.data.after_ms <= 1000, "reconnect hint within drain_secs");
    // No event id is delivered twice, across both processes.
    const ids = seen.events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `no duplicates: ${ids}`);
  });

  for (const transport of ["ws", "sse"]) {
    test(`replaces an expiring token via getToken without losing events (${transport})`, { timeout: 60_000 }, async (t) => {
      const service = await startService({ env: { ADMIN_PUSH__AUTH__LEEWAY_SECS: "0" } });
      const { page, close } = await openPage(browser, service.base);
      t.after(async () => { await close(); await service.stop(); });

      // First token: ~3 s; every later one: an hour.
      const client = await startClient(page, {
        nextToken: (call) => adminToken({ secs: call === 1 ? 3 : 3600 }),
        options: { transports: [transport] },
      });
      await waitUntilOpen(page);

      // Emit a steady stream across the expiry, so events land before, during and after the
      // reconnect; the stream ends once the client is back with its new token.
      const ids = [];
      const deadline = Date.now() + WAIT_MS;
      while (Date.now() < deadline) {
        ids.push(await emitProduct(service.base, `p${ids.length}`));
        const seen = await recorded(page);
        const readies = seen.control.filter((c) => c.event === "ready").length;
        if (readies >= 2 && ids.length >= 5) break;
        await new Promise((resolve) => setTimeout(resolve, 100)); // emission pace, not synchronisation
      }
      const last = await emitProduct(service.base, "after-refresh");
      ids.push(last);
      await waitForEvents(page, ids);

      const seen = await recorded(page);
      const authExpired = seen.control.filter((c) => c.event === "auth_expired");
      const readies = seen.control.filter((c) => c.event === "ready");
      t.diagnostic(`${ids.length} events emitted; auth_expired at +${authExpired[0] ? authExpired[0].at - readies[0].at : "?"} ms after the first ready; getToken calls: ${client.tokenCalls()}`);
      // Over WebSocket the server may close with 4401 before (or instead of) the auth_expired frame
      // reaching the page; either way the client must have reconnected with a fresh token.
      assert.ok(readies.length >= 2, "the client reconnected after the token expired");
      if (transport === "sse") assert.ok(authExpired.length >= 1, "SSE tells the client auth_expired");
      assert.ok(client.tokenCalls() >= 2, `getToken called again (${client.tokenCalls()} calls)`);
      assert.equal(seen.tokenCalls, client.tokenCalls());
      assertReceivedInOrder(seen.events, ids, "across the token expiry");
      assert.equal(seen.control.filter((c) => c.event === "resync").length, 0, "resumed from history, no resync");
    });
  }
});
