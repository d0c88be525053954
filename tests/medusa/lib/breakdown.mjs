/**
 * Where the time goes between an admin API call and an open screen showing its change, for every
 * suite file that measures it: from the moment the (last) admin API call of the change returned,
 * in ms (negative: before it returned), the push frame naming the event on the browser's
 * WebSocket, the screen's own refetch leaving the page, Medusa's first byte for it, the DOM
 * showing the change, and Medusa's own time for the query (answer minus refetch sent). The
 * refetch is the one that brought the change: of the screen's requests for its query sent since
 * the last call began, the last answered before the DOM showed it; the frame is the last one
 * before that refetch left.
 *
 * Printed as measured, never asserted: they depend on the machine. Each figure is one
 * `# latency <change> → <screen>: frame …` line (a column the change has none of shows `-`), and
 * the suite file's summary gives median and range per row. With MEDUSA_SUITE_TRACE=1 every
 * request the page made after the change is printed too (`# trace`), to see what a slow screen
 * waited for.
 */
import { loggedInContext, until, watchText } from "./stack.mjs";

const COLUMNS = ["frame", "sent", "answered", "dom", "query"];
const TRACE = process.env.MEDUSA_SUITE_TRACE === "1";

/**
 * Records, in every page of `context`, when each WebSocket message arrived, by the page's own
 * clock (the one watchText reads), before the plugin's client sees it. Call before opening the
 * context's pages.
 */
export function recordFrames(context) {
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

/** A browser context logged in to the admin at `base`, its push frames recorded (recordFrames). */
export async function framedContext(browser, base) {
  const context = await loggedInContext(browser, base);
  await recordFrames(context);
  return context;
}

/** When frames naming `event` arrived from `since` on, in any page of `page`'s context (the tab holding the connection), earliest first. */
async function framesOf(page, event, since) {
  const times = [];
  for (const tab of page.context().pages()) {
    const at = await tab.evaluate(({ event, since }) => (window.__adminPushFrames ?? [])
      .filter(([time, data]) => time >= since && data.includes(event))
      .map(([time]) => time), { event, since }).catch(() => []);
    times.push(...at);
  }
  return times.sort((a, b) => a - b);
}

/** When `request` left the page and Medusa's first byte came back, by the page's clock; null if it failed. */
async function timesOf(request) {
  const response = await request.response().catch(() => null);
  if (!response) return null;
  await response.finished().catch(() => undefined);
  const { startTime, responseStart } = request.timing();
  return { sent: Math.round(startTime), answered: Math.round(startTime + responseStart) };
}

const GET_ADMIN = (request) => request.method() === "GET" && new URL(request.url()).pathname.startsWith("/admin/");

/**
 * Makes `change` while each of `watches` looks at its screen, and reports each screen's figures.
 * `label` names the change. A watch: `screen` (its name), `page` (a tab opened with openScreen, in a context given to
 * recordFrames), `text` the screen must show (or, with `gone`, stop showing), `event` the push
 * it waits for, and `refetch`: the path of the screen's own query (`/admin/campaigns`), or a
 * function of a URL that says whether a request is it. `api` is the adminApi the change uses:
 * its last call is the one the figures start from; `figures` collects the results (printSummary).
 * Resolves with one result per watch.
 */
export async function breakdown(label, watches, change, { api, figures }) {
  const armed = [];
  for (const watch of watches) {
    // A screen must show what is to leave it before the change, or "gone" is seen at once.
    if (watch.gone) await (await watchText(watch.page, watch.text))();
    const requests = [];
    const matches = typeof watch.refetch === "function" ? watch.refetch : (url) => url.pathname === watch.refetch;
    const onRequest = (request) => { if (GET_ADMIN(request)) requests.push(request); };
    watch.page.on("request", onRequest);
    armed.push({ watch, requests, matches, onRequest, shown: await watchText(watch.page, watch.text, { gone: watch.gone }) });
  }
  const before = Date.now();
  try {
    await change();
  } catch (err) {
    for (const { watch, onRequest } of armed) watch.page.off("request", onRequest);
    throw err;
  }
  const last = api.lastCall && api.lastCall.start >= before ? api.lastCall : { start: before, end: Date.now() };
  const returned = last.end;
  const results = [];
  for (const { watch, requests, matches, onRequest, shown } of armed) {
    try {
      const domAt = await shown();
      const dom = domAt - returned;
      // The refetch that brought the change left before the DOM showed it; its request event may
      // reach this process a moment after the DOM's.
      const own = () => requests.filter((r) => matches(new URL(r.url())));
      await until("the screen's refetch", () => own().length > 0, 2_000).catch(() => undefined);
      const sent = [];
      for (const request of own()) {
        const times = await timesOf(request);
        if (times && times.sent >= last.start) sent.push(times);
      }
      // The one that brought the change: the last answered before the DOM showed it (a change of
      // several calls, or a page asking for the same record twice, refetches more than once).
      const answeredBefore = sent.filter((t) => t.answered <= domAt).sort((a, b) => a.answered - b.answered);
      const refetch = answeredBefore.at(-1) ?? sent[0] ?? null;
      // And the push that caused it: the last frame naming the event before it left.
      const frames = watch.event ? await framesOf(watch.page, watch.event, last.start) : [];
      const frameAt = frames.filter((at) => refetch && at <= refetch.sent).at(-1) ?? frames[0] ?? null;
      const result = {
        label: `${label} → ${watch.screen}`,
        frame: frameAt === null ? null : frameAt - returned,
        sent: refetch ? refetch.sent - returned : null,
        answered: refetch ? refetch.answered - returned : null,
        dom,
        query: refetch ? refetch.answered - refetch.sent : null,
      };
      figures?.push(result);
      results.push(result);
      console.log(`# latency ${result.label}: ${COLUMNS.map((k) => `${k} ${result[k] ?? "-"}`).join(", ")}`);
      if (TRACE) {
        const lines = [];
        for (const request of requests) {
          const times = await timesOf(request);
          if (!times || times.sent < last.start) continue;
          const url = new URL(request.url());
          lines.push(`${times.sent - returned}→${times.answered - returned} ${url.pathname}${url.search.slice(0, 120)}`);
        }
        console.log(`# trace ${result.label}: ${lines.join(" | ")}`);
      }
    } finally {
      watch.page.off("request", onRequest);
    }
  }
  return results;
}

/** Median and range of `values` (nulls left out), as "median (min to max)", or "-" without any. */
export function spread(values) {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  if (sorted.length === 0) return "-";
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : Math.round((sorted[mid - 1] + sorted[mid]) / 2);
  return sorted.length === 1 ? `${median}` : `${median} (${sorted[0]} to ${sorted.at(-1)})`;
}

/** Prints the median and range of each row of `figures` (as `breakdown` collected them). */
export function printSummary(figures) {
  const labels = [...new Set(figures.map(({ label }) => label))];
  const rows = labels.map((label) => {
    const of = figures.filter((f) => f.label === label);
    return `#   ${label} (${of.length}): ${COLUMNS.map((k) => `${k} ${spread(of.map((f) => f[k]))}`).join(", ")}`;
  });
  if (rows.length) console.log(`# latency summary (ms after the API call returned: median (min to max))\n${rows.join("\n")}`);
}
