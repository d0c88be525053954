/** debounce: a burst of calls becomes one call with the last arguments. */
import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { debounce } from "../admin-push.js";

test("a burst of calls runs once, after the quiet period, with the last arguments", (t) => {
  mock.timers.enable({ apis: ["setTimeout"] });
  t.after(() => mock.timers.reset());
  const calls = [];
  const d = debounce((x) => calls.push(x), 100);
  d(1); d(2);
  mock.timers.tick(99);
  d(3);
  mock.timers.tick(99);
  assert.deepEqual(calls, []);
  mock.timers.tick(1);
  assert.deepEqual(calls, [3]);
});

test("flush runs a pending call now and cancel drops it", (t) => {
  mock.timers.enable({ apis: ["setTimeout"] });
  t.after(() => mock.timers.reset());
  const calls = [];
  const d = debounce((x) => calls.push(x), 100);
  d("flushed");
  d.flush();
  d("cancelled");
  d.cancel();
  mock.timers.tick(1000);
  d.flush();
  assert.deepEqual(calls, ["flushed"]);
});
