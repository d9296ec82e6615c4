/**
 * The pull-through cache against real upstreams started here: a second berth, and distribution
 * 2.8.2 behind htpasswd.
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { makeConfig } from "../../src/config.ts";
import { FILL_RING } from "../../src/proxy/blobs.ts";
import type { ProxyConfig } from "../../src/proxy/mirrors.ts";
import { startDistribution } from "../helpers/images.ts";
import {
  blobFiles,
  bytesOf,
  digestOf,
  MEDIA,
  pushImage,
  pushIndexAndSignature,
  putManifest,
  randomBytes,
  text,
} from "../helpers/registry.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";

function proxy(mirrors: ProxyConfig["mirrors"], revalidateMs = 60_000): ProxyConfig {
  return { mirrors, revalidateMs, timeoutMs: 2_000 };
}

/** Blob GETs the upstream berth answered with 200 (its own /metrics). */
async function upstreamBlobGets(upstream: TestServer): Promise<number> {
  const metrics = await (await fetch(`${upstream.url}/metrics`)).text();
  const line = metrics.split("\n").find((l) =>
    l.startsWith("berth_http_requests_total{") && l.includes('route="blobs"') &&
    l.includes('method="GET"') && l.includes('status="200"')
  );
  return line ? Number(line.split(" ").at(-1)) : 0;
}

async function get(url: string, accept = `${MEDIA.ociManifest}, ${MEDIA.ociIndex}`) {
  return await fetch(url, { headers: { Accept: accept } });
}

Deno.test("proxy: cold and warm pulls through a mirror prefix, pushes refused, local repos untouched", async () => {
  const upstream = await startServer();
  const cache = await startServer({
    config: { proxy: proxy([{ prefix: "up", remoteUrl: upstream.url }]) },
  });
  try {
    const image = await pushImage(upstream.url, "team/app", "v1", { layerSize: 300_000 });
    const layer = digestOf(image.layer);
    // Cold: manifest by tag, then its blobs.
    const manifest = await get(`${cache.url}/v2/up/team/app/manifests/v1`);
    assert.equal(manifest.status, 200);
    assert.equal(manifest.headers.get("Docker-Content-Digest"), image.digest);
    assert.deepEqual(await bytesOf(manifest), image.bytes);
    const blob = await fetch(`${cache.url}/v2/up/team/app/blobs/${layer}`);
    assert.equal(blob.status, 200);
    assert.equal(blob.headers.get("Content-Length"), String(image.layer.byteLength));
    assert.deepEqual(await bytesOf(blob), image.layer);
    assert.equal(await upstreamBlobGets(upstream), 1);
    // Warm: no upstream blob GET; a range read works from the store.
    const again = await fetch(`${cache.url}/v2/up/team/app/blobs/${layer}`);
    assert.deepEqual(await bytesOf(again), image.layer);
    const range = await fetch(`${cache.url}/v2/up/team/app/blobs/${layer}`, {
      headers: { Range: "bytes=10-19" },
    });
    assert.equal(range.status, 206);
    assert.deepEqual(await bytesOf(range), image.layer.slice(10, 20));
    assert.equal(await upstreamBlobGets(upstream), 1);
    // Pushes into the mirror are refused; a repository outside every prefix is local.
    const push = await fetch(`${cache.url}/v2/up/team/app/blobs/uploads/`, { method: "POST" });
    assert.equal(push.status, 405);
    assert.equal((await push.json()).errors[0].code, "UNSUPPORTED");
    await pushImage(cache.url, "local/app", "v1", { seed: 7 });
    assert.equal((await get(`${cache.url}/v2/local/app/manifests/v1`)).status, 200);
    // Metrics and the mirror label.
    const metrics = await (await fetch(`${cache.url}/metrics`)).text();
    assert.match(metrics, /berth_mirror_misses_total\{mirror="up"\} [1-9]/);
    assert.match(metrics, /berth_mirror_hits_total\{mirror="up"\} [1-9]/);
    assert.match(
      metrics,
      new RegExp(
        `berth_mirror_fetched_bytes_total\\{mirror="up"\\} ${
          image.layer.byteLength + image.bytes.byteLength
        }`,
      ),
    );
  } finally {
    await cache.close();
    await upstream.close();
  }
});

