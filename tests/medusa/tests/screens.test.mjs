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
import {
  WAIT_MS, adminApi, launchBrowser, liveIndicator, loggedInContext, openScreen, startStack, until, watchText,
} from "../lib/stack.mjs";

const figures = [];

/**
 * Records, in every page of `context`, when each WebSocket message arrived, by the page's own
 * clock (the one watchText reads), before the plugin's client sees it.
 */
function recordFrames(context) {
  return context.addInitScript(() => {
    const Native = window.WebSocket;
    window.__adminPushFrames = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener("message", (e) => window.__adminPushFrames.push([Date.now(), String(e.data).slice(0, 300)]));
      }
    };
  });
}

/**
 * Makes `change` with `screen` (opened by openScreen in a context given to recordFrames, the only
 * tab of its context, so it holds the connection) watching for `text`, and reports, in ms from
 * the API call's return: the first message naming `event` on the tab's WebSocket, the first
 * request for `refetchPath` the page sent, Medusa's first byte for it, and the DOM showing `text`.
 */
async function breakdown(label, screen, { event, refetchPath }, text, change) {
  const { page, sockets } = screen;
  assert.equal(sockets.length, 1, "the screen's tab holds the connection");
  const shown = await watchText(page, text);
  const since = await page.evaluate(() => window.__adminPushFrames.length);
  let refetch = null;
  const onRequest = (request) => {
    if (refetch === null && request.method() === "GET" && new URL(request.url()).pathname === refetchPath) refetch = request;
  };
  page.on("request", onRequest);
  try {
    await change();
    const returned = Date.now();
    const dom = (await shown()) - returned;
    let frameAt = null;
    await until(`the ${event} message on the tab's WebSocket`, async () => {
      const frames = await page.evaluate((since) => window.__adminPushFrames.slice(since), since);
      frameAt = frames.find(([, data]) => data.includes(event))?.[0] ?? null;
      return frameAt !== null;
    });
    await until(`the refetch of ${refetchPath}`, () => refetch !== null);
    await (await refetch.response())?.finished();
    const timing = refetch.timing();
    const result = {
      frame: frameAt - returned,
      sent: Math.round(timing.startTime) - returned,
      answered: Math.round(timing.startTime + timing.responseStart) - returned,
      dom,
    };
    const line = `${label}: frame ${result.frame} ms, refetch sent ${result.sent} ms, answer ${result.answered} ms, DOM ${dom} ms`;
    figures.push({ label, ...result });
    console.log(`# latency ${line}`);
    return result;
  } finally {
    page.off("request", onRequest);
  }
}

/** Median and range of `values`, as "median (min to max)". */
function spread(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : Math.round((sorted[mid - 1] + sorted[mid]) / 2);
  return `${median} (${sorted[0]} to ${sorted.at(-1)})`;
}

/** Each change is made this many times on the same open screen. */
const ROUNDS = 5;

describe("the admin screens of campaigns, promotions, collections, sales channels, regions and customer groups", () => {
  let push, medusa, api, browser;
  let serial = 0;
  const unique = (what) => `${what} ${process.pid}-${++serial}`;
  const session = () => loggedInContext(browser, medusa.base);

  /** Each family: its list screen, the change that adds `name` to it, the event it pushes, and the list's request. */
  const families = {
    campaign: {
      screen: "/app/campaigns",
      event: "promotion.updated",
      refetchPath: "/admin/campaigns",
      create: (name) => api("POST", "/admin/campaigns", { name, campaign_identifier: name.replace(/\W+/g, "-") }),
    },
    promotion: {
      screen: "/app/promotions",
      event: "promotion.updated",
      refetchPath: "/admin/promotions",
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
      refetchPath: "/admin/collections",
      create: (name) => api("POST", "/admin/collections", { title: name }),
    },
    "sales channel": {
      screen: "/app/settings/sales-channels",
      event: "settings.updated",
      refetchPath: "/admin/sales-channels",
      create: (name) => api("POST", "/admin/sales-channels", { name }),
    },
    region: {
      screen: "/app/settings/regions",
      event: "settings.updated",
      refetchPath: "/admin/regions",
      create: (name) => api("POST", "/admin/regions", { name, currency_code: "eur" }),
    },
    "customer group": {
      screen: "/app/customer-groups",
      event: "customer.updated",
      refetchPath: "/admin/customer-groups",
      create: (name) => api("POST", "/admin/customer-groups", { name }),
    },
  };
  /** What the list shows of a record created under `name`. */
  const shown = (family, name) => (families[family].shows ?? ((n) => n))(name);

  before(async () => {
    ({ push, medusa } = await startStack());
    api = await adminApi(medusa.base);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await medusa?.stop();
    await push?.stop();
    const labels = [...new Set(figures.map(({ label }) => label))];
    const rows = labels.map((label) => {
      const of = figures.filter((f) => f.label === label);
      return `#   ${label} (${of.length} rounds): ${["frame", "sent", "answered", "dom"].map((k) => `${k} ${spread(of.map((f) => f[k]))}`).join(", ")}`;
    });
    if (rows.length) console.log(`# latency summary (ms after the API call returned: median (min to max))\n${rows.join("\n")}`);
  });

  for (const family of Object.keys(families)) {
    test(`a ${family} created through the API shows in the open ${family} list`, { timeout: 90_000 }, async (t) => {
      const context = await session();
      t.after(() => context.close());
      await recordFrames(context);
      const list = await openScreen(context, medusa.base, families[family].screen);
      for (let round = 1; round <= ROUNDS; round++) {
        const name = unique(`Live ${family}`);
        await breakdown(`${family} created → ${family} list`, list, families[family], shown(family, name), () => families[family].create(name));
      }
      assert.deepEqual(list.problems, [], "no errors in the page");
    });
  }

  test("a product renamed through the API shows on its open page", { timeout: 90_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    await recordFrames(context);
    const { product } = await api("POST", "/admin/products", { title: unique("Breakdown Lamp"), options: [{ title: "Size", values: ["One"] }] });
    const detail = await openScreen(context, medusa.base, `/app/products/${product.id}`);
    for (let round = 1; round <= ROUNDS; round++) {
      const renamed = unique("Renamed Breakdown Lamp");
      await breakdown("product renamed → product detail", detail, { event: "product.updated", refetchPath: `/admin/products/${product.id}` }, renamed, () =>
        api("POST", `/admin/products/${product.id}`, { title: renamed }),
      );
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
