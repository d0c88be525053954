/**
 * The rest of the admin, one table: categories, tags and types; stock locations and the shipping
 * options on a location's page; shipping profiles; users and invites; the store; publishable and
 * secret API keys; tax regions and their rates; the detail pages of collections, promotions,
 * campaigns, regions, sales channels, customer groups (and their members) and price lists (and their prices); a draft
 * order's page; reservations, in their list and on an inventory item's page; and on an order's page
 * its payments captured and refunded, its fulfillment shipped, delivered and canceled, a return
 * requested and received, a claim, an exchange and a transfer requested. And deletions: a record
 * of each family the dashboard lets an admin delete, gone from its open list (a shipping option
 * from its location's page).
 *
 * Each screen is opened in headless Chromium, changed through the admin API, and must show the
 * change without a reload. The control at the end makes the same changes while the admin-push
 * service is down: no screen shows its change in that time, and every one does once the service is
 * back (the resync). So each screen here is live because of the push, and only because of it.
 *
 * Each change prints where its time went (lib/breakdown.mjs: the push frame, the screen's own
 * refetch sent and answered, the DOM), measured, never asserted.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { breakdown, framedContext, printSummary } from "../lib/breakdown.mjs";
import { createAdmin, liveIndicator, openScreen, startAll, stopAll, until, watchText } from "../lib/stack.mjs";

const figures = [];

describe("every other admin screen shows a change made through the API without a reload", () => {
  let push, medusa, api, browser, regionId;
  let serial = 0;
  const unique = (what) => `${what} ${process.pid}-${++serial}`;
  const session = () => framedContext(browser, medusa.base);
  /** A unique email address. */
  const email = (what) => `${unique(what).replace(/\W+/g, "-")}@example.com`;

  /** The one record a create answers with (`{ product_category: {…} }` → the category). */
  const created = async (path, body) => Object.values(await api("POST", path, body))[0];

  /**
   * A screen of the records at `apiPath` that the dashboard shows at `screen`, pushed as `event`:
   * its list, where a new record must appear, the page of one record, where its new `field` must
   * appear, and the list again, where a deleted record must disappear (`remove` deletes it).
   */
  const family = (apiPath, screen, field, event, body = {}, remove = ({ id }) => api("DELETE", `${apiPath}/${id}`)) => ({
    list: {
      path: () => screen,
      event,
      refetch: () => apiPath,
      steps: [{ what: "created", change: (_, marker) => created(apiPath, { ...body, [field]: marker }) }],
    },
    detail: {
      setup: () => created(apiPath, { ...body, [field]: unique("Before") }),
      path: ({ id }) => `${screen}/${id}`,
      event,
      refetch: ({ id }) => `${apiPath}/${id}`,
      steps: [{ what: "renamed", change: ({ id }, marker) => api("POST", `${apiPath}/${id}`, { [field]: marker }) }],
    },
    deleted: deletion({
      screen,
      apiPath,
      event,
      setup: () => created(apiPath, { ...body, [field]: unique("Doomed") }),
      shows: (record) => record[field],
      remove,
    }),
  });

  /**
   * The list at `screen` (or the page at `path`) showing a record `setup` made, as `shows` says;
   * the record deleted through the API (`remove`; by default `DELETE apiPath/:id`) must leave it.
   */
  function deletion({ screen, apiPath, event, setup, shows, path = () => screen, refetch = () => apiPath, remove = ({ id }) => api("DELETE", `${apiPath}/${id}`) }) {
    return { setup, path, event, refetch, steps: [{ what: "deleted", gone: true, shows: (_, record) => shows(record), change: remove }] };
  }

  /** An API key can only be deleted once revoked (both through the API, one after the other). */
  const revokeAndDelete = async ({ id }) => {
    await api("POST", `/admin/api-keys/${id}/revoke`, {});
    await api("DELETE", `/admin/api-keys/${id}`);
  };

  const categories = family("/admin/product-categories", "/app/categories", "name", "catalog.updated");
  const tags = family("/admin/product-tags", "/app/settings/product-tags", "value", "catalog.updated");
  const types = family("/admin/product-types", "/app/settings/product-types", "value", "catalog.updated");
  const collections = family("/admin/collections", "/app/collections", "title", "catalog.updated");
  const locations = family("/admin/stock-locations", "/app/settings/locations", "name", "settings.updated");
  const publishableKeys = family("/admin/api-keys", "/app/settings/publishable-api-keys", "title", "settings.updated", { type: "publishable" }, revokeAndDelete);
  const secretKeys = family("/admin/api-keys", "/app/settings/secret-api-keys", "title", "settings.updated", { type: "secret" }, revokeAndDelete);
  const regions = family("/admin/regions", "/app/settings/regions", "name", "settings.updated", { currency_code: "eur" });
  const salesChannels = family("/admin/sales-channels", "/app/settings/sales-channels", "name", "settings.updated");
  const customerGroups = family("/admin/customer-groups", "/app/customer-groups", "name", "customer.updated");
  const priceLists = family("/admin/price-lists", "/app/price-lists", "title", "price_list.updated", { description: "Live", type: "sale", status: "active" });
  const campaigns = family("/admin/campaigns", "/app/campaigns", "name", "promotion.updated");
  const promotion = (code) => ({
    code,
    type: "standard",
    status: "draft",
    application_method: { type: "percentage", target_type: "order", value: 10 },
  });

  /** The admin the suite signs in as. */
  const signedInAdmin = () => api("GET", "/admin/users/me").then(({ user }) => user);

  /** A country no tax region has yet: each creation takes the next. */
  const countries = [
    ["dk", "Denmark"], ["se", "Sweden"], ["no", "Norway"], ["fi", "Finland"], ["is", "Iceland"], ["ee", "Estonia"],
    ["lv", "Latvia"], ["lt", "Lithuania"], ["pl", "Poland"],
  ];
  const nextCountry = () => countries.shift() ?? assert.fail("out of countries for tax regions");

  /** A location that ships to Denmark with the manual provider, and a shipping profile. */
  async function shippingZone() {
    const location = await created("/admin/stock-locations", { name: unique("Depot") });
    await api("POST", `/admin/stock-locations/${location.id}/fulfillment-providers`, { add: ["manual_manual"] });
    const { fulfillment_sets: [set] } = await created(`/admin/stock-locations/${location.id}/fulfillment-sets?fields=*fulfillment_sets`, {
      name: unique("Shipping"),
      type: "shipping",
    });
    const { service_zones: [zone] } = await created(`/admin/fulfillment-sets/${set.id}/service-zones?fields=*service_zones`, {
      name: unique("Denmark zone"),
      geo_zones: [{ type: "country", country_code: "dk" }],
    });
    const profile = await created("/admin/shipping-profiles", { name: unique("Parcels"), type: "default" });
    return { id: location.id, location, zone, profile };
  }

  const shippingOption = ({ zone, profile }, name) => created("/admin/shipping-options", {
    name,
    service_zone_id: zone.id,
    shipping_profile_id: profile.id,
    provider_id: "manual_manual",
    price_type: "flat",
    type: { label: "Standard", description: "Two to three days", code: "standard" },
    prices: [{ currency_code: "eur", amount: 10 }],
  });

  /**
   * An order of three lamps, placed from a draft order, with a payment collection to pay, a
   * shipping option to fulfil it with, and a variant to send in an exchange.
   */
  async function orderToHandle() {
    const zone = await shippingZone();
    const option = await shippingOption(zone, unique("Standard"));
    const product = await created("/admin/products", {
      title: unique("Exchange Lamp"),
      status: "published",
      options: [{ title: "Size", values: ["One"] }],
      variants: [{ title: "One", options: { Size: "One" }, manage_inventory: false, prices: [{ amount: 1200, currency_code: "eur" }] }],
    });
    const draft = await created("/admin/draft-orders", {
      email: email("buyer"),
      region_id: regionId,
      items: [{ title: "Live Lamp", unit_price: 1200, quantity: 3 }],
    });
    const { order: { id } } = await api("POST", `/admin/draft-orders/${draft.id}/convert-to-order`);
    const { order } = await api("GET", `/admin/orders/${id}?fields=id,*items`);
    const collection = await created("/admin/payment-collections", { order_id: order.id, amount: 3600 });
    return { id: order.id, item: order.items[0], location: zone.location, option, variant: product.variants[0], collection };
  }

  /** Requests a return, claim or exchange of one lamp: begin it, add the item(s), request it. */
  async function requestChange(kind, order, items) {
    const begun = await api("POST", `/admin/${kind}`, { order_id: order.id, ...(kind === "claims" ? { type: "refund" } : {}) });
    const { id } = begun.return ?? begun.claim ?? begun.exchange;
    for (const [path, body] of items) await api("POST", `/admin/${kind}/${id}/${path}`, body);
    await api("POST", `/admin/${kind}/${id}/request`);
  }
  /** Fulfils `quantity` of the order's lamps; resolves with the order's fulfillments, newest last. */
  async function fulfil(order, quantity) {
    await api("POST", `/admin/orders/${order.id}/fulfillments`, {
      items: [{ id: order.item.id, quantity }],
      location_id: order.location.id,
      shipping_option_id: order.option.id,
    });
    return (await api("GET", `/admin/orders/${order.id}?fields=id,*fulfillments`)).order.fulfillments;
  }

  /**
   * A customer with an account, as the storefront registers one (an order can be transferred only
   * to such a customer; the admin API creates guests).
   */
  async function registeredCustomer() {
    const owner = email("owner");
    const { api_key: key } = await api("POST", "/admin/api-keys", { title: unique("Storefront"), type: "publishable" });
    const store = async (path, body, token) => {
      const res = await fetch(`${medusa.base}${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "x-publishable-api-key": key.token, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`POST ${path}: HTTP ${res.status} ${text}`);
      return JSON.parse(text);
    };
    const { token } = await store("/auth/customer/emailpass/register", { email: owner, password: "e2e-customer-password" });
    return (await store("/store/customers", { email: owner }, token)).customer;
  }

  /**
   * An order of three lamps with two fulfillments (one lamp, then two) and a return of one lamp
   * requested, and a registered customer to transfer it to.
   */
  async function orderWithReturn() {
    const order = await orderToHandle();
    const [single] = await fulfil(order, 1);
    await fulfil(order, 2);
    const begun = await api("POST", "/admin/returns", { order_id: order.id });
    const returnId = begun.return.id;
    await api("POST", `/admin/returns/${returnId}/request-items`, oneLamp(order));
    await api("POST", `/admin/returns/${returnId}/request`);
    return { ...order, single, returnId, customer: await registeredCustomer() };
  }

  /** A draft order of one lamp, with a shipping address. */
  const draftOrder = () => created("/admin/draft-orders", {
    email: email("draft"),
    region_id: regionId,
    items: [{ title: "Draft Lamp", unit_price: 1200, quantity: 1 }],
    shipping_address: { first_name: "Ada", last_name: "Live", address_1: unique("Before street"), city: "Aarhus", country_code: "dk" },
  });

  /** An inventory item stocked at a location, where reservations of it can be made. */
  async function stockedItem() {
    const location = await created("/admin/stock-locations", { name: unique("Warehouse") });
    const item = await created("/admin/inventory-items", { sku: unique("SKU").replace(/\W+/g, "-"), title: unique("Stocked Lamp") });
    await api("POST", `/admin/inventory-items/${item.id}/location-levels`, { location_id: location.id, stocked_quantity: 100 });
    return { id: item.id, location };
  }
  const reserve = ({ id, location }, description) =>
    api("POST", "/admin/reservations", { inventory_item_id: id, location_id: location.id, quantity: 1, description });

  const shippingProfiles = family("/admin/shipping-profiles", "/app/settings/locations/shipping-profiles", "name", "settings.updated", { type: "default" });

  /** An active sale price list, and a product of `variants` variants (none priced by the list yet). */
  async function priceListAndProduct(variants = 1) {
    const list = await created("/admin/price-lists", { title: unique("Sale"), description: "Live", type: "sale", status: "active" });
    const sizes = Array.from({ length: variants }, (_, i) => `S${i + 1}`);
    const product = await created("/admin/products", {
      title: unique("Priced Lamp"),
      status: "published",
      options: [{ title: "Size", values: sizes }],
      variants: sizes.map((size) => ({ title: size, options: { Size: size }, manage_inventory: false, prices: [{ amount: 1200, currency_code: "eur" }] })),
    });
    return { id: list.id, product };
  }

  /** The order's one fulfillment. */
  const fulfillmentOf = async (order) => (await api("GET", `/admin/orders/${order.id}?fields=id,*fulfillments`)).order.fulfillments[0];
  const oneLamp = (order) => ({ items: [{ id: order.item.id, quantity: 1 }] });

  /**
   * Every screen: what it needs first (`setup`), its path, and its changes in order, each made
   * through the API with a unique `marker` and shown as the marker itself or as `shows`.
   */
  const screens = {
    "category list": categories.list,
    "category page": categories.detail,
    "product tag list": tags.list,
    "product tag page": tags.detail,
    "product type list": types.list,
    "product type page": types.detail,
    "location list": locations.list,
    "location page": locations.detail,
    "shipping options of a location": {
      setup: shippingZone,
      path: ({ id }) => `/app/settings/locations/${id}`,
      event: "settings.updated",
      refetch: ({ id }) => `/admin/stock-locations/${id}`,
      steps: [{ what: "shipping option created", change: (zone, marker) => shippingOption(zone, marker) }],
    },
    "user list": {
      setup: signedInAdmin,
      path: () => "/app/settings/users",
      event: "settings.updated",
      refetch: () => "/admin/users",
      steps: [{ what: "renamed", change: ({ id }, marker) => api("POST", `/admin/users/${id}`, { first_name: marker }) }],
    },
    "user page": {
      setup: signedInAdmin,
      path: ({ id }) => `/app/settings/users/${id}`,
      event: "settings.updated",
      refetch: ({ id }) => `/admin/users/${id}`,
      // The same user as the list's: its other name, so neither change hides the other.
      steps: [{ what: "renamed", change: ({ id }, marker) => api("POST", `/admin/users/${id}`, { last_name: marker }) }],
    },
    invites: {
      path: () => "/app/settings/users/invite",
      event: "settings.updated",
      refetch: () => "/admin/invites",
      steps: [{
        what: "invite",
        marker: () => email("invitee"),
        change: (_, email) => api("POST", "/admin/invites", { email }),
      }],
    },
    store: {
      setup: () => api("GET", "/admin/stores").then(({ stores: [store] }) => store),
      path: () => "/app/settings/store",
      event: "settings.updated",
      refetch: () => "/admin/stores",
      steps: [{ what: "renamed", change: ({ id }, marker) => api("POST", `/admin/stores/${id}`, { name: marker }) }],
    },
    "publishable API key list": publishableKeys.list,
    "publishable API key page": publishableKeys.detail,
    "secret API key list": secretKeys.list,
    "tax region list": {
      path: () => "/app/settings/tax-regions",
      event: "settings.updated",
      refetch: () => "/admin/tax-regions",
      steps: [{
        what: "tax region created",
        marker: nextCountry,
        shows: ([, country]) => country,
        change: (_, [code]) => api("POST", "/admin/tax-regions", { country_code: code, provider_id: "tp_system" }),
      }],
    },
    "tax region page": {
      setup: () => created("/admin/tax-regions", { country_code: nextCountry()[0], provider_id: "tp_system" }),
      path: ({ id }) => `/app/settings/tax-regions/${id}`,
      event: "settings.updated",
      refetch: () => "/admin/tax-rates",
      steps: [{
        what: "tax rate",
        change: ({ id }, name) => api("POST", "/admin/tax-rates", { tax_region_id: id, name, code: name.replace(/\W+/g, "-"), rate: 7 }),
      }],
    },
    "collection page": collections.detail,
    "campaign page": {
      setup: () => created("/admin/campaigns", { name: unique("Before"), campaign_identifier: unique("campaign").replace(/\W+/g, "-") }),
      path: ({ id }) => `/app/campaigns/${id}`,
      event: "promotion.updated",
      refetch: ({ id }) => `/admin/campaigns/${id}`,
      steps: [{ what: "renamed", change: ({ id }, marker) => api("POST", `/admin/campaigns/${id}`, { name: marker }) }],
    },
    "promotion page": {
      setup: () => created("/admin/promotions", promotion(unique("BEFORE").replace(/\W+/g, "-"))),
      path: ({ id }) => `/app/promotions/${id}`,
      event: "promotion.updated",
      refetch: ({ id }) => `/admin/promotions/${id}`,
      steps: [{
        what: "code changed",
        marker: () => unique("LIVE").replace(/\W+/g, "-"),
        change: ({ id }, code) => api("POST", `/admin/promotions/${id}`, { code }),
      }],
    },
    "region page": regions.detail,
    "sales channel page": salesChannels.detail,
    "customer group page": customerGroups.detail,
    "price list page": priceLists.detail,
    "order page": {
      setup: orderToHandle,
      path: ({ id }) => `/app/orders/${id}`,
      event: "order.updated",
      refetch: ({ id }) => `/admin/orders/${id}`,
      steps: [
        {
          what: "payment captured",
          shows: () => "Payment captured",
          change: (order) => api("POST", `/admin/payment-collections/${order.collection.id}/mark-as-paid`, { order_id: order.id }),
        },
        {
          what: "payment refunded",
          shows: () => "Payment refunded",
          change: async (order) => {
            const { order: { payment_collections: [{ payments: [payment] }] } } = await api("GET", `/admin/orders/${order.id}?fields=id,*payment_collections.payments`);
            await api("POST", `/admin/payments/${payment.id}/refund`, { amount: 100 });
          },
        },
        {
          what: "fulfilled",
          shows: () => "Items fulfilled",
          change: (order) => api("POST", `/admin/orders/${order.id}/fulfillments`, {
            items: [{ id: order.item.id, quantity: 3 }],
            location_id: order.location.id,
            shipping_option_id: order.option.id,
          }),
        },
        {
          what: "shipped",
          shows: () => "Items shipped",
          change: async (order) => {
            const fulfillment = await fulfillmentOf(order);
            await api("POST", `/admin/orders/${order.id}/fulfillments/${fulfillment.id}/shipments`, { items: [{ id: order.item.id, quantity: 3 }] });
          },
        },
        {
          what: "delivered",
          shows: () => "Items delivered",
          change: async (order) => {
            const fulfillment = await fulfillmentOf(order);
            await api("POST", `/admin/orders/${order.id}/fulfillments/${fulfillment.id}/mark-as-delivered`);
          },
        },
        {
          what: "return requested",
          shows: () => "Return #",
          change: (order) => requestChange("returns", order, [["request-items", oneLamp(order)]]),
        },
        {
          what: "claim requested",
          shows: () => "Claim #",
          change: (order) => requestChange("claims", order, [["claim-items", { items: [{ id: order.item.id, quantity: 1, reason: "missing_item" }] }]]),
        },
        {
          what: "exchange requested",
          shows: () => "Exchange #",
          change: (order) => requestChange("exchanges", order, [
            ["inbound/items", oneLamp(order)],
            ["outbound/items", { items: [{ variant_id: order.variant.id, quantity: 1 }] }],
          ]),
        },
      ],
    },
    "draft order page": {
      setup: draftOrder,
      path: ({ id }) => `/app/draft-orders/${id}`,
      event: "order.updated",
      // The draft order page reads the draft through the orders API.
      refetch: ({ id }) => `/admin/orders/${id}`,
      steps: [
        {
          what: "address changed",
          change: ({ id }, marker) => api("POST", `/admin/draft-orders/${id}`, { shipping_address: { address_1: marker } }),
        },
        {
          what: "item added",
          change: async ({ id }, marker) => {
            await api("POST", `/admin/draft-orders/${id}/edit`);
            await api("POST", `/admin/draft-orders/${id}/edit/items`, { items: [{ title: marker, unit_price: 900, quantity: 1 }] });
            await api("POST", `/admin/draft-orders/${id}/edit/confirm`);
          },
        },
      ],
    },
    "reservation list": {
      setup: stockedItem,
      path: () => "/app/reservations",
      event: "inventory.updated",
      refetch: () => "/admin/reservations",
      steps: [{ what: "reservation created", change: reserve }],
    },
    "reservations of an inventory item": {
      setup: stockedItem,
      path: ({ id }) => `/app/inventory/${id}`,
      event: "inventory.updated",
      refetch: () => "/admin/reservations",
      steps: [{ what: "reservation created", change: reserve }],
    },
    "shipping profile list": shippingProfiles.list,
    "shipping profile page": shippingProfiles.detail,
    "customer group members": {
      setup: async () => ({
        ...(await created("/admin/customer-groups", { name: unique("Members") })),
        customer: await created("/admin/customers", { email: email("member") }),
      }),
      path: ({ id }) => `/app/customer-groups/${id}`,
      event: "customer.updated",
      refetch: () => "/admin/customers",
      steps: [{
        what: "customer added",
        shows: (_, { customer }) => customer.email,
        change: ({ id, customer }) => api("POST", `/admin/customer-groups/${id}/customers`, { add: [customer.id] }),
      }],
    },
    "price list prices": {
      setup: () => priceListAndProduct(),
      path: ({ id }) => `/app/price-lists/${id}`,
      event: "price_list.updated",
      refetch: () => "/admin/products",
      steps: [{
        what: "product priced",
        shows: (_, { product }) => product.title,
        change: ({ id, product }) => api("POST", `/admin/price-lists/${id}/prices/batch`, {
          create: [{ variant_id: product.variants[0].id, amount: 900, currency_code: "eur" }],
        }),
      }],
    },
    "order page, later changes": {
      setup: orderWithReturn,
      path: ({ id }) => `/app/orders/${id}`,
      event: "order.updated",
      refetch: ({ id }) => `/admin/orders/${id}`,
      steps: [
        {
          what: "fulfillment canceled",
          shows: () => "Fulfillment canceled",
          change: (order) => api("POST", `/admin/orders/${order.id}/fulfillments/${order.single.id}/cancel`, {}),
        },
        {
          what: "return received",
          shows: (_, order) => `Return #${order.returnId.slice(-7)} received`,
          change: async (order) => {
            await api("POST", `/admin/returns/${order.returnId}/receive`, {});
            await api("POST", `/admin/returns/${order.returnId}/receive-items`, oneLamp(order));
            await api("POST", `/admin/returns/${order.returnId}/receive/confirm`, {});
          },
        },
        {
          what: "transfer requested",
          shows: () => "Order transfer #",
          change: (order) => api("POST", `/admin/orders/${order.id}/transfer`, { customer_id: order.customer.id }),
        },
      ],
    },

    "category list, deleted": categories.deleted,
    "product tag list, deleted": tags.deleted,
    "product type list, deleted": types.deleted,
    "collection list, deleted": collections.deleted,
    "location list, deleted": locations.deleted,
    "shipping option on a location, deleted": deletion({
      path: ({ id }) => `/app/settings/locations/${id}`,
      event: "settings.updated",
      refetch: ({ id }) => `/admin/stock-locations/${id}`,
      setup: async () => {
        const zone = await shippingZone();
        return { ...zone, option: await shippingOption(zone, unique("Doomed option")) };
      },
      shows: ({ option }) => option.name,
      remove: ({ option }) => api("DELETE", `/admin/shipping-options/${option.id}`),
    }),
    "shipping profile list, deleted": shippingProfiles.deleted,
    "user list, deleted": deletion({
      screen: "/app/settings/users",
      apiPath: "/admin/users",
      event: "settings.updated",
      setup: () => createAdmin(medusa.base, api, { email: email("doomed-admin"), password: "e2e-doomed-password", first_name: "Doomed", last_name: "Admin" }),
      shows: (user) => user.email,
    }),
    "invites, deleted": deletion({
      screen: "/app/settings/users/invite",
      apiPath: "/admin/invites",
      event: "settings.updated",
      setup: () => created("/admin/invites", { email: email("doomed-invitee") }),
      shows: (invite) => invite.email,
    }),
    "publishable API key list, deleted": publishableKeys.deleted,
    "secret API key list, deleted": secretKeys.deleted,
    "tax region list, deleted": deletion({
      screen: "/app/settings/tax-regions",
      apiPath: "/admin/tax-regions",
      event: "settings.updated",
      setup: async () => {
        const [code, country] = nextCountry();
        return { ...(await created("/admin/tax-regions", { country_code: code, provider_id: "tp_system" })), country };
      },
      shows: ({ country }) => country,
    }),
    "region list, deleted": regions.deleted,
    "sales channel list, deleted": salesChannels.deleted,
    "customer list, deleted": deletion({
      screen: "/app/customers",
      apiPath: "/admin/customers",
      event: "customer.updated",
      setup: () => created("/admin/customers", { email: email("doomed-customer") }),
      shows: (customer) => customer.email,
    }),
    "customer group list, deleted": customerGroups.deleted,
    "campaign list, deleted": deletion({
      screen: "/app/campaigns",
      apiPath: "/admin/campaigns",
      event: "promotion.updated",
      setup: () => created("/admin/campaigns", { name: unique("Doomed"), campaign_identifier: unique("doomed").replace(/\W+/g, "-") }),
      shows: (campaign) => campaign.name,
    }),
    "promotion list, deleted": deletion({
      screen: "/app/promotions",
      apiPath: "/admin/promotions",
      event: "promotion.updated",
      setup: () => created("/admin/promotions", promotion(unique("DOOMED").replace(/\W+/g, "-"))),
      shows: (promotion) => promotion.code,
    }),
    "price list list, deleted": priceLists.deleted,
    "inventory list, deleted": deletion({
      screen: "/app/inventory",
      apiPath: "/admin/inventory-items",
      event: "inventory.updated",
      setup: () => created("/admin/inventory-items", { sku: unique("DOOMED").replace(/\W+/g, "-"), title: unique("Doomed Lamp") }),
      shows: (item) => item.title,
    }),
    "reservation list, deleted": deletion({
      screen: "/app/reservations",
      apiPath: "/admin/reservations",
      event: "inventory.updated",
      setup: async () => {
        const description = unique("Doomed reservation");
        const { reservation } = await reserve(await stockedItem(), description);
        return { ...reservation, description };
      },
      shows: (reservation) => reservation.description,
    }),
    "draft order list, deleted": deletion({
      screen: "/app/draft-orders",
      apiPath: "/admin/draft-orders",
      event: "order.updated",
      setup: draftOrder,
      shows: (draft) => draft.email,
    }),
  };

  /** A step's marker (unique text, or what `marker` makes) and the text its screen must show. */
  const markOf = (step, record) => {
    const marker = step.marker ? step.marker() : unique(`Live ${step.what}`);
    return { marker, text: step.shows ? step.shows(marker, record) : marker };
  };

  /** Opens `screen` in `context` after its setup; resolves with its page and setup's record. */
  async function open(context, screen) {
    const record = (await screen.setup?.()) ?? {};
    return { record, ...(await openScreen(context, medusa.base, screen.path(record))) };
  }

  before(async () => {
    ({ push, medusa, api, browser } = await startAll());
    regionId = (await created("/admin/regions", { name: "Europe", currency_code: "eur" })).id;
  });

  after(async () => {
    await stopAll({ push, medusa, browser });
    printSummary(figures);
  });

  for (const [name, screen] of Object.entries(screens)) {
    test(`${name}: ${screen.steps.map(({ what }) => what).join(", ")}`, { timeout: 120_000 }, async (t) => {
      const context = await session();
      t.after(() => context.close());
      const { page, problems, record } = await open(context, screen);
      for (const step of screen.steps) {
        const { marker, text } = markOf(step, record);
        const watch = { screen: name, page, text, gone: step.gone, event: screen.event, refetch: screen.refetch(record) };
        await breakdown(step.what, [watch], () => step.change(record, marker), { api, figures });
      }
      assert.deepEqual(problems, [], "no errors in the page");
    });
  }

  test("500 prices changed in one batch refetch the open price list page a bounded number of times", { timeout: 240_000 }, async (t) => {
    const context = await session();
    t.after(() => context.close());
    const currencies = ["eur", "usd", "dkk", "sek", "gbp"];
    const { page, record: { id, product } } = await open(context, { setup: () => priceListAndProduct(100), path: ({ id }) => `/app/price-lists/${id}` });
    // The page asks for the list's prices (its count of overrides) and for the products it prices.
    const isPageQuery = (request) => {
      const url = new URL(request.url());
      return request.method() === "GET" && (url.pathname === `/admin/price-lists/${id}/prices` || (url.pathname === "/admin/products" && url.searchParams.has("price_list_id[0]")));
    };
    let refetches = 0;
    page.on("request", (request) => { if (isPageQuery(request)) refetches++; });
    /** Resolves with the number of refetches until one showed the list's prices as `isFinal` accepts. */
    const refetchesFor = async (change, isFinal) => {
      refetches = 0;
      const final = page.waitForResponse(async (response) => {
        const url = new URL(response.url());
        return url.pathname === `/admin/price-lists/${id}/prices` && response.ok() && isFinal(await response.json());
      }, { timeout: 120_000 });
      await change();
      await final;
      return refetches;
    };
    const prices = product.variants.flatMap(({ id: variant_id }) => currencies.map((currency_code) => ({ variant_id, currency_code, amount: 900 })));
    let created = [];
    const onCreate = await refetchesFor(async () => {
      ({ created } = await api("POST", `/admin/price-lists/${id}/prices/batch`, { create: prices }));
    }, (body) => body.count === 500);
    await watchText(page, product.title).then((shown) => shown());
    const onUpdate = await refetchesFor(
      () => api("POST", `/admin/price-lists/${id}/prices/batch`, {
        update: created.map((price) => ({ id: price.id, variant_id: price.price_set.variant.id, currency_code: price.currency_code, amount: 800 })),
      }),
      (body) => body.count === 500,
    );
    const onDelete = await refetchesFor(
      () => api("POST", `/admin/price-lists/${id}/prices/batch`, { delete: created.map(({ id: priceId }) => priceId) }),
      (body) => body.count === 0,
    );
    console.log(`# bulk 500 prices created → ${onCreate} refetches; updated → ${onUpdate}; deleted → ${onDelete}`);
    for (const count of [onCreate, onUpdate, onDelete]) assert.ok(count >= 1 && count <= 20, `a batch of 500 prices refetches 1 to 20 times, not ${count}`);
  });

  /** How many screens the control opens at once (each is a tab of the dashboard). */
  const AT_ONCE = 7;

  test("without the service none of these changes reach their open screens, and once it is back its resync brings them", { timeout: 600_000 }, async (t) => {
    const all = Object.entries(screens);
    for (let from = 0; from < all.length; from += AT_ONCE) {
      await push.waitForConnections(0);
      const context = await session();
      t.after(() => context.close());
      const opened = [];
      for (const [name, screen] of all.slice(from, from + AT_ONCE)) opened.push({ name, screen, ...(await open(context, screen)) });

      await push.kill();
      for (const { page } of opened) await liveIndicator(page, "reconnecting");
      const expected = [];
      for (const { name, screen, page, record } of opened) {
        for (const step of screen.steps) {
          const { marker, text } = markOf(step, record);
          const gone = step.gone === true;
          // A deleted record's row is there (the list was loaded before the service went down).
          if (gone) await (await watchText(page, text))();
          await step.change(record, marker);
          // An order's activity shows its two newest entries and folds the older ones away: once
          // refetched, a screen shows at least its last change.
          const last = step === screen.steps.at(-1);
          expected.push({ name, page, text, gone, shown: last && (await watchText(page, text, { gone })) });
        }
      }
      // With the service up each of these screens showed its change within a second. Without it,
      // nothing else refetches them: five seconds on, no screen shows its change. The window
      // bounds what the push path takes; it synchronises nothing.
      const window = Date.now() + 5_000;
      await until("the control window to pass", async () => {
        for (const { name, page, text, gone } of expected) {
          assert.equal((await page.evaluate(() => document.body.innerText)).includes(text), gone, `${name} stayed as it was (${text})`);
        }
        return Date.now() > window;
      }, 15_000);

      await push.start();
      // The tabs retry with a growing backoff (up to 30 s apart): one of them connects again first.
      await until("the tabs to connect again", async () => (await push.connections()) === 1, 60_000);
      await Promise.all(expected.filter(({ shown }) => shown).map(({ name, text, shown }) => shown().catch((err) => assert.fail(`${name}: ${text} after the resync: ${err.message}`))));
      for (const { page } of opened) await liveIndicator(page, "open");
      await context.close();
    }
  });
});