Deno.test("proxy: concurrent cold pulls of one blob make one upstream GET; a client that leaves does not stop the fill", async () => {
  const upstream = await startServer();
  const cache = await startServer({
    config: { proxy: proxy([{ prefix: "up", remoteUrl: upstream.url }]) },
  });
  try {
    const image = await pushImage(upstream.url, "big", "v1", { layerSize: 8 * 1024 * 1024 });
    const layer = digestOf(image.layer);
    const url = `${cache.url}/v2/up/big/blobs/${layer}`;
    // One client reads a little and leaves.
    const quitter = await fetch(url);
    const reader = quitter.body!.getReader();
    await reader.read();
    await reader.cancel();
    const bodies = await Promise.all(
      Array.from({ length: 5 }, async () => await bytesOf(await fetch(url))),
    );
    for (const body of bodies) assert.deepEqual(body, image.layer);
    assert.equal(await upstreamBlobGets(upstream), 1);
  } finally {
    await cache.close();
    await upstream.close();
  }
});

/**
 * An upstream that serves one blob and holds its body after `gateAt` bytes until `open()`: the
 * moment a fill is known to be half done. Counts the blob GETs it answered.
 */
function gatedUpstream(blob: Uint8Array<ArrayBuffer>, gateAt: number) {
  const digest = digestOf(blob);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  let gets = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/v2/") return new Response("{}");
    if (!path.endsWith(`/blobs/${digest}`)) return new Response(null, { status: 404 });
    const headers = { "Content-Length": String(blob.byteLength) };
    if (request.method === "HEAD") return new Response(null, { headers });
    gets++;
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (!sent) {
          sent = true;
          controller.enqueue(blob.slice(0, gateAt));
          return;
        }
        await gate;
        controller.enqueue(blob.slice(gateAt));
        controller.close();
      },
    });
    return new Response(body, { headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    open: () => open(),
    gets: () => gets,
    close: async () => {
      open();
      await server.shutdown();
    },
  };
}

/** Read `count` bytes of a response body (more may come in the last chunk). */
async function readAtLeast(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  count: number,
): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total < count) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`body ended after ${total} bytes`);
    chunks.push(value);
    total += value.byteLength;
  }
  return chunks;
}

Deno.test("proxy: clients of a blob being filled read what is stored and follow the rest; one upstream GET", async () => {
  const layer = randomBytes(2 * FILL_RING + 1000, 11);
  // More than the ring: a client joining at the gate reads the start from the session's file.
  const stored = FILL_RING + FILL_RING / 2;
  const upstream = gatedUpstream(layer, stored);
  // On the filesystem: an S3 upload cannot be read before its commit (clients wait there).
  const cache = await startServer({
    config: { storage: "filesystem", proxy: proxy([{ prefix: "up", remoteUrl: upstream.url }]) },
  });
  try {
    const url = `${cache.url}/v2/up/app/blobs/${digestOf(layer)}`;
    // The upstream holds the rest back: every client, first or later, gets the stored part now.
    const readers = await Promise.all(
      Array.from({ length: 5 }, async () => (await fetch(url)).body!.getReader()),
    );
    // Without following, they would wait for the whole fill, which the gate holds: fail, not hang.
    const withinMinute = async <T>(work: Promise<T>): Promise<T> => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("clients did not get the stored part")), 60_000);
      });
      return await Promise.race([work, stuck]).finally(() => clearTimeout(timer));
    };
    const heads = await withinMinute(
      Promise.all(readers.map((reader) => readAtLeast(reader, stored))),
    );
    // A client joining at the gate: the start is behind the ring, read from the session's file.
    readers.push((await fetch(url)).body!.getReader());
    heads.push(await withinMinute(readAtLeast(readers[5]!, stored)));
    assert.equal(upstream.gets(), 1);
    // One client leaves; the fill goes on for the others and for the store.
    await readers[4]!.cancel();
    upstream.open();
    for (const [i, reader] of readers.entries()) {
      if (i === 4) continue;
      const chunks = [...heads[i]!];
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
      }
      const body = new Uint8Array(layer.byteLength);
      let at = 0;
      for (const chunk of chunks) {
        body.set(chunk, at);
        at += chunk.byteLength;
      }
      assert.equal(at, layer.byteLength);
      assert.deepEqual(body, layer);
    }
    const again = await fetch(url);
    assert.deepEqual(await bytesOf(again), layer);
    assert.equal(upstream.gets(), 1);
  } finally {
    await cache.close();
    await upstream.close();
  }
});

