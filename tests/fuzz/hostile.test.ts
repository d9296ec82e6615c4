/**
 * Fuzz: thousands of malformed and hostile requests (bounded in count and time) against a
 * server holding two images, through fetch and raw TCP. The server must never answer 500, never
 * crash, never write outside its data directory (a sibling canary directory stays empty), and
 * every image stored before must read back intact.
 *
 * The generator is seeded (`FUZZ_SEED`, default fixed) so a failure replays.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { makeConfig } from "../../src/config.ts";
import { serveHttp } from "../../src/http/server.ts";
import { digestBytes } from "../../src/oci/digest.ts";
import { basic, USERS, writeHtpasswd } from "../auth/fixtures.ts";

/** Most requests sent. */
const MAX_REQUESTS = 4000;
/** Time budget of the hostile phase, in milliseconds. */
const BUDGET_MS = 15_000;
/** Requests in flight at once. */
const PARALLEL = 8;

/** A small seeded PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Image {
  repo: string;
  tag: string;
  manifest: Uint8Array<ArrayBuffer>;
  digest: string;
  blobs: { digest: string; bytes: Uint8Array<ArrayBuffer> }[];
}

const enc = new TextEncoder();

async function pushImage(base: string, auth: string, repo: string, seed: string): Promise<Image> {
  const layer = enc.encode(`layer of ${seed}\n`.repeat(500));
  const config = enc.encode(JSON.stringify({ architecture: "amd64", os: "linux", seed }));
  const blobs = [layer, config].map((bytes) => ({ bytes, digest: digestBytes(bytes).value }));
  for (const blob of blobs) {
    const r = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
      method: "POST",
      headers: { Authorization: auth },
      body: blob.bytes,
    });
    await r.body?.cancel();
    assert.equal(r.status, 201);
  }
  const manifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: blobs[1]!.digest,
      size: config.byteLength,
    },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: blobs[0]!.digest,
      size: layer.byteLength,
    }],
  }));
  const r = await fetch(`${base}/v2/${repo}/manifests/v1`, {
    method: "PUT",
    headers: { Authorization: auth, "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  });
  await r.body?.cancel();
  assert.equal(r.status, 201);
  return { repo, tag: "v1", manifest, digest: digestBytes(manifest).value, blobs };
}

/** One raw HTTP/1.1 exchange; returns the status (0 when the server closed without answering). */
async function raw(
  port: number,
  chunks: (string | Uint8Array)[],
  options: { closeWrite?: boolean; abort?: boolean } = {},
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (const chunk of chunks) {
      await conn.write(typeof chunk === "string" ? enc.encode(chunk) : chunk);
    }
    if (options.abort) return 0;
    if (options.closeWrite) await conn.closeWrite();
    const buffer = new Uint8Array(512);
    let text = "";
    const timer = setTimeout(() => conn.close(), 3000);
    try {
      while (!/^HTTP\/1\.[01] \d{3}/.test(text)) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
    } catch {
      // closed by the timer or the server
    } finally {
      clearTimeout(timer);
    }
    return Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

const BAD_NAMES = [
  "..",
  "../etc",
  "a/../../canary",
  "%2e%2e",
  "%2e%2e/%2e%2e/canary",
  "a/%2e%2e/b",
  "%2fetc%2fpasswd",
  "/etc/passwd",
  "a//b",
  "a/./b",
  "a%00b",
  "a\u0000b",
  "UPPER",
  "a/_uploads",
  "x".repeat(300),
  "a/".repeat(100) + "b",
  "%252e%252e",
  "..%2f..%2fcanary",
  "a/b/..",
  "café",
  "a b",
  "-a",
  "a-",
  "a__b",
  "",
];

const BAD_REFS = [
  "sha256:../../../canary",
  "sha256:" + "g".repeat(64),
  "sha256:" + "A".repeat(64),
  "sha256:" + "0".repeat(63),
  "sha256:" + "0".repeat(65),
  "sha512:" + "0".repeat(64),
  "md5:d41d8cd98f00b204e9800998ecf8427e",
  "sha256:",
  ":",
  "sha256",
  "..",
  "%2e%2e",
  "a".repeat(200),
  "tag with space",
  "sha256:0%00",
  "latest/../../x",
  "-tag",
];

const METHODS = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "FOO"];

