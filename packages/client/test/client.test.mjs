/**
 * The client's connection logic in Node against the real service: how refusals are classified
 * and shown, and what the status reports through an outage. (Sharing between tabs is tested in a
 * real browser.)
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AdminPush } from "../admin-push.js";
import { adminToken, emitProduct, freePort, openWebSocket, record, startService } from "./helpers.mjs";

/** Timers that keep the process alive: a client that gave up must hold none. */
const pendingTimers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

/** Consecutive repeats collapsed: ["a","a","b"] → ["a","b"]. */
const changes = (states) => states.filter((s, i) => s !== states[i - 1]);

const FAST = { minBackoffMs: 50, maxBackoffMs: 200, transports: ["ws"] };

describe("refusals", () => {
  test("a bad token is refused with the service's reason and not retried", async (t) => {
    const service = await startService();
    let tokenCalls = 0;
    const push = new AdminPush({ ...FAST, url: service.base, getToken: () => { tokenCalls++; return "not-a-jwt"; } });
    t.after(async () => { push.stop(); await service.stop(); });
    const timersBefore = pendingTimers();
    const { seen, until } = record(push);

    push.start();
    await until((s) => s.statuses.some((x) => x.state === "refused"), "refused");

    const refused = push.status;
    assert.equal(refused.state, "refused");
    assert.equal(refused.error.status, 401);
    assert.equal(refused.error.code, "unauthorized");
    assert.equal(refused.error.fatal, true);
    assert.match(refused.error.message, /401/);
    assert.equal(refused.retryAt, null, "no retry planned");
    assert.equal(seen.errors.length, 1);
    assert.equal(seen.errors[0].status, 401);
    assert.equal(tokenCalls, 1);
    assert.equal(pendingTimers(), timersBefore, "no timer left to retry with");
    // Node has no Web Locks before 24.5; where it has them, the one client leads.
    assert.equal(push.role, globalThis.navigator?.locks ? "leader" : "solo");
    assert.deepEqual(changes(seen.statuses.map((s) => s.state)), ["connecting", "refused"]);
  });

  test("an unknown event in the filter is refused with 400 naming it, though WebSocket hides the answer", async (t) => {
    const service = await startService();
    const push = new AdminPush({ ...FAST, url: service.base, getToken: () => adminToken(), events: ["nope.event"] });
    t.after(async () => { push.stop(); await service.stop(); });
    const { until } = record(push);

    push.start();
    await until((s) => s.statuses.some((x) => x.state === "refused"), "refused");

    const { error } = push.status;
    assert.equal(error.status, 400);
    assert.equal(error.code, "bad_request");
    assert.match(error.message, /events: unknown event "nope\.event"/);
  });

  test("refused, start() tries again", async (t) => {
    const service = await startService();
    let token = "not-a-jwt";
    const push = new AdminPush({ ...FAST, url: service.base, getToken: () => token });
    t.after(async () => { push.stop(); await service.stop(); });
    const { seen, until } = record(push);

    push.start();
    await until(() => push.state === "refused", "refused");
    token = adminToken();
    push.start();
    await until(() => push.state === "open", "open after start()");
    assert.deepEqual(changes(seen.statuses.map((s) => s.state)), ["connecting", "refused", "connecting", "open"]);
  });

  test("too many connections for one admin is shown and retried until a slot frees", async (t) => {
    const service = await startService({ env: { ADMIN_PUSH__LIMITS__MAX_CONNECTIONS_PER_ACTOR: "1" } });
    // The admin's one slot, held by a WebSocket (its close frame frees the slot at once).
    const holder = await openWebSocket(service);
    const push = new AdminPush({ ...FAST, url: service.base, getToken: () => adminToken() });
    t.after(async () => { holder.close(); push.stop(); await service.stop(); });
    const { seen, until } = record(push);

    push.start();
    const waiting = await until((s) => s.statuses.some((x) => x.state === "reconnecting"), "reconnecting");
    const status = waiting.statuses.find((x) => x.state === "reconnecting");
    assert.equal(status.error.status, 429);
    assert.equal(status.error.code, "too_many_connections");
    assert.equal(status.error.fatal, false);
    assert.match(status.error.message, /too many open connections for this admin/);
    assert.ok(status.retryAt >= Date.now() - 1000, "the next attempt is planned");

    holder.close();
    await until(() => push.state === "open", "open once the slot is free");
    assert.deepEqual(changes(seen.statuses.map((s) => s.state)), ["connecting", "reconnecting", "open"]);
  });
});

describe("status", () => {
  test("an outage is one reconnecting state, each attempt naming the next, until the service is back", async (t) => {
    const port = await freePort();
    const push = new AdminPush({ ...FAST, url: `http://127.0.0.1:${port}`, getToken: () => adminToken() });
    let service;
    t.after(async () => { push.stop(); await service?.stop(); });
    const { seen, until } = record(push);

    push.start();
    await until((s) => s.errors.length >= 3, "three failed attempts");
    service = await startService({ port });
    await until(() => push.state === "open", "open once the service is up");
    const id = await emitProduct(service.base, "p1");
    await until((s) => s.events.some((e) => e.id === id), "the event");

    assert.deepEqual(changes(seen.statuses.map((s) => s.state)), ["connecting", "reconnecting", "open"]);
    const retries = seen.statuses.filter((s) => s.state === "reconnecting");
    assert.ok(retries.length >= 3, "each failed attempt announces the next");
    assert.ok(retries.every((s) => Number.isFinite(s.retryAt) && s.error?.fatal === false && s.transport === null));
  });

  test("a failing getToken is retried, not a refusal", async (t) => {
    const service = await startService();
    let calls = 0;
    const push = new AdminPush({
      ...FAST,
      url: service.base,
      getToken: async () => { if (++calls < 3) throw new Error("session lookup failed"); return adminToken(); },
    });
    t.after(async () => { push.stop(); await service.stop(); });
    const { seen, until } = record(push);

    push.start();
    await until(() => push.state === "open", "open");
    assert.deepEqual(seen.errors.map((e) => e.message), ["session lookup failed", "session lookup failed"]);
    assert.deepEqual(changes(seen.statuses.map((s) => s.state)), ["connecting", "reconnecting", "open"]);
  });
});