Deno.test("proxy: a download that breaks is resumed where it stopped; the bytes are right", async () => {
  const layer = randomBytes(2 * FILL_RING + 777, 13);
  const digest = digestOf(layer);
  const cut = FILL_RING + 5000;
  const ranges: (string | null)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/v2/") return new Response("{}");
    if (!path.endsWith(`/blobs/${digest}`)) return new Response(null, { status: 404 });
    if (request.method === "HEAD") {
      return new Response(null, { headers: { "Content-Length": String(layer.byteLength) } });
    }
    const range = request.headers.get("Range");
    ranges.push(range);
    if (ranges.length > 1) {
      const start = Number(/bytes=(\d+)-/.exec(range ?? "bytes=0-")![1]);
      return new Response(layer.slice(start), {
        status: start > 0 ? 206 : 200,
        headers: { "Content-Range": `bytes ${start}-${layer.byteLength - 1}/${layer.byteLength}` },
      });
    }
    // The first download breaks after at most `cut` bytes.
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new Error("connection cut"));
        sent = true;
        controller.enqueue(layer.slice(0, cut));
      },
    });
    return new Response(body, { headers: { "Content-Length": String(layer.byteLength) } });
  });
  const cache = await startServer({
    config: {
      storage: "filesystem",
      proxy: proxy([{ prefix: "up", remoteUrl: `http://127.0.0.1:${server.addr.port}` }]),
    },
  });
  try {
    const response = await fetch(`${cache.url}/v2/up/app/blobs/${digest}`);
    assert.equal(response.status, 200);
    assert.deepEqual(await bytesOf(response), layer);
    // The download was resumed from the first byte the cache had not received (the server may
    // drop what it buffered when the body fails, so which one is not fixed; on a loaded machine
    // a resume may go unanswered within the 2 s timeout and be asked again, from the same byte).
    assert.ok(ranges.length >= 2 && ranges.length <= 4, `${ranges.length} GETs`);
    assert.equal(ranges[0], null);
    const resumedAt = ranges[1] === null ? 0 : Number(/^bytes=(\d+)-$/.exec(ranges[1]!)![1]);
    assert.ok(resumedAt <= cut);
    const gets = ranges.length;
    const again = await fetch(`${cache.url}/v2/up/app/blobs/${digest}`);
    assert.deepEqual(await bytesOf(again), layer);
    assert.equal(ranges.length, gets);
  } finally {
    await cache.close();
    await server.shutdown();
  }
});

Deno.test("proxy: upstream stopped: cached tag and digest still pull; retag shows after revalidation; upstream 404", async () => {
  const upstream = await startServer();
  let upstreamOpen = true;
  const cache = await startServer({
    config: { proxy: proxy([{ prefix: "up", remoteUrl: upstream.url }], 0) },
  });
  try {
    const first = await pushImage(upstream.url, "app", "latest", { seed: 1 });
    assert.equal((await get(`${cache.url}/v2/up/app/manifests/latest`)).status, 200);
    await bytesOf(await fetch(`${cache.url}/v2/up/app/blobs/${digestOf(first.layer)}`));
    // Retag upstream: revalidation (interval 0 here) brings the new digest.
    const second = await pushImage(upstream.url, "app", "latest", { seed: 2 });
    const retagged = await get(`${cache.url}/v2/up/app/manifests/latest`);
    assert.equal(retagged.headers.get("Docker-Content-Digest"), second.digest);
    await retagged.body?.cancel();
    // Upstream 404 with nothing cached.
    const missing = await get(`${cache.url}/v2/up/app/manifests/nope`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).errors[0].code, "MANIFEST_UNKNOWN");
    const missingBlob = await fetch(`${cache.url}/v2/up/app/blobs/${digestOf(text("nothing"))}`);
    assert.equal(missingBlob.status, 404);
    await missingBlob.body?.cancel();

    await upstream.close();
    upstreamOpen = false;
    const stale = await get(`${cache.url}/v2/up/app/manifests/latest`);
    assert.equal(stale.status, 200);
    assert.equal(stale.headers.get("Docker-Content-Digest"), second.digest);
    await stale.body?.cancel();
    const byDigest = await get(`${cache.url}/v2/up/app/manifests/${first.digest}`);
    assert.equal(byDigest.status, 200);
    assert.deepEqual(await bytesOf(byDigest), first.bytes);
    const blob = await fetch(`${cache.url}/v2/up/app/blobs/${digestOf(first.layer)}`);
    assert.deepEqual(await bytesOf(blob), first.layer);
    // Nothing cached and no upstream: 503.
    const never = await get(`${cache.url}/v2/up/app/manifests/other`);
    assert.equal(never.status, 503);
    await never.body?.cancel();
    const metrics = await (await fetch(`${cache.url}/metrics`)).text();
    assert.match(metrics, /berth_mirror_stale_serves_total\{mirror="up"\} [1-9]/);
    assert.match(metrics, /berth_mirror_upstream_errors_total\{mirror="up"\} [1-9]/);
  } finally {
    await cache.close();
    if (upstreamOpen) await upstream.close();
  }
});

