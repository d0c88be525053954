/**
 * The status a page shows through an outage: the real service is killed and restarted, and the
 * client reports one "reconnecting" (with the time of its next attempt) until it is back.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  adminToken, emitProduct, launchBrowser, openPage, recorded, startClient, startService, waitForEvents,
  waitForState, waitUntilOpen,
} from "../lib/harness.mjs";

describe("the status through an outage", () => {
  let browser;
  before(async () => { browser = await launchBrowser(); });
  after(async () => { await browser?.close(); });

  test("does not flicker while the service is down, and names the next attempt", { timeout: 60_000 }, async (t) => {
    let service = await startService();
    const port = service.port;
    const { page, close } = await openPage(browser, service.base);
    t.after(async () => { await close(); await service.stop(); });

    await startClient(page, { nextToken: () => adminToken(), options: { minBackoffMs: 100, maxBackoffMs: 400 } });
    await waitUntilOpen(page);
    const ids = [await emitProduct(service.base, "before")];

    await service.stop("SIGKILL");
    await waitForState(page, "reconnecting");
    // Several failed attempts while the service is down.
    await page.waitForFunction(() => window.t.errors.length >= 3, null, { timeout: 10_000, polling: 20 });
    service = await startService({ port });
    await waitUntilOpen(page, { readies: 2 });
    ids.push(await emitProduct(service.base, "after"));
    await waitForEvents(page, ids);

    const seen = await recorded(page);
    const outage = seen.statuses.slice(seen.statuses.findIndex((s) => s.state === "reconnecting"));
    const states = outage.map((s) => s.state).filter((s, i, all) => s !== all[i - 1]);
    assert.deepEqual(states, ["reconnecting", "open"], `one state through the outage: ${JSON.stringify(seen.statuses)}`);
    const retries = outage.filter((s) => s.state === "reconnecting");
    assert.ok(retries.length >= 3, "each failed attempt announced the next one");
    assert.ok(retries.every((s) => Number.isFinite(s.retryAt) && s.transport === null));
    assert.ok(retries.slice(1).every((s) => s.error && !s.error.fatal), "with the reason of the last failure");
  });
});
