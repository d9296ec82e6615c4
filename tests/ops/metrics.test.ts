/**
 * `/metrics` without a walk of the store per scrape, and the debug address (distribution's
 * `http.debug.addr`) that serves `/metrics` and `/healthz` apart from the API.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { makeConfig } from "../../src/config.ts";
import { BackgroundGauge } from "../../src/ops/metrics.ts";
import { memoryStore } from "../../src/storage/open_store.ts";
import { berthCommand, spawnServer } from "../helpers/server.ts";
import { withTempDir } from "../helpers/temp.ts";
import { freePort } from "../helpers/images.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("metrics: scrapes do not walk every repository each time", async () => {
  const store = memoryStore();
  const app = createApp(makeConfig({ storage: "memory" }), { store, log: () => {} });
  try {
    for (let i = 0; i < 3; i++) {
      const open = await app.handler(
        new Request(`http://registry/v2/repo${i}/blobs/uploads/`, { method: "POST" }),
      );
      await open.body?.cancel();
      assert.equal(open.status, 202);
    }
    let walks = 0;
    const list = store.listRepositories.bind(store);
    store.listRepositories = () => {
      walks++;
      return list();
    };
    for (let i = 0; i < 10; i++) {
      const body = await (await app.handler(new Request("http://registry/metrics"))).text();
      assert.match(body, /^berth_upload_sessions_open 3$/m);
    }
    assert.ok(walks <= 1, `10 scrapes walked the repositories ${walks} times`);
  } finally {
    await app.close();
    store.close();
  }
});

Deno.test("metrics: a background gauge answers its last count and recounts when stale", async () => {
  let counts = 0;
  let value = 1;
  const gauge = new BackgroundGauge(() => {
    counts++;
    return Promise.resolve(value);
  }, 30);
  assert.equal(await gauge.read(), 1); // the first read waits for a count
  value = 2;
  assert.equal(await gauge.read(), 1); // fresh: no recount
  assert.equal(counts, 1);
  await sleep(40);
  assert.equal(await gauge.read(), 1); // stale: answers the last count, recounts behind
  await sleep(5);
  assert.equal(await gauge.read(), 2);
  assert.equal(counts, 2);
});

Deno.test("metrics: http.debug.addr serves /metrics and /healthz apart from the API; health --config probes it", async () => {
  await withTempDir("berth-debug-", async (dir) => {
    const port = freePort();
    const config = `${dir}/config.yml`;
    await Deno.writeTextFile(
      config,
      `version: 0.1\nhttp:\n  debug:\n    addr: 127.0.0.1:${port}\n`,
    );
    const server = await spawnServer({ dataDir: `${dir}/data`, args: [config] });
    try {
      const metricsUrl = `http://127.0.0.1:${port}`;
      const metrics = await fetch(`${metricsUrl}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^berth_http_requests_in_flight /m);
      const health = await fetch(`${metricsUrl}/healthz`);
      assert.equal(health.status, 200);
      assert.equal((await health.json()).status, "ok");
      const api = await fetch(`${metricsUrl}/v2/`);
      await api.body?.cancel();
      assert.equal(api.status, 404, "the debug address does not serve the API");
      const main = await fetch(`${server.url}/metrics`);
      await main.body?.cancel();
      assert.equal(main.status, 200);
      // `berth health --config` probes the debug address the file names.
      const [cmd, ...pre] = berthCommand();
      const probe = await new Deno.Command(cmd!, {
        args: [...pre, "health", "--config", config],
        env: {},
        stdin: "null",
      }).output();
      assert.equal(probe.code, 0, new TextDecoder().decode(probe.stderr));
      assert.equal(JSON.parse(new TextDecoder().decode(probe.stdout)).status, "ok");
    } finally {
      await server.stop("SIGTERM");
    }
  });
});