Deno.test("proxy: an upstream serving wrong bytes is refused and nothing is cached", async () => {
  const upstream = await startServer({ config: { storage: "filesystem" } });
  const cache = await startServer({
    config: { storage: "filesystem", proxy: proxy([{ prefix: "up", remoteUrl: upstream.url }]) },
  });
  try {
    const image = await pushImage(upstream.url, "app", "v1", { layerSize: 100_000 });
    const layer = digestOf(image.layer);
    const hex = layer.slice("sha256:".length);
    const file = (await blobFiles(upstream.dataDir)).find((f) =>
      f.includes(hex) && f.endsWith("/data")
    );
    assert.ok(file, "the upstream's layer file");
    await Deno.writeFile(
      `${upstream.dataDir}/docker/registry/v2/blobs/${file}`,
      randomBytes(image.layer.byteLength, 99),
    );
    const response = await fetch(`${cache.url}/v2/up/app/blobs/${layer}`);
    await assert.rejects(bytesOf(response));
    // Asked again: fetched again (nothing was kept), refused again.
    await assert.rejects(bytesOf(await fetch(`${cache.url}/v2/up/app/blobs/${layer}`)));
    assert.ok(!(await blobFiles(cache.dataDir)).some((f) => f.includes(hex)));
  } finally {
    await cache.close();
    await upstream.close();
  }
});

