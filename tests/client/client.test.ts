/**
 * The registry client: challenge parsing, references, auth files, retries honouring
 * `Retry-After`, redirects that drop credentials, `Range` resume, digest verification, the Bearer
 * token flow (reuse per scope, renewal after a 401) and the upload paths against berth.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseChallenges } from "../../src/client/auth.ts";
import { lookupAuths, parseCredentials } from "../../src/client/credentials.ts";
import { ClientError } from "../../src/client/errors.ts";
import { retryAfterMs } from "../../src/client/http.ts";
import { parseImageReference, parseRepositoryReference } from "../../src/client/reference.ts";
import { RegistryClient } from "../../src/client/registry_client.ts";
import { verifying } from "../../src/client/verify.ts";
import { digestBytes } from "../../src/oci/digest.ts";
import { createApp } from "../../src/app.ts";
import { makeConfig } from "../../src/config.ts";
import { randomBytes } from "../helpers/registry.ts";
import { startFake } from "./fake_server.ts";

Deno.test("client: WWW-Authenticate challenges are parsed with quoted parameters", () => {
  const challenges = parseChallenges(
    'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push", Basic realm="x"',
  );
  assert.equal(challenges.length, 2);
  assert.deepEqual(challenges[0], {
    scheme: "bearer",
    params: {
      realm: "https://auth.example/token",
      service: "registry.example",
      scope: "repository:a/b:pull,push",
    },
  });
  assert.equal(challenges[1]!.scheme, "basic");
});

Deno.test("client: Retry-After is read as seconds or as an HTTP date", () => {
  assert.equal(retryAfterMs("3"), 3000);
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
  assert.equal(retryAfterMs("soon"), undefined);
  assert.equal(retryAfterMs(null), undefined);
});

Deno.test("client: references default to Docker Hub and library/, registries need a dot or port", () => {
  assert.deepEqual(parseImageReference("alpine"), {
    registry: "docker.io",
    repository: "library/alpine",
  });
  assert.deepEqual(parseImageReference("localhost:5000/a/b:v1"), {
    registry: "localhost:5000",
    repository: "a/b",
    tag: "v1",
  });
  const digest = digestBytes(new Uint8Array([1])).value;
  assert.equal(parseImageReference(`ghcr.io/o/r@${digest}`).digest, digest);
  assert.deepEqual(parseRepositoryReference("127.0.0.1:5000"), {
    registry: "127.0.0.1:5000",
    repository: "",
  });
  assert.throws(() => parseImageReference("Upper/Case"), ClientError);
  assert.throws(() => parseImageReference("a/b:bad tag"), ClientError);
});

Deno.test("client: auth file entries match the registry, longest repository key first", () => {
  const auths = {
    "https://index.docker.io/v1/": { auth: btoa("hub:one") },
    "r.example": { auth: btoa("reg:two") },
    "r.example/team": { auth: btoa("team:three:with:colons") },
  };
  assert.deepEqual(lookupAuths(auths, "docker.io", "library/alpine"), {
    username: "hub",
    password: "one",
  });
  assert.deepEqual(lookupAuths(auths, "r.example", "other/x"), {
    username: "reg",
    password: "two",
  });
  assert.deepEqual(lookupAuths(auths, "r.example", "team/app"), {
    username: "team",
    password: "three:with:colons",
  });
  assert.equal(lookupAuths(auths, "elsewhere.example", "x"), undefined);
  assert.throws(() => parseCredentials("nocolon"), ClientError);
});

Deno.test("client: 503 and 429 are retried, honouring Retry-After", async () => {
  let failures = 0;
  const server = await startFake((_request, url) => {
    if (url.pathname === "/v2/") return new Response("{}");
    if (failures < 2) {
      failures++;
      return new Response("busy", {
        status: failures === 1 ? 503 : 429,
        headers: { "Retry-After": "0" },
      });
    }
    return Response.json({ name: "a", tags: ["v1"] });
  });
  const client = new RegistryClient({ registry: server.url, retry: { baseDelayMs: 1 } });
  try {
    assert.deepEqual(await client.listTags("a"), ["v1"]);
    assert.equal(server.seen.filter((s) => s.path.startsWith("/v2/a/tags")).length, 3);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("client: a dropped blob download resumes with Range and is verified", async () => {
  const blob = randomBytes(300_000, 7);
  const digest = digestBytes(blob).value;
  let first = true;
  const server = await startFake((request, url) => {
    if (url.pathname === "/v2/") return new Response("{}");
    const range = request.headers.get("Range");
    if (range) {
      const start = Number(/bytes=(\d+)-/.exec(range)![1]);
      return new Response(blob.slice(start), {
        status: 206,
        headers: { "Content-Range": `bytes ${start}-${blob.length - 1}/${blob.length}` },
      });
    }
    if (first) {
      first = false;
      // Half the bytes, then the connection breaks.
      return new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(blob.slice(0, 100_000));
            setTimeout(() => controller.error(new Error("cut")), 20);
          },
        }),
        { headers: { "Content-Length": String(blob.length) } },
      );
    }
    return new Response(blob);
  });
  const client = new RegistryClient({ registry: server.url });
  try {
    const stream = await client.getBlob("a", { digest, size: blob.length });
    const got = new Uint8Array(await new Response(stream).arrayBuffer());
    assert.equal(digestBytes(got).value, digest);
    assert.ok(
      server.seen.some((s) => s.headers.get("Range") === "bytes=100000-"),
      "resumed with Range",
    );
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("client: a blob sent chunked (no Content-Length) arrives whole and verified", async () => {
  const blob = randomBytes(700_000, 11);
  const digest = digestBytes(blob).value;
  const server = await startFake((_request, url) => {
    if (url.pathname === "/v2/") return new Response("{}");
    // Pieces of odd sizes, each its own chunk on the wire.
    let offset = 0;
    return new Response(
      new ReadableStream({
        pull(controller) {
          if (offset >= blob.length) return controller.close();
          const end = Math.min(blob.length, offset + 1 + (offset % 65_521) + 30_000);
          controller.enqueue(blob.slice(offset, end));
          offset = end;
        },
      }),
    );
  });
  const client = new RegistryClient({ registry: server.url });
  try {
    const stream = await client.getBlob("a", { digest, size: blob.length });
    const got = new Uint8Array(await new Response(stream).arrayBuffer());
    assert.equal(got.length, blob.length);
    assert.equal(digestBytes(got).value, digest);
    assert.equal(server.seen.filter((s) => s.path.startsWith("/v2/a/blobs/")).length, 1);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("client: a blob answer with a malformed Content-Length is refused, not read", async () => {
  const blob = randomBytes(5000, 12);
  const digest = digestBytes(blob).value;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) {
      const head = new Uint8Array(65536);
      await conn.read(head);
      const ping = new TextDecoder().decode(head).startsWith("GET /v2/ ");
      const length = ping ? "2" : "5000x";
      const text = `HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`;
      await conn.write(new TextEncoder().encode(text));
      await conn.write(ping ? new TextEncoder().encode("{}") : blob).catch(() => 0);
      conn.close();
    }
  })();
  const client = new RegistryClient({
    registry: `http://127.0.0.1:${listener.addr.port}`,
    retry: { baseDelayMs: 1 },
  });
  try {
    await assert.rejects(
      async () => {
        const stream = await client.getBlob("a", { digest, size: blob.length });
        await new Response(stream).arrayBuffer();
      },
      /Content-Length/,
    );
  } finally {
    client.close();
    listener.close();
    await served.catch(() => {});
  }
});

Deno.test("client: bytes that do not match the digest fail naming the digest", async () => {
  const blob = randomBytes(5000, 8);
  const digest = digestBytes(randomBytes(5000, 9)).value;
  const server = await startFake((_request, url) =>
    url.pathname === "/v2/" ? new Response("{}") : new Response(blob)
  );
  const client = new RegistryClient({ registry: server.url });
  try {
    const stream = await client.getBlob("a", { digest, size: blob.length });
    await assert.rejects(new Response(stream).arrayBuffer(), (error: Error) => {
      assert.ok(error instanceof ClientError && error.kind === "digest-mismatch");
      assert.match(error.message, new RegExp(digest));
      return true;
    });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("client: Bearer tokens are fetched once per scope, reused, and renewed after a 401", async () => {
  let issued = 0;
  const valid = new Map<string, string>();
  const server = await startFake((request, url) => {
    if (url.pathname === "/token") {
      assert.equal(request.headers.get("Authorization"), `Basic ${btoa("u:p")}`);
      assert.equal(url.searchParams.get("service"), "fake");
      const token = `t${++issued}`;
      valid.set(token, url.searchParams.getAll("scope").join(" "));
      return Response.json({ token, expires_in: 300 });
    }
    const auth = request.headers.get("Authorization") ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    const repo = /^\/v2\/(.+)\/tags\/list/.exec(url.pathname)?.[1];
    const scope = repo ? `repository:${repo}:pull` : "";
    if (!valid.has(token) || (repo && valid.get(token) !== scope)) {
      return new Response("{}", {
        status: 401,
        headers: {
          "WWW-Authenticate": `Bearer realm="${url.origin}/token",service="fake"${
            scope ? `,scope="${scope}"` : ""
          }`,
        },
      });
    }
    return Response.json({ name: repo, tags: ["v1"] });
  });
  const client = new RegistryClient({
    registry: server.url,
    credentials: { username: "u", password: "p" },
  });
  try {
    for (let i = 0; i < 3; i++) assert.deepEqual(await client.listTags("a/b"), ["v1"]);
    assert.equal(issued, 1, "one token for three calls on one scope");
    await client.listTags("c");
    assert.equal(issued, 2, "another scope, another token");
    valid.clear(); // the registry forgets every token (expired, rotated keys)
    assert.deepEqual(await client.listTags("a/b"), ["v1"]);
    assert.equal(issued, 3, "renewed once after the 401");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("client: a redirect to another origin does not carry the credentials", async () => {
  const blob = randomBytes(1000, 3);
  const storage = await startFake(() => new Response(blob));
  const registry = await startFake((request, url) => {
    if (request.headers.get("Authorization") !== `Basic ${btoa("u:p")}`) {
      return new Response("{}", {
        status: 401,
        headers: { "WWW-Authenticate": 'Basic realm="r"' },
      });
    }
    if (url.pathname === "/v2/") return new Response("{}");
    return new Response(null, {
      status: 307,
      headers: { Location: `${storage.url}/object?sig=1` },
    });
  });
  const client = new RegistryClient({
    registry: registry.url,
    credentials: { username: "u", password: "p" },
  });
  try {
    const stream = await client.getBlob("a", {
      digest: digestBytes(blob).value,
      size: blob.length,
    });
    assert.equal((await new Response(stream).arrayBuffer()).byteLength, 1000);
    assert.equal(storage.seen.length, 1);
    assert.equal(storage.seen[0]!.path, "/object?sig=1");
    assert.equal(storage.seen[0]!.headers.get("Authorization"), null);
  } finally {
    client.close();
    await registry.close();
    await storage.close();
  }
});

Deno.test("client: small blobs go in one PUT, large ones in a PATCH with Content-Length", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-client-" });
  const app = createApp(makeConfig({ dataDir, addr: "127.0.0.1:0" }), {
    logError: () => {},
    log: () => {},
  });
  const server = await startFake((request) =>
    app.handler(request, {} as Deno.ServeHandlerInfo<Deno.NetAddr>)
  );
  const client = new RegistryClient({ registry: server.url, monolithicLimit: 10_000 });
  try {
    const small = randomBytes(5000, 1);
    const large = randomBytes(50_000, 2);
    const open = (bytes: Uint8Array<ArrayBuffer>) => () =>
      Promise.resolve(new Response(bytes).body!);
    const put = async (bytes: Uint8Array<ArrayBuffer>) =>
      await client.pushBlob(
        "x/y",
        { digest: digestBytes(bytes).value, size: bytes.length },
        open(bytes),
      );
    assert.equal(await put(small), "uploaded");
    assert.equal(await put(large), "uploaded");
    assert.equal(await put(large), "exists");
    const uploads = server.seen.filter((s) => s.method === "PUT" || s.method === "PATCH");
    assert.deepEqual(uploads.map((s) => [s.method, s.headers.get("Content-Length")]), [
      ["PUT", "5000"],
      ["PATCH", "50000"],
      ["PUT", "0"],
    ]);
    assert.ok(uploads.every((s) => s.headers.get("Transfer-Encoding") === null));
    assert.equal(
      await client.pushBlob(
        "other/repo",
        { digest: digestBytes(large).value, size: large.length },
        open(large),
        {
          mountFrom: "x/y",
        },
      ),
      "mounted",
    );
  } finally {
    client.close();
    await server.close();
    await app.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("client: an attempt without an answer in timeoutMs is retried, then fails as unreachable", async () => {
  let calls = 0;
  const hang = Promise.withResolvers<void>();
  const server = await startFake(async (_request, url) => {
    if (url.pathname === "/v2/") return new Response("{}");
    calls++;
    if (calls === 1 || url.pathname.includes("never")) await hang.promise;
    return Response.json({ name: "a", tags: ["v1"] });
  });
  const client = new RegistryClient({
    registry: server.url,
    retry: { timeoutMs: 100, retries: 1, baseDelayMs: 1 },
  });
  try {
    assert.deepEqual(await client.listTags("a"), ["v1"]);
    assert.equal(calls, 2);
    await assert.rejects(client.listTags("never"), (error: Error) => {
      assert.ok(error instanceof ClientError && error.kind === "unreachable", error.message);
      assert.match(error.message, /no answer within 100 ms/);
      return true;
    });
  } finally {
    hang.resolve();
    client.close();
    await server.close();
  }
});

Deno.test("client: an upload the registry fails with a 5xx is restarted from a fresh stream", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-client-" });
  const app = createApp(makeConfig({ dataDir, addr: "127.0.0.1:0" }), {
    logError: () => {},
    log: () => {},
  });
  let failed = false;
  const server = await startFake(async (request) => {
    if (request.method === "PUT" && !failed) {
      failed = true;
      await request.body?.cancel();
      return new Response("{}", { status: 503 });
    }
    return await app.handler(request, {} as Deno.ServeHandlerInfo<Deno.NetAddr>);
  });
  const client = new RegistryClient({ registry: server.url });
  try {
    const bytes = randomBytes(20_000, 4);
    let opened = 0;
    const open = () => {
      opened++;
      return Promise.resolve(new Response(bytes).body!);
    };
    const digest = digestBytes(bytes).value;
    assert.equal(await client.pushBlob("x/y", { digest, size: bytes.length }, open), "uploaded");
    assert.equal(opened, 2);
    assert.equal(server.seen.filter((s) => s.method === "PUT").length, 2);
    assert.equal(await client.hasBlob("x/y", digest), true);
    assert.equal((await client.statBlob("x/y", digest))?.size, bytes.length);
    assert.equal(await client.statBlob("x/y", digestBytes(randomBytes(10, 99)).value), undefined);
  } finally {
    client.close();
    await server.close();
    await app.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("client: with a proxy configured, uploads go through fetch (chunked) and still land", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-client-" });
  const app = createApp(makeConfig({ dataDir, addr: "127.0.0.1:0" }), {
    logError: () => {},
    log: () => {},
  });
  const server = await startFake((request) =>
    app.handler(request, {} as Deno.ServeHandlerInfo<Deno.NetAddr>)
  );
  Deno.env.set("HTTP_PROXY", "http://127.0.0.1:9"); // never used: NO_PROXY covers the registry
  Deno.env.set("NO_PROXY", "127.0.0.1");
  const client = new RegistryClient({ registry: server.url });
  try {
    const bytes = randomBytes(30_000, 5);
    const digest = digestBytes(bytes).value;
    const open = () =>
      Promise.resolve(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(bytes.slice(0, 10_000));
            controller.enqueue(bytes.slice(10_000));
            controller.close();
          },
        }),
      );
    assert.equal(await client.pushBlob("x/y", { digest, size: bytes.length }, open), "uploaded");
    const put = server.seen.find((s) => s.method === "PUT")!;
    assert.equal(put.headers.get("Transfer-Encoding"), "chunked");
    assert.equal(await client.hasBlob("x/y", digest), true);
  } finally {
    Deno.env.delete("HTTP_PROXY");
    Deno.env.delete("NO_PROXY");
    client.close();
    await server.close();
    await app.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** berth behind a recording front; `mounts: false` drops `mount`/`from` (a registry that never mounts). */
