import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { makeConfig } from "../../src/config.ts";
import {
  assertError,
  bytesOf,
  digestOf,
  expectStatus,
  pushBlob,
  randomBytes,
  text,
} from "../helpers/registry.ts";
import { startServer } from "../helpers/server.ts";

/** The value of one metric series in exposition text, or `undefined`. */
function metric(exposition: string, series: string): number | undefined {
  const line = exposition.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("ops: /healthz answers 200 with the storage and write checks", async () => {
  const server = await startServer();
  try {
    const response = await fetch(`${server.url}/healthz`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("Content-Type") ?? "", /^application\/json/);
    assert.deepEqual(await response.json(), {
      status: "ok",
      checks: { storage: "ok", writable: "ok" },
    });
    const head = await fetch(`${server.url}/healthz`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    const post = await fetch(`${server.url}/healthz`, { method: "POST" });
    await post.body?.cancel();
    assert.equal(post.status, 405);
    // The probe leaves nothing behind.
    const tmp = [...Deno.readDirSync(`${server.dataDir}/docker/registry/v2/_tmp`)];
    assert.deepEqual(tmp, []);
  } finally {
    await server.close();
  }
});

Deno.test("ops: /healthz answers 503 when the data directory is gone", async () => {
  const server = await startServer();
  try {
    // A file where the directory was: nothing (catalog journal, purger) can bring it back.
    // (Background work at start may recreate the folder between the two steps: retry.)
    for (let attempt = 0;; attempt++) {
      await Deno.remove(server.dataDir, { recursive: true }).catch(() => {});
      try {
        await Deno.writeTextFile(server.dataDir, "not a directory", { createNew: true });
        break;
      } catch (error) {
        if (attempt >= 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const response = await fetch(`${server.url}/healthz`);
    const body = await response.json();
    assert.equal(response.status, 503);
    assert.equal(body.status, "unavailable");
    assert.match(body.checks.storage, /^unreachable/);
  } finally {
    await server.close();
  }
});

Deno.test("ops: /metrics counts requests by route and status, bytes, latency, sessions", async () => {
  const server = await startServer();
  try {
    const blob = randomBytes(4096);
    await pushBlob(server.url, "ops/repo", blob);
    await expectStatus(await fetch(`${server.url}/v2/ops/repo/blobs/${digestOf(blob)}`), 200);
    await assertError(
      await fetch(`${server.url}/v2/ops/repo/blobs/${digestOf(text("none"))}`),
      404,
      "BLOB_UNKNOWN",
    );
    const open = await fetch(`${server.url}/v2/ops/repo/blobs/uploads/`, { method: "POST" });
    await expectStatus(open, 202);

    const response = await fetch(`${server.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("Content-Type") ?? "", /^text\/plain; version=0\.0\.4/);
    const body = await response.text();
    const requests = (labels: string) => metric(body, `berth_http_requests_total{${labels}}`);
    assert.equal(requests(`route="uploads",method="POST",status="201"`), 1);
    assert.equal(requests(`route="uploads",method="POST",status="202"`), 1);
    assert.equal(requests(`route="blobs",method="GET",status="200"`), 1);
    assert.equal(requests(`route="blobs",method="GET",status="404"`), 1);
    assert.equal(metric(body, `berth_http_request_bytes_total{route="uploads"}`), 4096);
    assert.ok(metric(body, `berth_http_response_bytes_total{route="blobs"}`)! > 4096);
    assert.equal(
      metric(body, `berth_http_request_duration_seconds_count{route="blobs",method="GET"}`),
      2,
    );
    assert.equal(
      metric(
        body,
        `berth_http_request_duration_seconds_bucket{route="blobs",method="GET",le="+Inf"}`,
      ),
      2,
    );
    assert.equal(metric(body, "berth_upload_sessions_open"), 1);
    assert.equal(metric(body, "berth_storage_errors_total"), 0);
    assert.equal(metric(body, "berth_http_requests_in_flight"), 1);
  } finally {
    await server.close();
  }
});

Deno.test("ops: a request id is echoed when given and made up when not", async () => {
  const server = await startServer();
  try {
    const given = await fetch(`${server.url}/v2/`, { headers: { "X-Request-Id": "req-42" } });
    await expectStatus(given, 200);
    assert.equal(given.headers.get("X-Request-Id"), "req-42");
    const bad = await fetch(`${server.url}/v2/`, { headers: { "X-Request-Id": "a b\tc" } });
    await expectStatus(bad, 200);
    const made = bad.headers.get("X-Request-Id") ?? "";
    assert.match(made, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-z]+$/);
    // Made ids are unique: the process's prefix and a new count.
    const again = await fetch(`${server.url}/v2/`);
    await expectStatus(again, 200);
    const other = again.headers.get("X-Request-Id") ?? "";
    assert.notEqual(other, made);
    assert.equal(other.slice(0, 14), made.slice(0, 14));
  } finally {
    await server.close();
  }
});

Deno.test("ops: read-only mode refuses writes and still serves reads", async () => {
  const server = await startServer({ config: { readOnly: true } });
  try {
    await assertError(
      await fetch(`${server.url}/v2/ro/blobs/uploads/`, { method: "POST" }),
      405,
      "UNSUPPORTED",
    );
    await expectStatus(await fetch(`${server.url}/v2/`), 200);
    const health = await fetch(`${server.url}/healthz`);
    assert.deepEqual((await health.json()).checks, { storage: "ok" });
  } finally {
    await server.close();
  }
});

Deno.test("ops: the access log writes one JSON record per request with its id", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-test-" });
  const records: Record<string, unknown>[] = [];
  const app = createApp(makeConfig({ dataDir }), { log: (r) => records.push(r) });
  try {
    const blob = text("logged");
    const response = await app.handler(
      new Request(`http://registry/v2/log/me/blobs/uploads/?digest=${digestOf(blob)}`, {
        method: "POST",
        body: blob,
        headers: { "X-Request-Id": "abc", "Content-Length": String(blob.byteLength) },
      }),
    );
    assert.equal(response.status, 201);
    await bytesOf(response);
    assert.equal(records.length, 1);
    const { time, durationMs, ...rest } = records[0]!;
    assert.equal(typeof time, "string");
    assert.equal(typeof durationMs, "number");
    assert.deepEqual(rest, {
      level: "info",
      msg: "request",
      requestId: "abc",
      method: "POST",
      path: "/v2/log/me/blobs/uploads/",
      route: "uploads",
      status: 201,
      bytesIn: 6,
      bytesOut: 0,
      userAgent: "",
    });
  } finally {
    await app.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("ops: the access log can be turned off", async () => {
  const records: unknown[] = [];
  const app = createApp(makeConfig({ storage: "memory", accessLog: false }), {
    log: (r) => records.push(r),
  });
  const response = await app.handler(new Request("http://registry/v2/"));
  await bytesOf(response);
  assert.equal(response.status, 200);
  assert.deepEqual(records, []);
  await app.close();
});

Deno.test("ops: route labels come from the router, a fixed set, never repository names", async () => {
  const app = createApp(makeConfig({ storage: "memory", accessLog: false }));
  const digest = `sha256:${"0".repeat(64)}`;
  const requests: [string, string][] = [
    ["GET", "/v2/"],
    ["HEAD", "/v2/team/app/manifests/latest"],
    ["POST", "/v2/team/app/manifests/latest"],
    ["POST", "/v2/team/app/blobs/uploads/"],
    ["GET", "/v2/team/app/blobs/uploads/no-such-session"],
    ["GET", `/v2/team/app/blobs/${digest}`],
    ["GET", "/v2/team/app/tags/list"],
    ["GET", "/v2/_catalog"],
    ["GET", `/v2/team/app/referrers/${digest}`],
    ["GET", "/v2/team/app/unknown"],
    ["GET", "/anything/else"],
    ["GET", "/healthz"],
  ];
  try {
    for (const [method, path] of requests) {
      await bytesOf(await app.handler(new Request(`http://registry${path}`, { method })));
    }
    const body = await (await app.handler(new Request("http://registry/metrics"))).text();
    const seen = (method: string, route: string) =>
      new RegExp(`^berth_http_requests_total\\{route="${route}",method="${method}"`, "m").test(
        body,
      );
    assert.ok(seen("GET", "base"));
    assert.ok(seen("HEAD", "manifests"));
    assert.ok(seen("POST", "manifests"), "a 405 is labelled by its path");
    assert.ok(seen("POST", "uploads"));
    assert.ok(seen("GET", "uploads"));
    assert.ok(seen("GET", "blobs"));
    assert.ok(seen("GET", "tags"));
    assert.ok(seen("GET", "catalog"));
    assert.ok(seen("GET", "referrers"));
    assert.ok(seen("GET", "healthz"));
    const labels = new Set([...body.matchAll(/route="([^"]*)"/g)].map((m) => m[1]));
    assert.deepEqual(
      [...labels].sort(),
      ["base", "blobs", "catalog", "healthz", "manifests", "other", "referrers", "tags", "uploads"],
    );
  } finally {
    await app.close();
  }
});
