/**
 * The live console page (`/`) as a human uses it: paste a token, connect, watch events arrive.
 * Set ADMIN_PUSH_SCREENSHOT=/path.png to keep a screenshot of the page showing a live event.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { adminToken, emitProduct, openPage, sharedBrowserAndService } from "../lib/harness.mjs";

describe("the live console page", () => {
  const shared = sharedBrowserAndService();

  test("shows a live event after pasting a token and clicking Connect", { timeout: 30_000 }, async (t) => {
    const { page, problems, close } = await openPage(shared.browser, shared.service.base);
    t.after(close);

    await assert.doesNotReject(page.locator("#state").getByText("closed", { exact: true }).waitFor());
    await page.fill("#token", adminToken());
    await page.click("#connect");
    await page.locator("#state").getByText("open", { exact: true }).waitFor();

    const id = await emitProduct(shared.service.base, "p1");
    const line = page.locator("#log li", { hasText: "product.updated" });
    await line.first().waitFor();

    const text = await line.first().textContent();
    assert.match(text, /product\.updated/);
    assert.ok(text.includes(id), `the line shows the event id ${id}: ${text}`);
    assert.ok(text.includes('{"id":"p1"}'), `the line shows the data: ${text}`);
    // Newest first: the event is above the earlier status and ready lines.
    assert.match(await page.locator("#log li").first().textContent(), /product\.updated/);
    assert.equal(await page.textContent("#count-events"), "1");
    assert.equal(await page.textContent("#last-id"), id);
    assert.equal(await page.textContent("#transport-badge"), "ws");
    assert.deepEqual(problems, [], "no page errors");

    if (process.env.ADMIN_PUSH_SCREENSHOT) {
      await page.screenshot({ path: process.env.ADMIN_PUSH_SCREENSHOT, fullPage: true });
    }
  });
});