async function recordedBerth(mounts: boolean) {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-client-" });
  const app = createApp(makeConfig({ dataDir, addr: "127.0.0.1:0" }), {
    logError: () => {},
    log: () => {},
  });
  const server = await startFake((request, url) => {
    if (!mounts && url.searchParams.has("mount")) {
      url.searchParams.delete("mount");
      url.searchParams.delete("from");
      request = new Request(url, request);
    }
    return app.handler(request, {} as Deno.ServeHandlerInfo<Deno.NetAddr>);
  });
  return {
    server,
    /** Method and path (query names only) of the requests to `x/y`'s blobs, from `start` on. */
    since: (start: number) =>
      server.seen.slice(start).filter((s) => s.path.includes("/x/y/blobs/")).map((s) => {
        const [path, query] = s.path.split("?");
        const kind = path!.endsWith("/uploads/")
          ? "uploads/"
          : path!.includes("/uploads/")
          ? "session"
          : "blob";
        const names = [...new URLSearchParams(query ?? "").keys()].filter((k) => k !== "_state");
        return `${s.method} ${kind}${names.length ? `?${names.join("&")}` : ""}`;
      }),
    async close() {
      await server.close();
      await app.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

Deno.test("client: after a first upload, a repository that mounts from itself is asked with POST ?mount= instead of HEAD", async () => {
  const registry = await recordedBerth(true);
  const client = new RegistryClient({ registry: registry.server.url });
  try {
    const blobs = [1, 2, 3].map((seed) => randomBytes(3000, 40 + seed));
    const push = (bytes: Uint8Array<ArrayBuffer>) =>
      client.pushBlob(
        "x/y",
        { digest: digestBytes(bytes).value, size: bytes.length },
        () => Promise.resolve(new Response(bytes).body!),
      );
    assert.equal(client.selfMounts("x/y"), undefined);
    assert.equal(await push(blobs[0]!), "uploaded");
    assert.deepEqual(registry.since(0), [
      "HEAD blob",
      "POST uploads/",
      "PUT session?digest",
      "POST uploads/?mount&from", // the probe: the blob just uploaded, 201
    ]);
    assert.equal(client.selfMounts("x/y"), true);
    let start = registry.server.seen.length;
    assert.equal(await push(blobs[1]!), "uploaded");
    assert.deepEqual(registry.since(start), ["POST uploads/?mount&from", "PUT session?digest"]);
    start = registry.server.seen.length;
    assert.equal(await push(blobs[0]!), "exists"); // 201: nothing opened, nothing sent
    assert.deepEqual(registry.since(start), ["POST uploads/?mount&from"]);
    assert.equal(await client.hasBlob("x/y", digestBytes(blobs[1]!).value), true);
    assert.equal(await client.hasBlob("x/y", digestBytes(blobs[2]!).value), false);
  } finally {
    client.close();
    await registry.close();
  }
});

Deno.test("client: a registry that does not mount keeps its HEADs, and blobs it has are still skipped", async () => {
  const registry = await recordedBerth(false);
  const client = new RegistryClient({ registry: registry.server.url });
  try {
    const blobs = [1, 2].map((seed) => randomBytes(3000, 50 + seed));
    let opened = 0;
    const push = (bytes: Uint8Array<ArrayBuffer>) =>
      client.pushBlob(
        "x/y",
        { digest: digestBytes(bytes).value, size: bytes.length },
        () => {
          opened++;
          return Promise.resolve(new Response(bytes).body!);
        },
      );
    assert.equal(await push(blobs[0]!), "uploaded");
    assert.deepEqual(registry.since(0), [
      "HEAD blob",
      "POST uploads/",
      "PUT session?digest",
      "POST uploads/?mount&from", // answered 202 with a session...
      "DELETE session", // ...which is cancelled
    ]);
    assert.equal(client.selfMounts("x/y"), false);
    let start = registry.server.seen.length;
    opened = 0;
    assert.equal(await push(blobs[0]!), "exists");
    assert.deepEqual(registry.since(start), ["HEAD blob"]);
    assert.equal(opened, 0);
    start = registry.server.seen.length;
    assert.equal(await push(blobs[1]!), "uploaded");
    assert.deepEqual(registry.since(start), ["HEAD blob", "POST uploads/", "PUT session?digest"]);
  } finally {
    client.close();
    await registry.close();
  }
});

Deno.test("client: hasRepository is false on NAME_UNKNOWN, true once the repository exists, undefined when the registry does not say", async () => {
  const registry = await recordedBerth(true);
  const client = new RegistryClient({ registry: registry.server.url });
  const plain404 = await startFake((_request, url) =>
    url.pathname === "/v2/" ? new Response("{}") : new Response("no", { status: 404 })
  );
  const other = new RegistryClient({ registry: plain404.url });
  try {
    assert.equal(await client.hasRepository("x/y"), false);
    const config = new TextEncoder().encode("{}");
    const digest = digestBytes(config).value;
    await client.pushBlob(
      "x/y",
      { digest, size: config.length },
      () => Promise.resolve(new Response(config).body!),
    );
    await client.putManifest("x/y", "v1", {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      bytes: new TextEncoder().encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest, size: 2 },
        layers: [],
      })),
    });
    assert.equal(await client.hasRepository("x/y"), true);
    assert.equal(await other.hasRepository("x/y"), undefined);
  } finally {
    client.close();
    other.close();
    await plain404.close();
    await registry.close();
  }
});

Deno.test("client: verifying with hash: false checks the size only", async () => {
  const bytes = randomBytes(5000, 70);
  const wrongDigest = digestBytes(randomBytes(5000, 71)).value;
  const read = (size: number, hash: boolean) =>
    new Response(verifying(new Response(bytes).body!, wrongDigest, size, { hash })).arrayBuffer();
  assert.equal((await read(5000, false)).byteLength, 5000);
  await assert.rejects(read(5000, true), /digest mismatch/);
  await assert.rejects(read(4999, false), /more than the expected 4999 bytes/);
  await assert.rejects(read(5001, false), /5000 bytes received, 5001 expected/);
});
