/**
 * Background schedules: intervals longer than one timer can hold (2^31-1 ms, ~24.8 days) are
 * waited out in steps instead of overflowing into a timer that fires every millisecond.
 *
 * @module
 */
import assert from "node:assert/strict";
import { makeConfig } from "../../src/config.ts";
import { setLongTimeout } from "../../src/services/maintenance.ts";
import { createRegistry } from "../../src/services/registry.ts";
import { memoryStore } from "../../src/storage/open_store.ts";

const HOUR = 3_600_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("maintenance: 720h schedules (over 24.8 days) do not fire at once", async () => {
  const store = memoryStore();
  let listings = 0;
  const list = store.listRepositories.bind(store);
  store.listRepositories = () => {
    listings++;
    return list();
  };
  const messages: string[] = [];
  const config = makeConfig({
    storage: "memory",
    gc: { intervalMs: 720 * HOUR, gracePeriodMs: HOUR, adminEndpoint: false },
    uploadPurging: { enabled: true, ageMs: HOUR, intervalMs: 720 * HOUR, dryRun: false },
  });
  const registry = createRegistry(config, store, (_level, message) => messages.push(message));
  registry.maintenance.start();
  try {
    await sleep(200);
    assert.deepEqual(messages.filter((m) => m === "garbage collection"), []);
    // Upload purging lists the repositories on each run; the start loads the catalog once.
    assert.ok(listings <= 1, `repositories listed ${listings} times in 200 ms`);
  } finally {
    await registry.maintenance.close();
    store.close();
  }
});

Deno.test("maintenance: a long wait is chained in steps and fires once, on time", async () => {
  let fired = 0;
  const started = performance.now();
  let firedAt = 0;
  setLongTimeout(
    () => {
      fired++;
      firedAt = performance.now() - started;
    },
    80,
    10,
  );
  await sleep(40);
  assert.equal(fired, 0, "fired before its delay");
  await sleep(160);
  assert.equal(fired, 1);
  assert.ok(firedAt >= 79, `fired after ${firedAt} ms`);
});

Deno.test("maintenance: a cancelled long wait never fires", async () => {
  let fired = 0;
  const timer = setLongTimeout(() => fired++, 30, 10);
  await sleep(15);
  timer.cancel();
  await sleep(60);
  assert.equal(fired, 0);
});