Deno.test({
  name:
    "proxy: the whole registry mirrors distribution behind htpasswd (distribution's proxy keys)",
  ignore: skipWithout("docker-registry", "htpasswd"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "berth-mirror-dist-" });
    const htpasswd = await run("htpasswd", ["-Bbn", "puller", "s3cret"]);
    await Deno.writeTextFile(`${dir}/htpasswd`, htpasswd);
    // distribution's log (its access log included), read as it is written.
    const registry = await startDistribution(`${dir}/data`, {
      config: ["auth:", "  htpasswd:", "    realm: test", `    path: ${dir}/htpasswd`],
      log: true,
    });
    const upstream = `http://${registry.host}`;
    const auth = { Authorization: `Basic ${btoa("puller:s3cret")}` };
    let cache: TestServer | undefined;
    try {
      // A large layer (more than a fill's ring), pulled by five clients at once below.
      const layer = randomBytes(FILL_RING + FILL_RING / 2 + 12_345, 5);
      const config = text(JSON.stringify({ architecture: "amd64", os: "linux" }));
      for (const bytes of [layer, config]) {
        const digest = digestOf(bytes);
        const start = await fetch(`${upstream}/v2/lib/app/blobs/uploads/`, {
          method: "POST",
          headers: auth,
        });
        assert.equal(start.status, 202);
        await start.body?.cancel();
        const location = new URL(start.headers.get("Location")!, upstream);
        location.searchParams.set("digest", digest);
        const response = await fetch(location, {
          method: "PUT",
          body: bytes,
          headers: { ...auth, "Content-Type": "application/octet-stream" },
        });
        assert.equal(response.status, 201);
        await response.body?.cancel();
      }
      const manifest = text(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: digestOf(config), size: config.byteLength },
        layers: [{ mediaType: MEDIA.ociLayer, digest: digestOf(layer), size: layer.byteLength }],
      }));
      const put = await fetch(`${upstream}/v2/lib/app/manifests/v1`, {
        method: "PUT",
        body: manifest,
        headers: { ...auth, "Content-Type": MEDIA.ociManifest },
      });
      assert.equal(put.status, 201);
      await put.body?.cancel();

      cache = await startServer({
        config: {
          proxy: proxy([{
            prefix: "",
            remoteUrl: upstream,
            username: "puller",
            password: "s3cret",
          }]),
        },
      });
      const pulled = await get(`${cache.url}/v2/lib/app/manifests/v1`);
      assert.equal(pulled.status, 200);
      assert.deepEqual(await bytesOf(pulled), manifest);
      const url = `${cache.url}/v2/lib/app/blobs/${digestOf(layer)}`;
      const bodies = await Promise.all(
        Array.from({ length: 5 }, async () => await bytesOf(await fetch(url))),
      );
      for (const body of bodies) assert.deepEqual(body, layer);
      // The whole registry is a cache: pushes are refused.
      const refused = await putManifest(cache.url, "lib/app", "v2", manifest, MEDIA.ociManifest);
      assert.equal(refused.status, 405);
      await refused.body?.cancel();
      // distribution's access log: one GET of the layer.
      await new Promise((r) => setTimeout(r, 200));
      const lines = registry.log().split("\n");
      const gets = lines.filter((l) =>
        l.includes(`"GET /v2/lib/app/blobs/${digestOf(layer)}`) && l.includes(" 200 ")
      );
      assert.equal(gets.length, 1, lines.filter((l) => l.includes("blobs")).join("\n"));
    } finally {
      await cache?.close();
      await registry.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("proxy: an index's children are fetched on demand, referrers proxied, the cached platforms survive GC and an upstream outage", async () => {
  const upstream = await startServer();
  const cache = await startServer({
    config: {
      proxy: proxy([{ prefix: "up", remoteUrl: upstream.url }], 0),
      gc: { intervalMs: 0, gracePeriodMs: 0, adminEndpoint: true },
    },
  });
  let upstreamOpen = true;
  try {
    const amd = await pushImage(upstream.url, "multi", "amd", { seed: 11 });
    const arm = await pushImage(upstream.url, "multi", "arm", { seed: 12 });
    const { index, signature } = await pushIndexAndSignature(upstream.url, "multi", "v1", [
      amd,
      arm,
    ]);
    const pulled = await get(`${cache.url}/v2/up/multi/manifests/v1`);
    assert.equal(pulled.headers.get("Docker-Content-Digest"), digestOf(index));
    assert.deepEqual(await bytesOf(pulled), index);
    const child = await get(`${cache.url}/v2/up/multi/manifests/${amd.digest}`);
    assert.deepEqual(await bytesOf(child), amd.bytes);
    for (const blob of [amd.config, amd.layer]) {
      await bytesOf(await fetch(`${cache.url}/v2/up/multi/blobs/${digestOf(blob)}`));
    }
    const referrers = await fetch(`${cache.url}/v2/up/multi/referrers/${amd.digest}`);
    assert.equal(referrers.status, 200);
    const listed = (await referrers.json()).manifests.map((d: { digest: string }) => d.digest);
    assert.deepEqual(listed, [digestOf(signature)]);

    // The online collector keeps every cached manifest and blob (all referenced).
    const gc = await fetch(`${cache.url}/admin/gc`, { method: "POST" });
    assert.equal(gc.status, 200);
    await gc.body?.cancel();

    await upstream.close();
    upstreamOpen = false;
    assert.deepEqual(await bytesOf(await get(`${cache.url}/v2/up/multi/manifests/v1`)), index);
    assert.deepEqual(
      await bytesOf(await get(`${cache.url}/v2/up/multi/manifests/${amd.digest}`)),
      amd.bytes,
    );
    assert.deepEqual(
      await bytesOf(await fetch(`${cache.url}/v2/up/multi/blobs/${digestOf(amd.layer)}`)),
      amd.layer,
    );
    // The platform never pulled is not there without the upstream.
    const missing = await get(`${cache.url}/v2/up/multi/manifests/${arm.digest}`);
    assert.equal(missing.status, 503);
    await missing.body?.cancel();
  } finally {
    await cache.close();
    if (upstreamOpen) await upstream.close();
  }
});

Deno.test("proxy: ttl expiry unlinks unused cached images and the safe GC frees their blobs; local and recently used content stays", async () => {
  const upstream = await startServer();
  const cache = await startServer({
    config: {
      storage: "filesystem",
      proxy: proxy([{ prefix: "up", remoteUrl: upstream.url, ttlMs: 1_500 }]),
      gc: { intervalMs: 0, gracePeriodMs: 0, adminEndpoint: true },
    },
  });
  try {
    const old = await pushImage(upstream.url, "old", "v1", { seed: 21 });
    const kept = await pushImage(upstream.url, "kept", "v1", { seed: 22 });
    const local = await pushImage(cache.url, "mine/app", "v1", { seed: 23 });
    for (const [name, image] of [["up/old", old], ["up/kept", kept]] as const) {
      await bytesOf(await get(`${cache.url}/v2/${name}/manifests/v1`));
      await bytesOf(await fetch(`${cache.url}/v2/${name}/blobs/${digestOf(image.layer)}`));
    }
    await new Promise((resolve) => setTimeout(resolve, 1_700));
    // Used again just now: kept.
    await bytesOf(await get(`${cache.url}/v2/up/kept/manifests/v1`));
    const gc = await fetch(`${cache.url}/admin/gc`, { method: "POST" });
    assert.equal(gc.status, 200);
    await gc.body?.cancel();
    const files = await blobFiles(cache.dataDir);
    const has = (bytes: Uint8Array) => files.some((f) => f.includes(digestOf(bytes).slice(7)));
    assert.ok(!has(old.layer), "the unused mirror's layer is collected");
    assert.ok(has(kept.layer), "the recently used mirror's layer stays");
    assert.ok(has(local.layer), "local content stays");
    // An expired image is fetched again on demand.
    const again = await get(`${cache.url}/v2/up/old/manifests/v1`);
    assert.equal(again.status, 200);
    await again.body?.cancel();
  } finally {
    await cache.close();
    await upstream.close();
  }
});

/** A TCP relay to `target` that can be switched to accept connections and never answer. */
function relay(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const state: { hang: boolean; status?: number } = { hang: false };
  const accepting = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      if (state.hang) continue;
      if (state.status) {
        const answer =
          `HTTP/1.1 ${state.status} Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
        conn.read(new Uint8Array(65536))
          .then(() => conn.write(new TextEncoder().encode(answer)))
          .then(() => conn.close(), () => {});
        continue;
      }
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: target });
      open.add(upstream);
      conn.readable.pipeTo(upstream.writable).catch(() => {});
      upstream.readable.pipeTo(conn.writable).catch(() => {});
    }
  })().catch(() => {});
  const drop = () => {
    for (const conn of open) {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
    open.clear();
  };
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    /** From now on, connections are accepted and never answered (open ones are cut). */
    hang() {
      state.hang = true;
      drop();
    },
    /** From now on, every request is answered with `status` (open connections are cut). */
    answer(status: number) {
      state.status = status;
      drop();
    },
    async close() {
      listener.close();
      drop();
      await accepting;
    },
  };
}

Deno.test("proxy: an upstream that stops answering times out and the cached tag is served", async () => {
  const upstream = await startServer();
  const front = relay(Number(new URL(upstream.url).port));
  const cache = await startServer({
    config: {
      proxy: { mirrors: [{ prefix: "up", remoteUrl: front.url }], revalidateMs: 0, timeoutMs: 300 },
    },
  });
  try {
    const image = await pushImage(upstream.url, "app", "v1", { seed: 31 });
    assert.equal((await get(`${cache.url}/v2/up/app/manifests/v1`)).status, 200);
    front.hang();
    const started = performance.now();
    const stale = await get(`${cache.url}/v2/up/app/manifests/v1`);
    assert.equal(stale.status, 200);
    assert.deepEqual(await bytesOf(stale), image.bytes);
    assert.ok(performance.now() - started < 5_000);
    const metrics = await (await fetch(`${cache.url}/metrics`)).text();
    assert.match(metrics, /berth_mirror_stale_serves_total\{mirror="up"\} 1\n/);
  } finally {
    await cache.close();
    await front.close();
    await upstream.close();
  }
});

Deno.test("proxy: access-log lines of mirrored repositories name the mirror", async () => {
  const upstream = await startServer();
  const records: Record<string, unknown>[] = [];
  const app = createApp(
    makeConfig({
      storage: "memory",
      accessLog: true,
      proxy: proxy([{ prefix: "up", remoteUrl: upstream.url }]),
    }),
    { log: (record) => records.push(record), logError: () => {} },
  );
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.handler);
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    await pushImage(upstream.url, "app", "v1", { seed: 41 });
    await bytesOf(await get(`${base}/v2/up/app/manifests/v1`));
    await (await fetch(`${base}/v2/other/tags/list`)).body?.cancel();
    const lines = records.filter((r) => r.msg === "request" || r.message === "request");
    const mirrored = lines.find((r) => r.path === "/v2/up/app/manifests/v1");
    const local = lines.find((r) => r.path === "/v2/other/tags/list");
    assert.equal(mirrored?.mirror, "up", JSON.stringify(lines));
    assert.equal(local?.mirror, undefined);
  } finally {
    await server.shutdown();
    await app.close();
    await upstream.close();
  }
});

for (const status of [503, 429]) {
  Deno.test(`proxy: an upstream answering ${status} gets the cached tag served; uncached: 503`, async () => {
    const upstream = await startServer();
    const front = relay(Number(new URL(upstream.url).port));
    const cache = await startServer({
      config: {
        proxy: {
          mirrors: [{ prefix: "up", remoteUrl: front.url }],
          revalidateMs: 0,
          timeoutMs: 2_000,
        },
      },
    });
    try {
      const image = await pushImage(upstream.url, "app", "v1", { seed: 51 });
      assert.equal((await get(`${cache.url}/v2/up/app/manifests/v1`)).status, 200);
      front.answer(status);
      const stale = await get(`${cache.url}/v2/up/app/manifests/v1`);
      assert.equal(stale.status, 200);
      assert.deepEqual(await bytesOf(stale), image.bytes);
      const uncached = await get(`${cache.url}/v2/up/app/manifests/v2`);
      assert.equal(uncached.status, 503);
      assert.equal((await uncached.json()).errors[0].code, "UNAVAILABLE");
    } finally {
      await cache.close();
      await front.close();
      await upstream.close();
    }
  });
}

Deno.test("proxy: pulls running while expiry and the collector run all complete with the right bytes", async () => {
  const upstream = await startServer();
  const cache = await startServer({
    config: {
      proxy: proxy([{ prefix: "up", remoteUrl: upstream.url, ttlMs: 1 }], 0),
      gc: { intervalMs: 0, gracePeriodMs: 0, adminEndpoint: true },
    },
  });
  try {
    const images = await Promise.all(
      [61, 62, 63].map((seed) =>
        pushImage(upstream.url, `app${seed}`, "v1", { seed, layerSize: 200_000 })
      ),
    );
    let collecting = true;
    const collector = (async () => {
      let runs = 0;
      while (collecting || runs < 3) {
        const gc = await fetch(`${cache.url}/admin/gc`, { method: "POST" });
        assert.equal(gc.status, 200);
        await gc.body?.cancel();
        runs++;
      }
      return runs;
    })();
    const pulls = images.map(async (image, i) => {
      for (let round = 0; round < 8; round++) {
        const name = `up/app${61 + i}`;
        const manifest = await get(`${cache.url}/v2/${name}/manifests/v1`);
        assert.equal(manifest.status, 200);
        assert.deepEqual(await bytesOf(manifest), image.bytes);
        for (const blob of [image.config, image.layer]) {
          const response = await fetch(`${cache.url}/v2/${name}/blobs/${digestOf(blob)}`);
          assert.equal(response.status, 200);
          assert.deepEqual(await bytesOf(response), blob);
        }
      }
    });
    await Promise.all(pulls).finally(() => collecting = false);
    assert.ok(await collector >= 3);
  } finally {
    await cache.close();
    await upstream.close();
  }
});

Deno.test("proxy: tags/list of a mirrored repository is the upstream's; the cached tags when it is down", async () => {
  const upstream = await startServer();
  let upstreamOpen = true;
  const cache = await startServer({
    config: { proxy: proxy([{ prefix: "up", remoteUrl: upstream.url }]) },
  });
  try {
    await pushImage(upstream.url, "team/app", "v1", { seed: 1 });
    await pushImage(upstream.url, "team/app", "v2", { seed: 2 });
    await pushImage(upstream.url, "team/app", "v3", { seed: 3 });
    // Nothing pulled yet: the upstream's list, paginated here.
    const all = await fetch(`${cache.url}/v2/up/team/app/tags/list`);
    assert.equal(all.status, 200);
    assert.deepEqual(await all.json(), { name: "up/team/app", tags: ["v1", "v2", "v3"] });
    const page = await fetch(`${cache.url}/v2/up/team/app/tags/list?n=2&last=v1`);
    assert.deepEqual((await page.json()).tags, ["v2", "v3"]);
    const first = await fetch(`${cache.url}/v2/up/team/app/tags/list?n=1`);
    assert.deepEqual((await first.json()).tags, ["v1"]);
    assert.match(first.headers.get("Link") ?? "", /last=v1/);
    const unknown = await fetch(`${cache.url}/v2/up/team/none/tags/list`);
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).errors[0].code, "NAME_UNKNOWN");
    // v1 is pulled through; with the upstream down, the cached tags are listed.
    assert.equal((await get(`${cache.url}/v2/up/team/app/manifests/v1`)).status, 200);
    await upstream.close();
    upstreamOpen = false;
    const cached = await fetch(`${cache.url}/v2/up/team/app/tags/list`);
    assert.equal(cached.status, 200);
    assert.deepEqual((await cached.json()).tags, ["v1"]);
    const never = await fetch(`${cache.url}/v2/up/team/other/tags/list`);
    assert.equal(never.status, 503);
    assert.equal((await never.json()).errors[0].code, "UNAVAILABLE");
  } finally {
    await cache.close();
    if (upstreamOpen) await upstream.close();
  }
});

Deno.test("proxy: ttl ages survive a restart (recorded in storage): unused content expires after it, used content stays", async () => {
  const upstream = await startServer();
  const dataDir = await Deno.makeTempDir({ prefix: "berth-mirror-ttl-" });
  const config = {
    storage: "filesystem" as const,
    proxy: proxy([{ prefix: "up", remoteUrl: upstream.url, ttlMs: 1_500 }]),
    gc: { intervalMs: 0, gracePeriodMs: 0, adminEndpoint: true },
  };
  let cache = await startServer({ dataDir, config });
  try {
    const old = await pushImage(upstream.url, "old", "v1", { seed: 31 });
    const used = await pushImage(upstream.url, "used", "v1", { seed: 32 });
    for (const [name, image] of [["up/old", old], ["up/used", used]] as const) {
      await bytesOf(await get(`${cache.url}/v2/${name}/manifests/v1`));
      await bytesOf(await fetch(`${cache.url}/v2/${name}/blobs/${digestOf(image.layer)}`));
    }
    await cache.close();
    await new Promise((resolve) => setTimeout(resolve, 1_700));
    // A new process: its start is not a fresh use of what was cached before.
    cache = await startServer({ dataDir, config });
    await bytesOf(await get(`${cache.url}/v2/up/used/manifests/v1`));
    const gc = await fetch(`${cache.url}/admin/gc`, { method: "POST" });
    assert.equal(gc.status, 200);
    await gc.body?.cancel();
    const files = await blobFiles(dataDir);
    const has = (bytes: Uint8Array) => files.some((f) => f.includes(digestOf(bytes).slice(7)));
    assert.ok(!has(old.layer), "unused for longer than ttl across the restart: collected");
    assert.ok(has(used.layer), "used after the restart: kept");
  } finally {
    await cache.close();
    await upstream.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
