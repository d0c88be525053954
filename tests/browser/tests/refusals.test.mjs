/**
 * The live console tells the truth about refusals: the service's status and message are shown,
 * a refusal a retry cannot fix (bad token, unknown event in the filter) stops the retries until
 * the user changes something, and a transient one (too many connections) is retried with backoff.
 * The page runs on Playwright's clock, so "no retry" is checked by running minutes of timers at
 * once rather than by waiting.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  adminToken, launchBrowser, openPage, startClient, startService, waitForState,
} from "../lib/harness.mjs";

/** Counts the page's ticket requests (one per connection attempt). */
function countTickets(page) {
  const counter = { n: 0 };
  page.on("request", (req) => { if (req.method() === "POST" && req.url().endsWith("/admin-ws/ticket")) counter.n++; });
  return counter;
}

async function connectConsole(page, { token, filter = "" }) {
  await page.fill("#token", token);
  await page.fill("#filter", filter);
  await page.click("#connect");
}

const badge = (page, state) => page.locator("#state").getByText(state, { exact: true }).waitFor();

describe("the console shows refusals", () => {
  let browser;
  let service;
  before(async () => {
    browser = await launchBrowser();
    service = await startService({ env: { ADMIN_PUSH__LIMITS__MAX_CONNECTIONS_PER_ACTOR: "1" } });
  });
  after(async () => {
    await browser?.close();
    await service?.stop();
  });

  test("a bad token shows 401 and the reason, and is not retried until the token changes", { timeout: 30_000 }, async (t) => {
    const { page, close } = await openPage(browser, service.base, { clock: true });
    t.after(close);
    const tickets = countTickets(page);

    await connectConsole(page, { token: "not-a-jwt" });
    await badge(page, "refused");
    const problem = await page.textContent("#problem");
    assert.match(problem, /HTTP 401/);
    assert.match(problem, /invalid token: malformed/, "the service's own message");
    assert.match(problem, /change the token/);

    await page.clock.runFor(10 * 60_000);
    assert.equal(tickets.n, 1, "ten minutes later, still the one attempt");
    assert.equal(await page.textContent("#state"), "refused");

    await connectConsole(page, { token: adminToken({ actorId: "user_fixed" }) });
    await badge(page, "open");
    assert.equal(await page.isHidden("#problem"), true, "the problem is cleared");
  });

  test("an unknown event in the filter shows 400 naming it, though the browser hides the handshake's answer", { timeout: 30_000 }, async (t) => {
    const { page, close } = await openPage(browser, service.base, { clock: true });
    t.after(close);
    const tickets = countTickets(page);

    await connectConsole(page, { token: adminToken({ actorId: "user_filter" }), filter: "nope.event" });
    await badge(page, "refused");
    const problem = await page.textContent("#problem");
    assert.match(problem, /HTTP 400/);
    assert.match(problem, /events: unknown event "nope\.event"/);

    await page.clock.runFor(10 * 60_000);
    assert.equal(tickets.n, 1, "not retried");
  });

  test("too many connections for the admin shows 429 and keeps retrying until a slot frees", { timeout: 60_000 }, async (t) => {
    // Another browser holds the admin's only slot.
    const holder = await openPage(browser, service.base);
    const token = adminToken({ actorId: "user_busy" });
    await startClient(holder.page, { nextToken: () => token });
    await waitForState(holder.page, "open");
    const { page, close } = await openPage(browser, service.base, { clock: true });
    t.after(async () => { await close(); await holder.close(); });
    const tickets = countTickets(page);

    await connectConsole(page, { token });
    await badge(page, "reconnecting");
    await page.locator("#problem", { hasText: "HTTP 429" }).waitFor();
    const problem = await page.textContent("#problem");
    assert.match(problem, /too many open connections for this admin/);
    assert.match(problem, /Next attempt at \d\d:\d\d:\d\d/);

    await page.clock.runFor(2 * 60_000);
    await page.waitForFunction(() => document.querySelector("#problem").textContent.includes("HTTP 429"));
    assert.ok(tickets.n >= 2, `still retrying (${tickets.n} attempts)`);
    assert.equal(await page.textContent("#state"), "reconnecting");

    await holder.close();
    await page.clock.runFor(2 * 60_000); // the next attempt, however far the backoff put it
    await badge(page, "open");
  });
});
