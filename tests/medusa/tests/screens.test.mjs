/**
 * The admin screen families the dashboard suite leaves out: campaigns and promotions
 * (promotion.updated), collections (catalog.updated), sales channels and regions
 * (settings.updated) and customer groups (customer.updated), each changed through the admin API
 * while its list is open in headless Chromium, and the change shown without a reload. A control shows the same changes do not reach
 * the same screens while the admin-push service is down, and do once it is back (the resync).
 *
 * For each change the suite prints where the time went, from the moment the admin API call
 * returned (negative: before it returned): the push frame reaching the tab's WebSocket, the
 * refetch it caused leaving the page, Medusa's answer to that refetch (first byte), and the DOM
 * showing the change; the same for a product renamed on its open page. Each change is made five
 * times on the same screen. Printed as measured, not asserted: they depend on the machine.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { breakdown, framedContext, printSummary } from "../lib/breakdown.mjs";
import { liveIndicator, openScreen, startAll, stopAll, until, watchText } from "../lib/stack.mjs";

const figures = [];

/** Each change is made this many times on the same open screen. */
const ROUNDS = 5;

describe("the admin screens of campaigns, promotions, collections, sales channels, regions and customer groups", () => {
  let push, medusa, api, browser;
  let serial = 0;
  const unique = (what) => `${what} ${process.pid}-${++serial}`;
  const session = () => framedContext(browser, medusa.base);

  /** Each family: its list screen, the change that adds `name` to it, the event it pushes, and the list's request. */
  const families = {
    campaign: {
      screen: "/app/campaigns",
      event: "promotion.updated",
      refetch: "/admin/campaigns",
      create: (name) => api("POST", "/admin/campaigns", { name, campaign_identifier: name.replace(/\W+/g, "-") }),
    },
    promotion: {
      screen: "/app/promotions",
      event: "promotion.updated",
      refetch: "/admin/promotions",
      create: (name) => api("POST", "/admin/promotions", {
        code: name.replace(/\W+/g, "-").toUpperCase(),
        type: "standard",
        status: "draft",
        application_method: { type: "percentage", target_type: "order", value: 10 },
      }),
      shows: (name) => name.replace(/\W+/g, "-").toUpperCase(),
    },
    collection: {
      screen: "/app/collections",
      event: "catalog.updated",
      refetch: "/admin/collections",
      create: (name) => api("POST", "/admin/collections", { title: name }),
    },
    "sales channel": {
      screen: "/app/settings/sales-channels",
      event: "settings.updated",
      refetch: "/admin/sales-channels",
      create: (name) => api("POST", "/admin/sales-channels", { name }),
    },
    region: {
      screen: "/app/settings/regions",
      event: "settings.updated",
      refetch: "/admin/regions",
      create: (name) => api("POST", "/admin/regions", { name, currency_code: "eur" }),
    },
    "customer group": {
      screen: "/app/customer-groups",
      event: "customer.updated",
      refetch: "/admin/customer-groups",
      create: (name) => api("POST", "/admin/customer-groups", { name }),
    },
  };
  /** What the list shows of a record created under `name`. */
  const shown = (family, name) => (families[family].shows ?? ((n) => n))(name);

  before(async () => {
    ({ push, medusa, api, browser } = await startAll());
  });

  after(async () => {
    await stopAll({ push, medusa, browser });
    printSummary(figures);
  });

  for (const family of Object.keys(families)) {
    test(`a ${family} created through the API shows in the open ${family} list`, { timeout: 90_000 }, async (t) => {
      const context = await session();
      t.after(() => context.close());
      const list = await openScreen(context, medusa.base, families[family].screen);
      assert.equal(list.sockets.length, 1, "the screen's tab holds the connection");
      for (let round = 1; round <= ROUNDS; round++) {
        const name = unique(`Live ${family}`);
        const { event, refetch: refetch } = families[family];
        await breakdown(`${family} created`, [{ screen: `${family} list`, page: list.page, text: shown(family, name), event, refetch }], () => families[family].create(name), { api, figures });
      }
      assert.deepEqual(list.problems, [], "no errors in the page");
    });
  }

  test("a product renamed through the API shows on its open page", { timeout: 90_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const { product } = await api("POST", "/admin/products", { title: unique("Breakdown Lamp"), options: [{ title: "Size", values: ["One"] }] });
    const detail = await openScreen(context, medusa.base, `/app/products/${product.id}`);
    assert.equal(detail.sockets.length, 1, "the screen's tab holds the connection");
    for (let round = 1; round <= ROUNDS; round++) {
      const renamed = unique("Renamed Breakdown Lamp");
      const watch = { screen: "product detail", page: detail.page, text: renamed, event: "product.updated", refetch: `/admin/products/${product.id}` };
      await breakdown("product renamed", [watch], () => api("POST", `/admin/products/${product.id}`, { title: renamed }), { api, figures });
    }
  });

  test("without the service the same changes do not reach the open lists; its resync brings them", { timeout: 120_000 }, async (t) => {
    await push.waitForConnections(0);
    const context = await session();
    t.after(() => context.close());
    const screens = {};
    for (const [family, { screen }] of Object.entries(families)) screens[family] = await openScreen(context, medusa.base, screen);

    await push.kill();
    for (const { page } of Object.values(screens)) await liveIndicator(page, "reconnecting");

    const names = {};
    for (const family of Object.keys(families)) {
      names[family] = unique(`Unpushed ${family}`);
      await families[family].create(names[family]);
    }
    const caughtUp = await Promise.all(Object.entries(screens).map(([family, { page }]) => watchText(page, shown(family, names[family]))));
    // Every one of these screens showed its change within 0.5 s with the service up. Without it,
    // nothing else refetches them: ten times that long, no list shows its new row. The window is
    // a bound on what the push path takes, not a synchronisation.
    const window = Date.now() + 5_000;
    await until("the control window to pass", async () => {
      for (const [family, { page }] of Object.entries(screens)) {
        assert.equal((await page.evaluate(() => document.body.innerText)).includes(shown(family, names[family])), false, `${family} list stayed as it was`);
      }
      return Date.now() > window;
    }, 10_000);

    await push.start();
    await Promise.all(caughtUp.map((shown) => shown()));
    for (const { page } of Object.values(screens)) await liveIndicator(page, "open");
  });
});
