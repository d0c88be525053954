/**
 * A real Medusa admin dashboard with @admin-push/medusa installed from its tarball, in headless
 * Chromium: product, order, draft order, customer, inventory and price list screens and the
 * notification bell update without a reload, one connection serves every tab of the browser, and
 * the screens recover when the service is killed and restarted.
 *
 * Latency figures (from the moment the admin API call returned, the push frame, the screen's
 * refetch, Medusa's answer and the DOM showing the change: lib/breakdown.mjs; negative when the
 * push beat the API's answer) are printed as measured, not asserted: they depend on the machine.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import { breakdown, framedContext, printSummary } from "../lib/breakdown.mjs";
import {
  WAIT_MS, freePort, liveIndicator, openScreen, startAll, startMedusa, stopAll, until, watchText,
} from "../lib/stack.mjs";

/** Each change's breakdown per screen (printSummary), and the other figures, as printed lines. */
const figures = [];
const notes = [];

describe("the Medusa admin dashboard with @admin-push/medusa", () => {
  let push, medusa, api, browser, regionId;
  let serial = 0;
  const unique = (what) => `${what} ${process.pid}-${++serial}`;

  /** A fresh logged-in browser context (its own tabs, its own shared connection), its push frames recorded. */
  const session = () => framedContext(browser, medusa.base);

  /**
   * Makes `change` and reports each watched screen's figures: `[screen, page, text, event,
   * refetch, {gone}]`, `refetch` the path of the screen's own query.
   */
  const measure = (label, watches, change) => breakdown(
    label,
    watches.map(([screen, page, text, event, refetch, { gone } = {}]) => ({ screen, page, text, event, refetch, gone })),
    change,
    { api, figures },
  );
  const productList = (page, text, opts) => ["product list", page, text, "product.updated", "/admin/products", opts];
  const productDetail = (page, id, text) => ["product detail", page, text, "product.updated", `/admin/products/${id}`];
  const orderList = (page, text) => ["order list", page, text, "order.updated", "/admin/orders"];
  const orderDetail = (page, id, text) => ["order detail", page, text, "order.updated", `/admin/orders/${id}`];

  async function placeOrder(email) {
    const { draft_order: draft } = await api("POST", "/admin/draft-orders", {
      email,
      region_id: regionId,
      items: [{ title: "Live Lamp", unit_price: 1200, quantity: 1 }],
    });
    const { order } = await api("POST", `/admin/draft-orders/${draft.id}/convert-to-order`);
    return order;
  }

  before(async () => {
    ({ push, medusa, api, browser } = await startAll());
    ({ region: { id: regionId } } = await api("POST", "/admin/regions", { name: "Europe", currency_code: "eur" }));
  });

  after(async () => {
    await stopAll({ push, medusa, browser });
    printSummary(figures);
    if (notes.length) console.log(`# other figures\n${notes.map((f) => `#   ${f}`).join("\n")}`);
  });

  test("Medusa refuses to start when an option cannot work, naming the option", { timeout: 120_000 }, async () => {
    await assert.rejects(
      startMedusa({ port: await freePort(), pushBase: push.base, adminOrigin: "http://localhost", env: { ADMIN_PUSH_JWT_SECRET: "too-short" } }),
      /option "tokenSecret" \(env ADMIN_PUSH_JWT_SECRET\): must be at least 32 bytes/,
    );
  });

  test("the token route gives an admin a short-lived token, the public URL and the transports, and no secret", async () => {
    const grant = await api("GET", "/admin/push-token");
    assert.deepEqual(Object.keys(grant).sort(), ["expires_in", "token", "transports", "url"]);
    assert.equal(grant.url, push.base);
    assert.deepEqual(grant.transports, ["ws", "sse"]);
    assert.equal(grant.expires_in, 300);
    const claims = JSON.parse(Buffer.from(grant.token.split(".")[1], "base64url").toString());
    assert.equal(claims.aud, "admin-push");
    assert.equal(claims.exp - claims.iat, 300);
    const text = JSON.stringify(grant);
    for (const secret of [process.env.ADMIN_PUSH_SECRET, process.env.ADMIN_PUSH_JWT_SECRET]) assert.ok(!text.includes(secret));
  });

  test("the plugin resolves the dashboard's own React and react-query (one QueryClient context)", () => {
    const shop = createRequire(`${process.env.MEDUSA_SERVER_DIR}/../../package.json`);
    const dashboard = createRequire(shop.resolve("@medusajs/dashboard/package.json"));
    const plugin = createRequire(shop.resolve("@admin-push/medusa/package.json"));
    for (const name of ["react", "@tanstack/react-query"]) {
      assert.equal(plugin.resolve(name), dashboard.resolve(name), `${name}: the same copy as the dashboard's`);
    }
    assert.ok(plugin.resolve("@admin-push/client").includes("@admin-push/medusa/node_modules/"), "the client came bundled in the tarball");
  });

  test("product create, rename and delete show in the open list and detail page", { timeout: 120_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const list = await openScreen(context, medusa.base, "/app/products");

    const title = unique("Live Lamp");
    let product;
    await measure("product created", [productList(list.page, title)], async () => {
      ({ product } = await api("POST", "/admin/products", { title, options: [{ title: "Size", values: ["One"] }] }));
    });

    const detail = await openScreen(context, medusa.base, `/app/products/${product.id}`);
    const renamed = unique("Renamed Lamp");
    await measure("product renamed", [productList(list.page, renamed), productDetail(detail.page, product.id, renamed)], () =>
      api("POST", `/admin/products/${product.id}`, { title: renamed }),
    );

    await measure("product deleted", [productList(list.page, renamed, { gone: true })], () =>
      api("DELETE", `/admin/products/${product.id}`),
    );
    assert.deepEqual([...list.problems, ...detail.problems], [], "no errors in the pages");
  });

  test("a placed order shows in the open order list, and an edit on its open detail page", { timeout: 120_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const list = await openScreen(context, medusa.base, "/app/orders");

    const email = `${unique("buyer").replace(/\W+/g, "-")}@example.com`;
    let order;
    await measure("order placed", [orderList(list.page, email)], async () => {
      order = await placeOrder(email);
    });

    const detail = await openScreen(context, medusa.base, `/app/orders/${order.id}`);
    const changed = `changed-${email}`;
    await measure("order email changed", [orderDetail(detail.page, order.id, changed)], () =>
      api("POST", `/admin/orders/${order.id}`, { email: changed }),
    );
  });

  test("a bulk edit of 200 products refetches the open list a bounded number of times", { timeout: 240_000 }, async (t) => {
    const context = await session();
    let created = [];
    t.after(async () => {
      await context.close();
      // Later tests look for new products on the list's first page.
      if (created.length) await api("POST", "/admin/products/batch", { delete: created.map(({ id }) => id) });
    });
    const list = await openScreen(context, medusa.base, "/app/products");
    let refetches = 0;
    const isListQuery = (request) => request.method() === "GET" && new URL(request.url()).pathname === "/admin/products";
    list.page.on("request", (request) => { if (isListQuery(request)) refetches++; });
    /**
     * Runs a bulk change over 200 products; resolves with the number of list refetches the page
     * made until one of them brought the list `isFinal` accepts (the whole change).
     */
    const refetchesFor = async (change, isFinal) => {
      refetches = 0;
      const final = list.page.waitForResponse(
        async (response) => isListQuery(response.request()) && response.ok() && isFinal(await response.json()),
        { timeout: 120_000 },
      );
      await change();
      await final;
      return refetches;
    };

    const batch = unique("Bulk");
    const { count: before } = await api("GET", "/admin/products?limit=1&fields=id");
    const onCreate = await refetchesFor(async () => {
      ({ created } = await api("POST", "/admin/products/batch", {
        create: Array.from({ length: 200 }, (_, i) => ({ title: `${batch} #${i + 1}`, options: [{ title: "Size", values: ["One"] }] })),
      }));
    }, (body) => body.count === before + 200);
    const onUpdate = await refetchesFor(
      () => api("POST", "/admin/products/batch", { update: created.map(({ id }, i) => ({ id, title: `${batch} edited ${i + 1}` })) }),
      (body) => body.products.some((p) => p.title.startsWith(`${batch} edited`)) && !body.products.some((p) => p.title.startsWith(`${batch} #`)),
    );
    await list.page.getByText(`${batch} edited`).first().waitFor({ timeout: WAIT_MS });
    const line = `200 products created → ${onCreate} list refetches; 200 products edited → ${onUpdate} list refetches`;
    notes.push(line);
    console.log(`# bulk ${line}`);
    for (const count of [onCreate, onUpdate]) assert.ok(count >= 1 && count <= 20, `a burst of 200 refetches 1 to 20 times, not ${count}`);
  });

  test("a shop's own page is live with one useAdminPush() call, and sees the event itself", { timeout: 60_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const page = await openScreen(context, medusa.base, "/app/hero-banners");
    const title = unique("Winter sale");
    const counted = await watchText(page.page, "Banner events seen: 1");
    await measure("hero banner created", [["hero banners (shop page)", page.page, title, "banner.updated", "/admin/hero-banners"]], () =>
      api("POST", "/admin/hero-banners", { title }),
    );
    await counted(); // useAdminPushEvent ran the page's own handler once
  });

  test("a variant renamed through the API shows on its product's open page", { timeout: 60_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const { product } = await api("POST", "/admin/products", {
      title: unique("Variant Lamp"),
      options: [{ title: "Size", values: ["One"] }],
      variants: [{ title: unique("One size"), options: { Size: "One" }, prices: [{ amount: 10, currency_code: "eur" }] }],
    });
    const detail = await openScreen(context, medusa.base, `/app/products/${product.id}`);
    const renamed = unique("Renamed variant");
    await measure("variant renamed", [productDetail(detail.page, product.id, renamed)], () =>
      api("POST", `/admin/products/${product.id}/variants/${product.variants[0].id}`, { title: renamed }),
    );
  });

  test("a customer updated through the API shows on the customer's open page", { timeout: 60_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const { customer } = await api("POST", "/admin/customers", {
      email: `${unique("customer").replace(/\W+/g, "-")}@example.com`,
      first_name: "Ada",
    });
    const detail = await openScreen(context, medusa.base, `/app/customers/${customer.id}`);
    const renamed = unique("Grace").replace(/\W+/g, "");
    await measure("customer renamed", [["customer detail", detail.page, renamed, "customer.updated", `/admin/customers/${customer.id}`]], () =>
      api("POST", `/admin/customers/${customer.id}`, { first_name: renamed }),
    );
  });

  test("a stock level changed through the API shows on the inventory item's open page", { timeout: 60_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const { stock_location: location } = await api("POST", "/admin/stock-locations", { name: unique("Warehouse") });
    const { inventory_item: item } = await api("POST", "/admin/inventory-items", { title: unique("Lamp shade"), sku: unique("shade").replace(/\W+/g, "-") });
    await api("POST", `/admin/inventory-items/${item.id}/location-levels`, { location_id: location.id, stocked_quantity: 3 });
    const detail = await openScreen(context, medusa.base, `/app/inventory/${item.id}`);
    await measure("stock level changed", [["inventory item", detail.page, "731", "inventory.updated", `/admin/inventory-items/${item.id}`]], () =>
      api("POST", `/admin/inventory-items/${item.id}/location-levels/${location.id}`, { stocked_quantity: 731 }),
    );
  });

  test("a price list created through the API shows in the open price list list", { timeout: 60_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const list = await openScreen(context, medusa.base, "/app/price-lists");
    const title = unique("Summer prices");
    await measure("price list created", [["price list list", list.page, title, "price_list.updated", "/admin/price-lists"]], () =>
      api("POST", "/admin/price-lists", { title, description: "Live", type: "sale", status: "active" }),
    );
  });

  test("a draft order created through the API shows in the open draft order list", { timeout: 60_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const list = await openScreen(context, medusa.base, "/app/draft-orders");
    const email = `${unique("draft").replace(/\W+/g, "-")}@example.com`;
    await measure("draft order created", [["draft order list", list.page, email, "order.updated", "/admin/draft-orders"]], () =>
      api("POST", "/admin/draft-orders", { email, region_id: regionId, items: [{ title: "Live Lamp", unit_price: 1200, quantity: 1 }] }),
    );
  });

  test("a confirmed order edit shows on the order's open page", { timeout: 90_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const order = await placeOrder(`${unique("edit").replace(/\W+/g, "-")}@example.com`);
    const { order: { items: [item] } } = await api("GET", `/admin/orders/${order.id}?fields=id,*items`);
    const detail = await openScreen(context, medusa.base, `/app/orders/${order.id}`);
    // One lamp at 1,200 becomes two: the new total shows only once the page refetched the order.
    await measure("order edit confirmed", [orderDetail(detail.page, order.id, "2,400.00")], async () => {
      await api("POST", "/admin/order-edits", { order_id: order.id });
      await api("POST", `/admin/order-edits/${order.id}/items/item/${item.id}`, { quantity: 2 });
      await api("POST", `/admin/order-edits/${order.id}/request`);
      await api("POST", `/admin/order-edits/${order.id}/confirm`);
    });
  });

  test("the notification bell lights when a product export finishes, long before its minute poll", { timeout: 90_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    // Whatever earlier tests notified counts as read: only the export's notification may light the bell.
    await context.addInitScript(() => localStorage.setItem("notificationsLastReadAt", new Date().toISOString()));
    const { page } = await openScreen(context, medusa.base, "/app/products");
    const lit = page.locator('button svg circle[fill="#2563EB"]');
    assert.equal(await lit.count(), 0, "the bell starts unlit");
    const opened = Date.now();
    await api("POST", "/admin/products/export");
    // The page polls once a minute from when it opened; WAIT_MS is well inside that minute.
    await lit.first().waitFor({ timeout: WAIT_MS });
    const line = `product export finished → bell lit ${Date.now() - opened} ms after the export was asked for`;
    notes.push(line);
    console.log(`# latency ${line}`);
  });

  test("navigating inside the admin keeps the one connection", { timeout: 90_000 }, async (t) => {
    await push.waitForConnections(0);
    const context = await session();
    t.after(() => context.close());
    const { page, sockets } = await openScreen(context, medusa.base, "/app/products");
    await push.waitForConnections(1);

    // Client-side navigation through the sidebar, including screens without the plugin's widget.
    for (const [href, path] of [["/app/orders", "/app/orders"], ["/app/customers", "/app/customers"], ["/app/products", "/app/products"]]) {
      await page.locator(`nav a[href="${href}"]`).first().click();
      await page.waitForURL((url) => url.pathname === path, { timeout: WAIT_MS });
    }
    await liveIndicator(page, "open");
    // The screen reached by navigation is live on the same socket.
    const title = unique("Navigated Lamp");
    await measure("product created after navigation", [productList(page, title)], () =>
      api("POST", "/admin/products", { title, options: [{ title: "Size", values: ["One"] }] }),
    );
    assert.equal(sockets.length, 1, "one WebSocket for the whole visit");
    assert.equal(sockets[0].isClosed(), false, "and it is still open");
    assert.equal(await push.connections(), 1);
  });

  test("two tabs share one connection and survive the leader tab closing", { timeout: 90_000 }, async (t) => {
    await push.waitForConnections(0);
    const context = await session();
    t.after(() => context.close());
    const leader = await openScreen(context, medusa.base, "/app/products");
    const follower = await openScreen(context, medusa.base, "/app/orders");
    await push.waitForConnections(1);
    assert.equal(leader.sockets.length, 1, "the first tab holds the connection");
    assert.equal(follower.sockets.length, 0, "the second tab opened none");

    const first = `${unique("first").replace(/\W+/g, "-")}@example.com`;
    await measure("order placed (follower tab)", [orderList(follower.page, first)], () => placeOrder(first));

    await leader.page.close();
    await until("the remaining tab to take over the connection", () => follower.sockets.length === 1);
    await push.waitForConnections(1);
    await liveIndicator(follower.page, "open");
    const second = `${unique("second").replace(/\W+/g, "-")}@example.com`;
    await measure("order placed (after the leader closed)", [orderList(follower.page, second)], () => placeOrder(second));
  });

  test("a tab navigated away frees its connection, and resumes when it comes back", { timeout: 90_000 }, async (t) => {
    await push.waitForConnections(0);
    const context = await session();
    t.after(() => context.close());
    const { page } = await openScreen(context, medusa.base, "/app/products");
    await push.waitForConnections(1);

    await page.goto(`${push.base}/healthz`);
    await push.waitForConnections(0);

    await page.goBack();
    await liveIndicator(page, "open");
    await push.waitForConnections(1);
    const title = unique("Returned Lamp");
    await measure("product created after coming back", [productList(page, title)], () =>
      api("POST", "/admin/products", { title, options: [{ title: "Size", values: ["One"] }] }),
    );
  });

  test("killing and restarting the service recovers every open screen", { timeout: 120_000 }, async (t) => {
    await push.waitForConnections(0);
    const context = await session();
    t.after(() => context.close());
    const { product } = await api("POST", "/admin/products", { title: unique("Outage Lamp"), options: [{ title: "Size", values: ["One"] }] });
    const products = await openScreen(context, medusa.base, "/app/products");
    const detail = await openScreen(context, medusa.base, `/app/products/${product.id}`);
    const orders = await openScreen(context, medusa.base, "/app/orders");

    await push.kill();
    for (const screen of [products, detail, orders]) await liveIndicator(screen.page, "reconnecting");

    // Changes made while the service is down: their events are lost, the screens must catch up.
    const renamed = unique("Renamed during outage");
    await api("POST", `/admin/products/${product.id}`, { title: renamed });
    const email = `${unique("outage").replace(/\W+/g, "-")}@example.com`;
    await placeOrder(email);

    const caughtUp = await Promise.all([
      watchText(products.page, renamed), watchText(detail.page, renamed), watchText(orders.page, email),
    ]);
    await push.start();
    await Promise.all(caughtUp.map((shown) => shown()));
    for (const screen of [products, detail, orders]) await liveIndicator(screen.page, "open");

    // And live again afterwards.
    const after = unique("Renamed after restart");
    await measure("product renamed after restart", [productList(products.page, after), productDetail(detail.page, product.id, after)], () =>
      api("POST", `/admin/products/${product.id}`, { title: after }),
    );
  });
});