function nested(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

Deno.test({
  name: "fuzz: hostile requests never get 500, never write outside the data dir, images intact",
  // The server is in-process; its connections are closed by the test, not by every request.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const seed = Number(Deno.env.get("FUZZ_SEED") ?? 20261123);
    const random = prng(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const root = await Deno.makeTempDir({ prefix: "berth-fuzz-" });
    const dataDir = `${root}/data`;
    await Deno.mkdir(dataDir);
    await Deno.mkdir(`${root}/canary`);
    const htpasswd = await writeHtpasswd(root);
    const errors: string[] = [];
    const app = createApp(
      makeConfig({
        dataDir,
        addr: "127.0.0.1:0",
        maxManifestBytes: 64 * 1024,
        limits: { maxBodyBytes: 1 << 20, bodyIdleTimeoutMs: 500, maxUploadsPerClient: 1000 },
        auth: {
          htpasswd: { realm: "fuzz", path: htpasswd },
          token: { service: "fuzz", issuer: "fuzz" },
          // Anyone may pull and push (so hostile input reaches every handler); nobody may delete,
          // so the images stored first must survive whatever is sent.
          policy: { rules: [{ repositories: ["**"], anonymous: true, actions: ["pull", "push"] }] },
        },
      }),
      { logError: (message, fields) => errors.push(`${message} ${JSON.stringify(fields)}`) },
    );
    const { promise: listening, resolve } = Promise.withResolvers<number>();
    // berth's own server, as `berth serve` runs it: a handler that throws is answered 500.
    const server = serveHttp(
      { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => resolve(port) },
      app.handler,
    );
    const port = await listening;
    const base = `http://127.0.0.1:${port}`;
    const alice = basic("alice", USERS.alice);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    const thrown = new Map<string, number>();
    let sent = 0;
    try {
      const images = [
        await pushImage(base, alice, "fuzz/one", "one"),
        await pushImage(base, alice, "fuzz/two/deep", "two"),
      ];
      const good = images[0]!;
      const open = await fetch(`${base}/v2/fuzz/one/blobs/uploads/`, { method: "POST" });
      await open.body?.cancel();
      const session = open.headers.get("Location")!;

      const path = (): string => {
        const name = random() < 0.6
          ? pick(BAD_NAMES)
          : pick(["fuzz/one", "fuzz/two/deep", "new/repo"]);
        const ref = random() < 0.5
          ? pick(BAD_REFS)
          : pick([good.digest, good.blobs[0]!.digest, "v1"]);
        switch (Math.floor(random() * 8)) {
          case 0:
            return `/v2/${name}/manifests/${ref}`;
          case 1:
            return `/v2/${name}/blobs/${ref}`;
          case 2:
            return `/v2/${name}/blobs/uploads/${
              pick(["", "../../x", "%2e%2e", ref, "a".repeat(70)])
            }`;
          case 3:
            return `${session}${pick(["", "/..", "%00", "/../../x"])}`;
          case 4:
            return `/v2/${name}/tags/list?n=${pick(["-1", "1e9", "x", "99999999999999999999"])}`;
          case 5:
            return `/v2/${name}/blobs/uploads/?mount=${ref}&from=${pick(BAD_NAMES)}`;
          case 6:
            return `/v2/${name}/blobs/uploads/?digest=${ref}`;
          default:
            return pick([
              "/",
              "/v2",
              "/v2/",
              "/v2/_catalog?n=-5",
              "/auth/token?scope=repository:..:pull",
              "/auth/token?scope=%00",
              "/../../etc/passwd",
              "/v2/../../canary",
            ]);
        }
      };
      const body = (): BodyInit | undefined => {
        switch (Math.floor(random() * 7)) {
          case 0:
            return undefined;
          case 1:
            return nested(Math.floor(random() * 100_000));
          case 2:
            return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
              `"config":{"digest":"${pick(BAD_REFS)}","size":-1},"layers":[${nested(50)}]`;
          case 3:
            return crypto.getRandomValues(new Uint8Array(Math.floor(random() * 4096)));
          case 4:
            return JSON.stringify({
              schemaVersion: 2,
              manifests: [{ digest: pick(BAD_REFS), size: 1e300 }],
            });
          case 5:
            return "x".repeat(70 * 1024);
          default:
            return '{"schemaVersion":2,"layers":';
        }
      };
      const headers = (): Record<string, string> => {
        const h: Record<string, string> = {};
        if (random() < 0.3) {
          h["Content-Range"] = pick([
            "5-2",
            "-1-3",
            "0-99999999999999999",
            "abc",
            "bytes=0-0",
            "0-0/5",
          ]);
        }
        if (random() < 0.3) {
          h["Range"] = pick([
            "bytes=-0",
            "bytes=5-2",
            "bytes=99999999999999999999-",
            "bytes=0-0,1-1",
            "items=0-1",
          ]);
        }
        if (random() < 0.3) {
          h["Content-Type"] = pick([
            "application/json",
            "a\tb",
            "x".repeat(1000),
            "application/vnd.oci.image.index.v1+json",
          ]);
        }
        if (random() < 0.3) {
          h["Authorization"] = pick([
            "Basic",
            "Basic ::::",
            "Bearer",
            "Bearer a.b.c",
            "Bearer " + "A".repeat(20000),
            basic("alice", "wrong"),
            basic("\u0000", "x"),
            "Basic " + btoa(":"),
            "Negotiate x",
          ]);
        }
        if (random() < 0.05) h["X-Huge"] = "h".repeat(70 * 1024);
        return h;
      };

      const viaFetch = async () => {
        const method = pick(METHODS);
        const init: RequestInit = { method, headers: headers(), redirect: "manual" };
        const b = method === "GET" || method === "HEAD" ? undefined : body();
        if (b !== undefined) init.body = b;
        const url = `${base}${path()}`;
        try {
          const response = await fetch(url, init);
          await response.body?.cancel();
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          if (response.status >= 500) {
            failures.push(`${response.status} ${method} ${url.slice(0, 200)}`);
          }
        } catch (error) {
          // a request fetch refuses to send, or a connection the server cut: both fine
          const key = String(error).slice(0, 120);
          thrown.set(key, (thrown.get(key) ?? 0) + 1);
        }
      };
      const viaRaw = async () => {
        const p = path().replace(/[\s]/g, "%20");
        const kind = Math.floor(random() * 9);
        let status = 0;
        switch (kind) {
          case 0: // lying Content-Length (longer than the body), then half-close
            status = await raw(port, [
              `PATCH ${session} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nshort`,
            ], { closeWrite: true });
            break;
          case 1: // Content-Length shorter than the body
            status = await raw(port, [
              `PUT ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{"schemaVersion":2}`,
            ]);
            break;
          case 2: // negative, huge, duplicated lengths
            status = await raw(port, [
              `PATCH ${session} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${
                pick(["-1", "99999999999999999999999", "1, 2", "0x10", " "])
              }\r\n\r\nabc`,
            ]);
            break;
          case 3: // aborted mid-body
            status = await raw(port, [
              `POST /v2/fuzz/one/blobs/uploads/?digest=${
                good.blobs[0]!.digest
              } HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n`,
              new Uint8Array(500),
            ], { abort: true });
            break;
          case 4: // garbage request line / NUL bytes in the path
            status = await raw(port, [
              pick([
                `GET /v2/a\u0000b/manifests/x HTTP/1.1\r\nHost: x\r\n\r\n`,
                "\u0000\u0001\u0002\r\n\r\n",
                `GET ${"/v2/".repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
                "BREW /v2/ HTTP/9.9\r\n\r\n",
              ]),
            ], { closeWrite: true });
            break;
          case 5: // oversized headers
            status = await raw(port, [
              `GET /v2/ HTTP/1.1\r\nHost: x\r\n${"X-A: " + "a".repeat(8000) + "\r\n"}`.repeat(1) +
              "X-B: b\r\n".repeat(Math.floor(random() * 3000)) + "\r\n",
            ], { closeWrite: true });
            break;
          case 6: // broken chunked encoding
            status = await raw(port, [
              `PATCH ${session} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${
                pick([
                  "zz\r\nabc\r\n0\r\n\r\n",
                  "5\r\nab",
                  "ffffffffffffffff\r\nx\r\n",
                  "-1\r\n\r\n",
                ])
              }`,
            ], { closeWrite: true });
            break;
          case 7: // a request with the raw, unnormalised path
            status = await raw(port, [
              `${
                pick([...METHODS, "TRACE", "CONNECT"])
              } ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
            ]);
            break;
          default: // truncated manifest body
            status = await raw(port, [
              `PUT /v2/fuzz/one/manifests/trunc HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 500\r\n\r\n{"schemaVersion":2,`,
            ], { closeWrite: true });
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 500) failures.push(`${status} raw kind ${kind} ${p.slice(0, 200)}`);
      };

      const started = Date.now();
      while (sent < MAX_REQUESTS && Date.now() - started < BUDGET_MS) {
        const batch = [];
        for (let i = 0; i < PARALLEL; i++) batch.push(random() < 0.7 ? viaFetch() : viaRaw());
        sent += batch.length;
        await Promise.all(batch);
      }

      assert.deepEqual(errors.slice(0, 5), [], `seed ${seed}: unexpected errors logged`);
      assert.deepEqual(failures.slice(0, 20), [], `seed ${seed}: 5xx answers`);
      const alive = await fetch(`${base}/v2/`, { headers: { Authorization: alice } });
      await alive.body?.cancel();
      assert.equal(alive.status, 200, "the server still answers");
      assert.deepEqual(
        [...Deno.readDirSync(`${root}/canary`)],
        [],
        "nothing written in the canary",
      );
      assert.deepEqual(
        [...Deno.readDirSync(root)].map((e) => e.name).sort(),
        ["canary", "data", "htpasswd"],
        "nothing written next to the data directory",
      );
      for (const image of images) {
        for (const ref of [image.tag, image.digest]) {
          const r = await fetch(`${base}/v2/${image.repo}/manifests/${ref}`, {
            headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
          });
          assert.equal(r.status, 200, `${image.repo}:${ref}`);
          assert.deepEqual(new Uint8Array(await r.arrayBuffer()), image.manifest);
        }
        for (const blob of image.blobs) {
          const r = await fetch(`${base}/v2/${image.repo}/blobs/${blob.digest}`);
          assert.equal(r.status, 200);
          assert.deepEqual(new Uint8Array(await r.arrayBuffer()), blob.bytes);
        }
      }
      const seen = [...statuses].sort(([a], [b]) => a - b).map(([k, v]) => `${k}:${v}`).join(" ");
      if (Deno.env.get("FUZZ_VERBOSE")) console.log(thrown);
      console.log(`fuzz: ${sent} requests, seed ${seed}, ${Date.now() - started} ms; ${seen}`);
      assert.ok(sent >= 1000, `only ${sent} requests were sent in the time budget`);
    } finally {
      await server.shutdown();
      await app.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
