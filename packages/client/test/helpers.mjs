/**
 * Helpers for the package's Node tests. The service itself is started by the repository's shared
 * test harness (the real binary from ADMIN_PUSH_BIN, never a stand-in).
 */
import { createHmac } from "node:crypto";
import { JWT_SECRET, WAIT_MS, adminToken } from "../../../tests/browser/lib/service.mjs";

export { adminToken, emitProduct, freePort, startService } from "../../../tests/browser/lib/service.mjs";

/** A WebSocket subscriber for `actorId`, resolved once the service sent `ready`. */
export async function openWebSocket(service, actorId) {
  const res = await fetch(`${service.base}/admin-ws/ticket`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminToken({ actorId })}` },
  });
  const { ticket } = await res.json();
  const ws = new WebSocket(`ws://127.0.0.1:${service.port}/admin-ws?ticket=${encodeURIComponent(ticket)}`);
  await new Promise((resolve, reject) => {
    ws.onmessage = (e) => { if (JSON.parse(e.data).event === "ready") resolve(); };
    ws.onerror = () => reject(new Error("the holder WebSocket failed"));
  });
  return ws;
}

/**
 * Records what a client reports; `until(predicate)` resolves once the recorded state satisfies
 * it (checked on every report), or rejects after WAIT_MS with what was recorded.
 */
export function record(push) {
  const seen = { statuses: [], errors: [], events: [] };
  const waiters = new Set();
  const check = () => {
    for (const w of waiters) if (w.predicate(seen)) { waiters.delete(w); clearTimeout(w.timer); w.resolve(seen); }
  };
  push.on("status", (s) => { seen.statuses.push(s); check(); });
  push.on("error", (e) => { seen.errors.push(e); check(); });
  push.on("*", (_data, envelope) => { seen.events.push(envelope); check(); });
  const until = (predicate, what) => new Promise((resolve, reject) => {
    if (predicate(seen)) return resolve(seen);
    const w = { predicate, resolve };
    w.timer = setTimeout(() => {
      waiters.delete(w);
      reject(new Error(`not within ${WAIT_MS} ms: ${what}; recorded ${JSON.stringify(seen)}`));
    }, WAIT_MS);
    waiters.add(w);
  });
  return { seen, until };
}

/** An admin JWT like the Medusa plugin signs: with the admin's display name in `name`. */
export function namedToken({ actorId, name, secs = 3600 }) {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({
    actor_id: actorId, actor_type: "user", name, iat: now, exp: now + secs,
  })}`;
  return `${unsigned}.${createHmac("sha256", JWT_SECRET).update(unsigned).digest("base64url")}`;
}

/**
 * Records what `push.onPresence(record)` reports; `until(predicate)` resolves once the latest
 * viewers satisfy it, or rejects after WAIT_MS with every list seen.
 */
export function watchPresence(push, record) {
  const seen = [];
  const waiters = new Set();
  push.onPresence(record, (viewers) => {
    seen.push(viewers);
    for (const w of waiters) if (w.predicate(viewers)) { waiters.delete(w); clearTimeout(w.timer); w.resolve(viewers); }
  });
  const until = (predicate, what) => new Promise((resolve, reject) => {
    if (seen.length && predicate(seen.at(-1))) return resolve(seen.at(-1));
    const w = { predicate, resolve };
    w.timer = setTimeout(() => {
      waiters.delete(w);
      reject(new Error(`not within ${WAIT_MS} ms: ${what} on ${record}; seen ${JSON.stringify(seen)}`));
    }, WAIT_MS);
    waiters.add(w);
  });
  return { seen, until };
}
