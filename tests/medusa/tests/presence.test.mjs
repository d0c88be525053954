/**
 * Presence in the real Medusa admin with @admin-push/medusa: two different admin users, each in
 * a browser of their own, see each other on the order both have open (initials, and their name
 * and state on hover), not on another order, and no longer once one of them has left (or their
 * browser vanished); the one who opens an edit form while the other is editing is warned.
 *
 * Times (from the moment one admin's page finished loading or navigating until the other's
 * screen showed it) are printed, not asserted: they depend on the machine.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  WAIT_MS, adminApi, createAdmin, launchBrowser, liveIndicator, loggedInAs, loggedInContext, openScreen,
  signalBrowser, startStack,
} from "../lib/stack.mjs";

/** The service's `presence.ttl_secs` (its default): how long a report stands unless repeated. */
const PRESENCE_TTL_MS = 30_000;

const SECOND = { email: "ben.second@example.com", password: "e2e-second-password", first_name: "Ben", last_name: "Second" };

/** The presence widget's element for `record` once the service has answered for it. */
const presence = (page, record) => page.locator(`[data-admin-push-presence="${record}"][data-known]`);
/** The avatar of `actorId` on `record`, in `state`. */
const avatar = (page, record, actorId, state) =>
  presence(page, record).locator(`[data-admin-push-viewer="${actorId}"]${state ? `[data-state="${state}"]` : ""}`);

