/**
 * The browser client behind a real nginx that refuses WebSocket upgrades and buffers responses
 * by default: the client must fall back to SSE, and SSE must still arrive at once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  adminToken, emitProduct, launchBrowser, openPage, recorded, startClient, startNginx, startService,
  waitForEvents, waitUntilOpen,
} from "../lib/harness.mjs";

/**
 * Like a corporate proxy that blocks WebSocket: an upgrade request is refused, everything else is
 * proxied over HTTP/1.1 keep-alive with nginx's default `proxy_buffering on` left in place.
 */
const REFUSE_WEBSOCKET_AND_BUFFER = `
      if ($http_upgrade) { return 403; }
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering on;
      proxy_read_timeout 60s;`;

describe("behind an nginx that refuses WebSocket upgrades", () => {
  let browser;
  let service;
  let nginx;
  before(async () => {
    browser = await launchBrowser();
    service = await startService();
    nginx = await startNginx({ upstreamPort: service.port, location: REFUSE_WEBSOCKET_AND_BUFFER });
  });
  after(async () => {
    await browser?.close();
    await nginx?.stop();
    await service?.stop();
  });

  test("the page falls back to SSE and still receives events", { timeout: 30_000 }, async (t) => {
    const { page, close } = await openPage(browser, nginx.base);
    t.after(close);

    await startClient(page, { nextToken: () => adminToken() });
    await waitUntilOpen(page);
    const id = await emitProduct(service.base, "p1");
    await waitForEvents(page, [id]);

    const seen = await recorded(page);
    assert.equal(seen.statuses.at(-1).state, "open");
    assert.equal(seen.statuses.at(-1).transport, "sse", "status names the fallback transport");
    assert.equal(await page.evaluate(() => window.push.transport), "sse");
    assert.ok(seen.statuses.some((s) => s.state === "connecting" && s.transport === "ws"), "WebSocket was tried first");
    assert.ok(seen.errors.some((e) => /falling back to sse/.test(e)), `the fallback was reported: ${seen.errors}`);
    const ready = seen.control.find((c) => c.event === "ready");
    assert.equal(ready.data.transport, "sse");
    assert.deepEqual(seen.events.find((e) => e.id === id).data, { id: "p1" });
  });

  test("SSE events arrive at once through nginx's response buffering (X-Accel-Buffering: no)", { timeout: 30_000 }, async (t) => {
    const { page, close } = await openPage(browser, nginx.base);
    t.after(close);

    await startClient(page, { nextToken: () => adminToken(), options: { transports: ["sse"] } });
    await waitUntilOpen(page);
    // Several small events, each far below nginx's proxy buffer size: a buffering proxy would hold
    // them until the buffer fills or the stream ends.
    const latencies = [];
    for (let i = 0; i < 3; i++) {
      const sentAt = Date.now();
      const id = await emitProduct(service.base, `p${i}`);
      await waitForEvents(page, [id], 2000);
      latencies.push(Date.now() - sentAt);
    }
    t.diagnostic(`emit → page latency through nginx: ${latencies.join(", ")} ms`);
    assert.ok(latencies.every((ms) => ms < 2000));
    const seen = await recorded(page);
    assert.equal(seen.statuses.at(-1).transport, "sse");

    // nginx consumes X-Accel-Buffering, so check at the source that the service sends it (nginx
    // 1.22 happens to pass partial buffers on promptly anyway; other versions and setups may not).
    const direct = await fetch(`${service.base}/admin-sse`, {
      headers: { Authorization: `Bearer ${adminToken()}` },
      signal: AbortSignal.timeout(5000),
    });
    await direct.body.cancel();
    assert.equal(direct.status, 200);
    assert.equal(direct.headers.get("x-accel-buffering"), "no");
    assert.equal(direct.headers.get("cache-control"), "no-cache");
    assert.match(direct.headers.get("content-type"), /^text\/event-stream/);
  });
});
