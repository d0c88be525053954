/**
 * Presence against the real service: what a tab says it has open reaches the other admins on
 * the same record, by name and state, and nothing else does. (Tabs sharing one connection and
 * SSE, which Node cannot open, are tested in a real browser by tests/browser.)
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AdminPush } from "../admin-push.js";
import { namedToken, record, startService, watchPresence } from "./helpers.mjs";

const FAST = { minBackoffMs: 50, maxBackoffMs: 200, transports: ["ws"], shared: false };

/** A started client of one admin, open. */
async function openClient(t, service, actorId, name) {
  const push = new AdminPush({ ...FAST, url: service.base, getToken: () => namedToken({ actorId, name }) });
  t.after(() => push.stop());
  const { until } = record(push);
  push.start();
  await until(() => push.state === "open", `${name} open`);
  return push;
}

const names = (viewers) => viewers.map((v) => `${v.name}:${v.state}`).join(",");

describe("presence", () => {
  test("two admins on one order see each other, by name and state, and not on another order", async (t) => {
    const service = await startService();
    t.after(() => service.stop());
    const anna = await openClient(t, service, "user_anna", "Anna Berg");
    const ben = await openClient(t, service, "user_ben", "Ben Cole");
    const annaSees = watchPresence(anna, "order:o1");
    const benSees = watchPresence(ben, "order:o1");
    const annaSeesOther = watchPresence(anna, "order:o2");

    anna.setPresence("order:o1", "viewing");
    anna.setPresence("order:o2", "viewing");
    // Alone on the record: the list the service sends holds only herself, left out here.
    await annaSees.until((v) => v.length === 0, "nobody else");
    ben.setPresence("order:o1", "viewing");
    await annaSees.until((v) => names(v) === "Ben Cole:viewing", "Ben viewing");
    await benSees.until((v) => names(v) === "Anna Berg:viewing", "Anna viewing");
    assert.deepEqual(annaSees.seen.at(-1), [{ actor_id: "user_ben", name: "Ben Cole", state: "viewing" }]);

    ben.setPresence("order:o1", "editing");
    await annaSees.until((v) => names(v) === "Ben Cole:editing", "Ben editing");
    ben.setPresence("order:o1", null);
    await annaSees.until((v) => v.length === 0, "Ben gone");

    assert.ok(annaSeesOther.seen.every((v) => v.length === 0), "nobody else on order o2");
    assert.ok(benSees.seen.every((v) => v.every((x) => x.actor_id !== "user_ben")), "Ben never sees himself");
    assert.deepEqual(anna.presence, { "order:o1": "viewing", "order:o2": "viewing" });
  });

  test("an admin whose connection closes is gone at once; one that comes back is reported again", async (t) => {
    const service = await startService();
    t.after(() => service.stop());
    const anna = await openClient(t, service, "user_anna", "Anna");
    const ben = await openClient(t, service, "user_ben", "Ben");
    const annaSees = watchPresence(anna, "product:p1");
    anna.setPresence("product:p1", "viewing");
    ben.setPresence("product:p1", "editing");
    await annaSees.until((v) => names(v) === "Ben:editing", "Ben editing");

    ben.stop();
    await annaSees.until((v) => v.length === 0, "Ben gone after stop()");
    // The presence stays set across stop() and start(), and the new connection reports it.
    ben.start();
    await annaSees.until((v) => names(v) === "Ben:editing", "Ben back");
  });

  test("a report over the service's record limit is refused, and the limit is named", { timeout: 20_000 }, async (t) => {
    const service = await startService({ env: { ADMIN_PUSH__PRESENCE__MAX_RECORDS: "2" } });
    t.after(() => service.stop());
    const anna = await openClient(t, service, "user_anna", "Anna");
    const refusals = [];
    let refused;
    const once = new Promise((resolve) => { refused = resolve; });
    anna.on("presence_refused", (data) => { refusals.push(data); refused(); });
    const sees = watchPresence(anna, "order:o1");
    anna.setPresence("order:o1", "viewing");
    await sees.until((v) => v.length === 0, "her own report taken");
    anna.setPresence("order:o2", "viewing");
    anna.setPresence("order:o3", "viewing");
    await once;
    assert.equal(refusals[0].error, "too_many_records");
    assert.match(refusals[0].message, /2/);
  });

  test("a record not shaped <kind>:<id> is refused by the client", () => {
    const push = new AdminPush({ url: "http://127.0.0.1:1", getToken: () => "jwt", shared: false });
    assert.throws(() => push.setPresence("order 1", "viewing"), TypeError);
    assert.throws(() => push.setPresence("order:o1", /** @type {any} */ ("typing")), TypeError);
  });
});
