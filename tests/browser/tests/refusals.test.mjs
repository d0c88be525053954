/**
 * The live console tells the truth about refusals: the service's status and message are shown,
 * a refusal a retry cannot fix (bad token, unknown event in the filter, forbidden origin) stops the
 * retries until the user changes something, and a transient one (too many connections for the
 * admin, a full service) is retried with backoff.
 * The page runs on Playwright's clock, so "no retry" is checked by running minutes of timers at
 * once rather than by waiting.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  adminToken, openPage, sharedBrowserAndService, startClient, startService, waitForConnections, waitForState,
} from "../lib/harness.mjs";

const isTicket = (req) => req.method() === "POST" && req.url().endsWith("/admin-ws/ticket");

/** Counts the page's ticket requests (one per connection attempt). */
function countTickets(page) {
  const counter = { n: 0 };
  page.on("request", (req) => { if (isTicket(req)) counter.n++; });
  return counter;
}

/**
 * Runs ten minutes of the page's timers at once and asserts the console did not try again: a
 * retry would start in a timer callback, and its first step (a "connecting" status line in the
 * log) happens in that callback, before runFor returns.
 */
async function assertNoRetry(page, tickets) {
  const lines = await page.locator("#log li").count();
  await page.clock.runFor(10 * 60_000);
  assert.equal(await page.locator("#log li").count(), lines, "nothing logged: no new attempt");
  assert.equal(tickets.n, 1, "one ticket request in all");
  assert.equal(await page.textContent("#state"), "refused");
}

/**
 * Runs the page's clock to its next connection attempt and waits, in real time, for that attempt's
 * outcome: open, or refused with `status`. The clock never jumps while an attempt is in flight:
 * the jump would fire the attempt's own timeouts and fail it, on a busy machine every time.
 */
async function nextAttempt(page, status) {
  const refusals = page.locator("#log li.error", { hasText: `HTTP ${status}` });
  const before = await refusals.count();
  const started = page.waitForRequest(isTicket);
  await page.clock.runFor(2 * 60_000);
  await started;
  await page.locator("#state", { hasText: /^open$/ }).or(refusals.nth(before)).first().waitFor();
}

async function connectConsole(page, { token, filter = "" }) {
  await page.fill("#token", token);
  await page.fill("#filter", filter);
  await page.click("#connect");
}

const badge = (page, state) => page.locator("#state").getByText(state, { exact: true }).waitFor();

describe("the console shows refusals", () => {
  const shared = sharedBrowserAndService();

  test("a bad token shows 401 and the reason, and is not retried until the token changes", { timeout: 30_000 }, async (t) => {
    const { page, close } = await openPage(shared.browser, shared.service.base, { clock: true });
    t.after(close);
    const tickets = countTickets(page);

    await connectConsole(page, { token: "not-a-jwt" });
    await badge(page, "refused");
    const problem = await page.textContent("#problem");
    assert.match(problem, /HTTP 401/);
    assert.match(problem, /invalid token: malformed/, "the service's own message");
    assert.match(problem, /change the token/);

    await assertNoRetry(page, tickets);

    await connectConsole(page, { token: adminToken({ actorId: "user_fixed" }) });
    await badge(page, "open");
    assert.equal(await page.isHidden("#problem"), true, "the problem is cleared");
  });

  test("an unknown event in the filter shows 400 naming it, though the browser hides the handshake's answer", { timeout: 30_000 }, async (t) => {
    const { page, close } = await openPage(shared.browser, shared.service.base, { clock: true });
    t.after(close);
    const tickets = countTickets(page);

    await connectConsole(page, { token: adminToken({ actorId: "user_filter" }), filter: "nope.event" });
    await badge(page, "refused");
    const problem = await page.textContent("#problem");
    assert.match(problem, /HTTP 400/);
    assert.match(problem, /events: unknown event "nope\.event"/);

    await assertNoRetry(page, tickets);
  });

  test("a forbidden origin shows 403 and the reason, and is not retried", { timeout: 30_000 }, async (t) => {
    const strict = await startService({ env: { ADMIN_PUSH__AUTH__ALLOWED_ORIGINS: JSON.stringify(["https://admin.example.com"]) } });
    const { page, close } = await openPage(shared.browser, strict.base, { clock: true });
    t.after(async () => { await close(); await strict.stop(); });
    const tickets = countTickets(page);

    await connectConsole(page, { token: adminToken({ actorId: "user_origin" }) });
    await badge(page, "refused");
    const problem = await page.textContent("#problem");
    assert.match(problem, /HTTP 403/);
    assert.ok(problem.includes(`origin "${strict.base}" is not allowed`), problem);
    await assertNoRetry(page, tickets);
  });

  const busy = [
    { status: 429, limit: "MAX_CONNECTIONS_PER_ACTOR", holder: "user_busy", message: /too many open connections for this admin/ },
    { status: 503, limit: "MAX_CONNECTIONS", holder: "user_other", message: /the server is at its connection limit/ },
  ];
  for (const { status, limit, holder: holderActor, message } of busy) {
    test(`a busy service shows ${status} and the reason, and is retried until a slot frees`, { timeout: 60_000 }, async (t) => {
      const full = await startService({ env: { [`ADMIN_PUSH__LIMITS__${limit}`]: "1" } });
      // Another browser holds the only slot (the admin's own, or the whole service's).
      const holder = await openPage(shared.browser, full.base);
      await startClient(holder.page, { nextToken: () => adminToken({ actorId: holderActor }) });
      await waitForState(holder.page, "open");
      const { page, close } = await openPage(shared.browser, full.base, { clock: true });
      t.after(async () => { await close(); await holder.close(); await full.stop(); });

      await connectConsole(page, { token: adminToken({ actorId: "user_busy" }) });
      await badge(page, "reconnecting");
      await page.locator("#problem", { hasText: `HTTP ${status}` }).waitFor();
      const problem = await page.textContent("#problem");
      assert.match(problem, message);
      assert.match(problem, /Next attempt at \d\d:\d\d:\d\d/);

      await nextAttempt(page, status);
      assert.equal(await page.textContent("#state"), "reconnecting", "still reconnecting, never refused");

      await holder.close();
      // The service has released the only slot once its gauge shows no connection (the console's
      // refused attempts never hold one).
      await waitForConnections(full.base, 0);
      await nextAttempt(page, status);
      await badge(page, "open");
    });
  }
});