describe("presence on a record in the Medusa admin", () => {
  let push, medusa, api, browser, regionId, anna, ben;
  before(async () => {
    ({ push, medusa } = await startStack());
    api = await adminApi(medusa.base);
    ({ region: { id: regionId } } = await api("POST", "/admin/regions", { name: "Europe", currency_code: "eur" }));
    ({ user: anna } = await api("GET", "/admin/users/me"));
    await api("POST", `/admin/users/${anna.id}`, { first_name: "Anna", last_name: "Admin" });
    ben = await createAdmin(medusa.base, api, SECOND);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await medusa?.stop();
    await push?.stop();
  });

  async function placeOrder() {
    const { draft_order: draft } = await api("POST", "/admin/draft-orders", {
      email: "buyer@example.com",
      region_id: regionId,
      items: [{ title: "Presence Lamp", unit_price: 1200, quantity: 1 }],
    });
    return (await api("POST", `/admin/draft-orders/${draft.id}/convert-to-order`)).order;
  }

  test("two admins on one order see each other, not on another order, and not after one left", { timeout: 180_000 }, async (t) => {
    const [order, other] = [await placeOrder(), await placeOrder()];
    const record = `order:${order.id}`;
    const annaContext = await loggedInContext(browser, medusa.base);
    const benContext = await loggedInAs(browser, medusa.base, SECOND);
    t.after(async () => { await annaContext.close(); await benContext.close(); });

    const annaTab = await openScreen(annaContext, medusa.base, `/app/orders/${order.id}`);
    await presence(annaTab.page, record).waitFor({ state: "attached", timeout: WAIT_MS });
    assert.equal(await avatar(annaTab.page, record, ben.id).count(), 0, "Ben is not there yet");

    const benTab = await openScreen(benContext, medusa.base, `/app/orders/${order.id}`);
    const benOpened = Date.now();
    await avatar(annaTab.page, record, ben.id, "viewing").waitFor({ timeout: WAIT_MS });
    t.diagnostic(`Ben's order page open → his initials on Anna's: ${Date.now() - benOpened} ms`);
    await avatar(benTab.page, record, anna.id, "viewing").waitFor({ timeout: WAIT_MS });
    assert.equal(await avatar(annaTab.page, record, anna.id).count(), 0, "Anna does not see herself");
    assert.equal((await avatar(annaTab.page, record, ben.id).innerText()).trim(), "BS", "Ben's initials");
    await avatar(annaTab.page, record, ben.id).hover();
    await annaTab.page.getByText("Ben Second · viewing").waitFor({ timeout: WAIT_MS });
    await avatar(benTab.page, record, anna.id).hover();
    await benTab.page.getByText("Anna Admin · viewing").waitFor({ timeout: WAIT_MS });

    // Another order, in a second tab of Anna's browser: the service has answered, and Ben is not on it.
    const otherRecord = `order:${other.id}`;
    const annaOther = await openScreen(annaContext, medusa.base, `/app/orders/${other.id}`);
    await presence(annaOther.page, otherRecord).waitFor({ state: "attached", timeout: WAIT_MS });
    assert.equal(await presence(annaOther.page, otherRecord).locator("[data-admin-push-viewer]").count(), 0,
      "nobody else on the other order");
    await annaOther.page.close();

    // Ben opens an edit form on the order: Anna sees him editing; when she opens one too, she is warned.
    await benTab.page.goto(`${medusa.base}/app/orders/${order.id}/email`);
    await avatar(annaTab.page, record, ben.id, "editing").waitFor({ timeout: WAIT_MS });
    await annaTab.page.goto(`${medusa.base}/app/orders/${order.id}/email`);
    await annaTab.page.locator("[data-admin-push-editing-warning]").getByText("Ben Second is also editing")
      .waitFor({ timeout: WAIT_MS });
    await annaTab.page.goto(`${medusa.base}/app/orders/${order.id}`);
    await avatar(benTab.page, record, anna.id, "viewing").waitFor({ timeout: WAIT_MS });

    // Ben leaves for the order list: gone from Anna's order page.
    await benTab.page.goto(`${medusa.base}/app/orders`);
    await liveIndicator(benTab.page, "open");
    const benLeft = Date.now();
    await avatar(annaTab.page, record, ben.id).waitFor({ state: "detached", timeout: WAIT_MS });
    t.diagnostic(`Ben on the order list → his initials gone from Anna's order page: ${Date.now() - benLeft} ms`);
    await presence(annaTab.page, record).waitFor({ state: "attached", timeout: WAIT_MS });
    assert.deepEqual(annaTab.problems, [], "no page errors");
  });

  test("one admin with three tabs on a product counts once, and is gone when that browser closes", { timeout: 180_000 }, async (t) => {
    const { product } = await api("POST", "/admin/products", {
      title: "Presence Chair",
      options: [{ title: "Size", values: ["One"] }],
      variants: [{ title: "One", options: { Size: "One" }, prices: [{ currency_code: "eur", amount: 100 }] }],
    });
    const record = `product:${product.id}`;
    const annaContext = await loggedInContext(browser, medusa.base);
    const benContext = await loggedInAs(browser, medusa.base, SECOND);
    t.after(async () => { await annaContext.close(); await benContext.close().catch(() => {}); });

    const annaTab = await openScreen(annaContext, medusa.base, `/app/products/${product.id}`);
    const benTabs = [];
    for (let i = 0; i < 3; i++) benTabs.push(await openScreen(benContext, medusa.base, `/app/products/${product.id}`));
    for (const { page } of benTabs) await avatar(page, record, anna.id, "viewing").waitFor({ timeout: WAIT_MS });
    await avatar(annaTab.page, record, ben.id, "viewing").waitFor({ timeout: WAIT_MS });
    assert.equal(await presence(annaTab.page, record).locator("[data-admin-push-viewer]").count(), 1, "Ben counts once");

    // One of Ben's tabs opens the product's edit drawer: Ben is editing, still once.
    await benTabs[1].page.goto(`${medusa.base}/app/products/${product.id}/edit`);
    await avatar(annaTab.page, record, ben.id, "editing").waitFor({ timeout: WAIT_MS });
    assert.equal(await presence(annaTab.page, record).locator("[data-admin-push-viewer]").count(), 1, "still once");

    await benContext.close();
    const closed = Date.now();
    await avatar(annaTab.page, record, ben.id).waitFor({ state: "detached", timeout: WAIT_MS });
    t.diagnostic(`Ben's browser closed → his initials gone from Anna's product page: ${Date.now() - closed} ms`);
  });

  test("an admin whose browser vanishes without a word is gone within the presence TTL", { timeout: 180_000 }, async (t) => {
    const order = await placeOrder();
    const record = `order:${order.id}`;
    const marker = `ben-${process.pid}`;
    const benBrowser = await launchBrowser({ marker });
    let frozen = false;
    t.after(async () => {
      if (frozen) signalBrowser(marker, "SIGCONT");
      await benBrowser.close();
    });
    const annaContext = await loggedInContext(browser, medusa.base);
    t.after(() => annaContext.close());
    const benContext = await loggedInAs(benBrowser, medusa.base, SECOND);

    const annaTab = await openScreen(annaContext, medusa.base, `/app/orders/${order.id}`);
    await openScreen(benContext, medusa.base, `/app/orders/${order.id}`);
    await avatar(annaTab.page, record, ben.id, "viewing").waitFor({ timeout: WAIT_MS });

    // Ben's machine drops off the network: his socket is never closed, his reports just stop.
    signalBrowser(marker, "SIGSTOP");
    frozen = true;
    const vanished = Date.now();
    await avatar(annaTab.page, record, ben.id).waitFor({ state: "detached", timeout: PRESENCE_TTL_MS + WAIT_MS });
    t.diagnostic(`Ben's browser frozen → his initials gone from Anna's order page: ${Date.now() - vanished} ms ` +
      `(the TTL is ${PRESENCE_TTL_MS} ms from his last report)`);
    await presence(annaTab.page, record).waitFor({ state: "attached", timeout: WAIT_MS });
    assert.deepEqual(annaTab.problems, [], "no page errors");
  });
});
