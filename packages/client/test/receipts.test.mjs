/**
 * Screen-refresh receipts against the real service: a receipt for an event in the sample is
 * observed in the service's /metrics by event name and transport, once however often it is
 * asked for; with a rate of 0 none is sent. And a presence report is repeated every third of the
 * TTL `ready` names. (Tabs sharing one connection and SSE, which Node cannot open, are tested in
 * a real browser by tests/browser.)
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { AdminPush } from "../admin-push.js";
import { emitProduct, namedToken, record, startService, watchPresence } from "./helpers.mjs";

const FAST = { minBackoffMs: 50, maxBackoffMs: 200, transports: ["ws"], shared: false };
const WAIT_MS = 10_000;

/** The service's /metrics text. */
async function metrics(service) {
  const res = await fetch(`${service.base}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The value of one sample line of /metrics (0 when the series does not exist yet). */
function sample(text, series) {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Polls /metrics until `series` reaches `value` or more; returns the text it was read from. */
async function untilSample(service, series, value) {
  const deadline = Date.now() + WAIT_MS;
  let text = "";
  while (Date.now() < deadline) {
    text = await metrics(service);
    if (sample(text, series) >= value) return text;
    await delay(50);
  }
  throw new Error(`${series} did not reach ${value} within ${WAIT_MS} ms; /metrics:\n${text}`);
}

const WS_COUNT = 'admin_push_screen_refresh_seconds_count{event="product.updated",transport="ws"}';

/** A started client, open, with what it received recorded. */
async function openClient(t, service, actorId = "user_anna") {
  const push = new AdminPush({ ...FAST, url: service.base, getToken: () => namedToken({ actorId, name: "Anna" }) });
  t.after(() => push.stop());
  const recorded = record(push);
  const ready = new Promise((resolve) => push.on("ready", resolve));
  push.start();
  await recorded.until(() => push.state === "open", "open");
  return { push, recorded, ready: await ready };
}

describe("screen-refresh receipts", () => {
  test("a receipt for a received event is observed by event and transport, once", async (t) => {
    const service = await startService();
    t.after(() => service.stop());
    const { push, recorded, ready } = await openClient(t, service);
    assert.equal(ready.receipt_rate, 1, "one tab open, far below receipts.sample_tabs: every event");

    assert.equal(push.receipt("1-1"), false, "an event this client never received");
    const id = await emitProduct(service.base, "prod_1");
    await recorded.until((s) => s.events.some((e) => e.id === id), "the event");
    assert.equal(push.receipt(id), true);
    assert.equal(push.receipt(id), false, "a second receipt for the same event");

    const text = await untilSample(service, WS_COUNT, 1);
    assert.equal(sample(text, WS_COUNT), 1);
    assert.equal(sample(text, 'admin_push_receipts_refused_total{reason="unknown_event"}'), 0);

    // Everything the client sent was read: a presence report sent after the receipts is answered
    // only once the frames before it were taken, and the count is still one.
    const sees = watchPresence(push, "product:prod_1");
    push.setPresence("product:prod_1", "viewing");
    await sees.until(() => true, "the service's answer to the report");
    assert.equal(sample(await metrics(service), WS_COUNT), 1);
  });

  test("with receipts.sample_tabs = 0 the rate is 0 and no receipt is sent", async (t) => {
    const service = await startService({ env: { ADMIN_PUSH__RECEIPTS__SAMPLE_TABS: "0" } });
    t.after(() => service.stop());
    const { push, recorded, ready } = await openClient(t, service);
    assert.equal(ready.receipt_rate, 0);

    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(await emitProduct(service.base, `prod_${i}`));
    await recorded.until((s) => ids.every((id) => s.events.some((e) => e.id === id)), "the events");
    for (const id of ids) assert.equal(push.receipt(id), false, `event ${id} is outside the sample`);

    // A report after them is answered once every frame before it was read: none was a receipt.
    const sees = watchPresence(push, "product:prod_0");
    push.setPresence("product:prod_0", "viewing");
    await sees.until(() => true, "the service's answer to the report");
    const text = await metrics(service);
    assert.equal(sample(text, WS_COUNT), 0, "no receipt counted");
    assert.ok(!/^admin_push_receipts_refused_total\{[^}]*\} [1-9]/m.test(text), "no receipt refused either");
  });

  test("a new receipt_rate replaces ready's as tabs open", async (t) => {
    const service = await startService({ env: { ADMIN_PUSH__RECEIPTS__SAMPLE_TABS: "2" } });
    t.after(() => service.stop());
    const { push, recorded, ready } = await openClient(t, service);
    assert.equal(ready.receipt_rate, 1, "alone: every event");
    const news = new Promise((resolve) => push.on("receipt_rate", resolve));
    // Three more tabs, of other browsers: four for a sample of two (three are not yet twice it).
    for (const actorId of ["user_ben", "user_carl", "user_dora"]) await openClient(t, service, actorId);
    assert.deepEqual(await news, { rate: 0.5 });

    const ids = [];
    for (let i = 0; i < 30; i++) ids.push(await emitProduct(service.base, `prod_${i}`));
    await recorded.until((s) => ids.every((id) => s.events.some((e) => e.id === id)), "the events");
    const sampled = ids.filter((id) => push.receipt(id)).length;
    // Half of 30 events; all 30 (the old rate) with a chance of 2^-30.
    assert.ok(sampled < 30, `${sampled} of 30 events sampled at a rate of 1/2`);
  });
});

describe("presence repetition", () => {
  test("a report is repeated every third of ready's presence_ttl_ms, so it never lapses", { timeout: 20_000 }, async (t) => {
    const service = await startService({ env: { ADMIN_PUSH__PRESENCE__TTL_SECS: "3" } });
    t.after(() => service.stop());
    // Counts the presence reports the client's WebSocket sends.
    const send = WebSocket.prototype.send;
    let reports = 0;
    WebSocket.prototype.send = function (data) {
      if (String(data).startsWith('{"type":"presence"')) reports++;
      return send.call(this, data);
    };
    t.after(() => { WebSocket.prototype.send = send; });
    const { push, ready } = await openClient(t, service);
    assert.equal(ready.presence_ttl_ms, 3000);
    const lists = [];
    push.on("presence", (data) => { if (data.record === "order:o1") lists.push(data.viewers.map((v) => v.actor_id)); });
    push.setPresence("order:o1", "viewing");

    // Five reports span four repetitions: past the 3 s TTL of the first. With the fixed 10 s of
    // old, the second would not even be due yet.
    const deadline = Date.now() + WAIT_MS;
    while (reports < 5) {
      if (Date.now() > deadline) throw new Error(`${reports} presence reports within ${WAIT_MS} ms`);
      await delay(50);
    }
    assert.ok(lists.length >= 1, "the service answered the report");
    assert.ok(lists.every((ids) => ids.join() === "user_anna"), `never lapsed: ${JSON.stringify(lists)}`);
  });
});
