/**
 * Screen-refresh receipts in the real Medusa admin with @admin-push/medusa: a product edited
 * elsewhere (the admin API, as another admin or a script would) refetches the open product page,
 * and once the page shows the change its tab tells the service, which counts it in
 * `admin_push_screen_refresh_seconds{event="product.updated",transport="ws"}`.
 *
 * The time the service measured is printed, not asserted: it depends on the machine.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  adminApi, launchBrowser, loggedInContext, openScreen, startStack, until, watchText,
} from "../lib/stack.mjs";

const COUNT = 'admin_push_screen_refresh_seconds_count{event="product.updated",transport="ws"}';
const SUM = 'admin_push_screen_refresh_seconds_sum{event="product.updated",transport="ws"}';

/** The service's /metrics samples named in `series` (0 for a series not there yet). */
async function samples(base, ...series) {
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  return series.map((name) => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Number(line.slice(name.length + 1)) : 0;
  });
}

describe("screen-refresh receipts from the Medusa admin", () => {
  let push, medusa, api, browser, context;
  before(async () => {
    ({ push, medusa } = await startStack());
    api = await adminApi(medusa.base);
    browser = await launchBrowser();
    context = await loggedInContext(browser, medusa.base);
  });
  after(async () => {
    await browser?.close();
    await medusa?.stop();
    await push?.stop();
  });

  test("a product edited elsewhere is counted in the service's screen-refresh histogram once its open page shows it", { timeout: 120_000 }, async (t) => {
    const title = `Receipt Lamp ${Date.now()}`;
    const { product } = await api("POST", "/admin/products", { title, options: [{ title: "Size", values: ["One"] }] });
    t.after(() => api("DELETE", `/admin/products/${product.id}`));
    const detail = await openScreen(context, medusa.base, `/app/products/${product.id}`);
    t.after(() => detail.page.close());
    await detail.page.getByText(title).first().waitFor();
    const frames = [];
    for (const ws of detail.sockets) {
      ws.on("framesent", ({ payload }) => {
        if (String(payload).includes('"receipt"')) frames.push(JSON.parse(String(payload)));
      });
    }
    assert.equal(detail.sockets.length, 1, "the page's tab holds the connection, over WebSocket");
    const [before] = await samples(push.base, COUNT);

    const renamed = `${title} renamed`;
    const shown = await watchText(detail.page, renamed);
    await api("POST", `/admin/products/${product.id}`, { title: renamed });
    await shown();

    // The page shows the change: its receipt follows the settled refetch, one per event, each
    // counted by the service (frames seen leaving the tab, and the service's count, agree).
    const distinct = () => new Set(frames.map((f) => f.id)).size;
    await until("a receipt for product.updated counted", async () => {
      const [now] = await samples(push.base, COUNT);
      return now > before && now - before === distinct();
    });
    assert.ok(frames.every((f) => f.type === "receipt" && typeof f.id === "string"), JSON.stringify(frames));
    assert.equal(frames.length, distinct(), `one receipt per event: ${JSON.stringify(frames)}`);
    const [count, sum] = await samples(push.base, COUNT, SUM);
    console.log(`product.updated → product page refetched and receipted: ${count} receipts, mean ${((sum / count) * 1000).toFixed(0)} ms`);
  });
});
