/**
 * OCI Distribution Spec v1.1 conformance: behaviours the official conformance suite and the spec
 * check that the other integration tests do not pin (bodies without `Content-Length`, push by
 * digest with `?tag=`, the suite's chunked workflow, mixed streamed and ranged chunks, finished
 * sessions, mounts that cannot be served).
 *
 * @module
 */
import assert from "node:assert/strict";
import { MAX_QUERY_TAGS } from "../../src/services/manifests.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import {
  assertError,
  bytesOf,
  digestOf,
  expectStatus,
  MEDIA,
  pushBlob,
  pushImage,
  pushImageBlobs,
  putManifest,
  text,
} from "../helpers/registry.ts";

/** Open a session in `name`; returns its Location as the server gave it (a path). */
async function openSession(server: TestServer, name: string): Promise<string> {
  const response = await fetch(`${server.url}/v2/${name}/blobs/uploads/`, {
    method: "POST",
    headers: { "Content-Length": "0" },
  });
  await expectStatus(response, 202);
  const location = response.headers.get("Location");
  assert.ok(location);
  return location;
}

/** PATCH `bytes` to a session path; the body is drained, the response returned. */
async function patch(
  server: TestServer,
  location: string,
  bytes: Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = {},
): Promise<Response> {
  const response = await fetch(new URL(location, server.url), {
    method: "PATCH",
    headers: { "Content-Type": "application/octet-stream", ...headers },
    body: bytes,
  });
  await response.body?.cancel();
  return response;
}

/** `location` with `?digest=` added. */
function closing(location: string, digest: string): string {
  return `${location}${location.includes("?") ? "&" : "?"}digest=${digest}`;
}

/**
 * Send a request with neither `Content-Length` nor `Transfer-Encoding` (a client like `curl -X PUT`
 * does so; `fetch` always declares a length) and read the response until the server closes. The
 * socket is not half-closed: a server may take that for a client that went away.
 */
async function bodiless(
  server: TestServer,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; raw: string }> {
  const url = new URL(server.url);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  try {
    const all = { Host: url.host, Connection: "close", ...headers };
    const head = Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await conn.write(text(`${method} ${path} HTTP/1.1\r\n${head}\r\n`));
    const raw = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0), raw };
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed by reading its readable to the end.
    }
  }
}

/** The value of a header in a raw HTTP response, or `undefined`. */
function rawHeader(raw: string, name: string): string | undefined {
  const head = raw.split("\r\n\r\n")[0] ?? "";
  const line = head.split("\r\n").find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

Deno.test("conformance: PATCH and PUT without Content-Length or body are empty chunks, not errors", async () => {
  const server = await startServer();
  try {
    const blob = text("streamed then closed");
    const digest = digestOf(blob);
    const location = await openSession(server, "app");
    const first = await patch(server, location, blob);
    assert.equal(first.status, 202);
    // HTTP/1.1 without Content-Length or Transfer-Encoding: a zero-length body (RFC 9112 6.3).
    const empty = await bodiless(server, "PATCH", location);
    assert.equal(empty.status, 202, empty.raw);
    assert.equal(rawHeader(empty.raw, "Range"), `0-${blob.byteLength - 1}`);
    const close = await bodiless(server, "PUT", closing(location, digest));
    assert.equal(close.status, 201, close.raw);
    assert.equal(rawHeader(close.raw, "Docker-Content-Digest"), digest);
    const get = await fetch(`${server.url}/v2/app/blobs/${digest}`);
    assert.deepEqual(await bytesOf(get), blob);
    // A manifest PUT with no body is an invalid manifest, not a size error.
    const manifest = await bodiless(server, "PUT", "/v2/app/manifests/v1", {
      "Content-Type": MEDIA.ociManifest,
    });
    assert.equal(manifest.status, 400, manifest.raw);
    assert.match(manifest.raw, /"code":"MANIFEST_INVALID"/);
  } finally {
    await server.close();
  }
});

Deno.test("conformance: PUT manifest by digest with ?tag= tags it and answers one OCI-Tag per tag", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "app");
    const response = await putManifest(
      server.url,
      "app",
      `${image.digest}?tag=v1&tag=latest&tag=v1`,
      image.bytes,
      MEDIA.ociManifest,
    );
    await expectStatus(response, 201);
    assert.equal(response.headers.get("Docker-Content-Digest"), image.digest);
    assert.equal(response.headers.get("Location"), `/v2/app/manifests/${image.digest}`);
    assert.equal(response.headers.get("OCI-Tag"), "v1, latest");
    const tags = await fetch(`${server.url}/v2/app/tags/list`);
    assert.deepEqual(await tags.json(), { name: "app", tags: ["latest", "v1"] });
    for (const tag of ["v1", "latest"]) {
      const get = await fetch(`${server.url}/v2/app/manifests/${tag}`);
      assert.equal(get.headers.get("Docker-Content-Digest"), image.digest);
      assert.deepEqual(await bytesOf(get), image.bytes);
    }
    // Without ?tag= no OCI-Tag header and no tag.
    const other = await pushImageBlobs(server.url, "app", { seed: 2 });
    const plain = await putManifest(
      server.url,
      "app",
      other.digest,
      other.bytes,
      MEDIA.ociManifest,
    );
    await expectStatus(plain, 201);
    assert.equal(plain.headers.get("OCI-Tag"), null);
  } finally {
    await server.close();
  }
});

Deno.test("conformance: an invalid or excessive ?tag= is refused before anything is stored", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "app");
    const bad = await putManifest(
      server.url,
      "app",
      `${image.digest}?tag=ok&tag=${encodeURIComponent("-bad")}`,
      image.bytes,
      MEDIA.ociManifest,
    );
    await assertError(bad, 400, "MANIFEST_INVALID");
    const many = Array.from({ length: MAX_QUERY_TAGS + 1 }, (_, i) => `tag=t${i}`).join("&");
    const tooMany = await putManifest(
      server.url,
      "app",
      `${image.digest}?${many}`,
      image.bytes,
      MEDIA.ociManifest,
    );
    await assertError(tooMany, 414, "MANIFEST_INVALID");
    const get = await fetch(`${server.url}/v2/app/manifests/${image.digest}`);
    await assertError(get, 404, "MANIFEST_UNKNOWN");
    const tags = await fetch(`${server.url}/v2/app/tags/list`);
    assert.deepEqual(await tags.json(), { name: "app", tags: [] });
    // The limit itself is accepted.
    const most = Array.from({ length: MAX_QUERY_TAGS }, (_, i) => `tag=t${i}`).join("&");
    const ok = await putManifest(
      server.url,
      "app",
      `${image.digest}?${most}`,
      image.bytes,
      MEDIA.ociManifest,
    );
    await expectStatus(ok, 201);
    const list = await fetch(`${server.url}/v2/app/tags/list?n=1000`);
    assert.equal(((await list.json()) as { tags: string[] }).tags.length, MAX_QUERY_TAGS);
  } finally {
    await server.close();
  }
});

Deno.test("conformance: the suite's chunked workflow: retried chunk 416, stale GET 204, then finish", async () => {
  const server = await startServer();
  try {
    const blob = text("0123456789abcdefghij");
    const chunk1 = blob.slice(0, 12);
    const chunk2 = blob.slice(12);
    const location = await openSession(server, "app");
    const first = await patch(server, location, chunk1, {
      "Content-Range": "0-11",
      "Content-Length": "12",
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.get("Range"), "0-11");
    const next = first.headers.get("Location");
    assert.ok(next);
    // The same chunk again, at the first Location: out of order.
    const retry = await fetch(new URL(location, server.url), {
      method: "PATCH",
      headers: { "Content-Type": "application/octet-stream", "Content-Range": "0-11" },
      body: chunk1,
    });
    const error = await assertError(retry, 416, "BLOB_UPLOAD_INVALID");
    assert.deepEqual(error.detail, { expected: 12, received: 0 });
    assert.equal(retry.headers.get("Range"), "0-11");
    assert.equal(retry.headers.get("Location"), next);
    // GET on the first Location tells where the session stands.
    const status = await fetch(new URL(location, server.url));
    await expectStatus(status, 204);
    assert.equal(status.headers.get("Range"), "0-11");
    const resume = status.headers.get("Location");
    assert.ok(resume);
    const second = await patch(server, resume, chunk2, { "Content-Range": "12-19" });
    assert.equal(second.status, 202);
    assert.equal(second.headers.get("Range"), `0-${blob.byteLength - 1}`);
    const end = second.headers.get("Location");
    assert.ok(end);
    const put = await fetch(new URL(closing(end, digestOf(blob)), server.url), {
      method: "PUT",
      headers: { "Content-Length": "0", "Content-Type": "application/octet-stream" },
    });
    await expectStatus(put, 201);
    assert.equal(put.headers.get("Location"), `/v2/app/blobs/${digestOf(blob)}`);
    const get = await fetch(`${server.url}/v2/app/blobs/${digestOf(blob)}`);
    assert.deepEqual(await bytesOf(get), blob);
  } finally {
    await server.close();
  }
});

Deno.test("conformance: a ranged chunk after a streamed one continues at its end; a gap is 416", async () => {
  const server = await startServer();
  try {
    const streamed = text("streamed-");
    const ranged = text("ranged");
    const location = await openSession(server, "app");
    const first = await patch(server, location, streamed);
    assert.equal(first.status, 202);
    assert.equal(first.headers.get("Range"), `0-${streamed.byteLength - 1}`);
    const gap = await fetch(new URL(location, server.url), {
      method: "PATCH",
      headers: { "Content-Range": `${streamed.byteLength + 1}-${streamed.byteLength + 6}` },
      body: ranged,
    });
    await assertError(gap, 416, "BLOB_UPLOAD_INVALID");
    assert.equal(gap.headers.get("Range"), `0-${streamed.byteLength - 1}`);
    assert.ok(gap.headers.get("Location"));
    const end = streamed.byteLength + ranged.byteLength - 1;
    const second = await patch(server, location, ranged, {
      "Content-Range": `${streamed.byteLength}-${end}`,
    });
    assert.equal(second.status, 202);
    assert.equal(second.headers.get("Range"), `0-${end}`);
    const blob = text("streamed-ranged");
    const put = await fetch(new URL(closing(location, digestOf(blob)), server.url), {
      method: "PUT",
    });
    await expectStatus(put, 201);
  } finally {
    await server.close();
  }
});

Deno.test("conformance: a finished upload session is gone: GET, PATCH, PUT and DELETE answer 404", async () => {
  const server = await startServer();
  try {
    const blob = text("done");
    const location = await openSession(server, "app");
    const put = await fetch(new URL(closing(location, digestOf(blob)), server.url), {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: blob,
    });
    await expectStatus(put, 201);
    const url = new URL(location, server.url);
    await assertError(await fetch(url), 404, "BLOB_UPLOAD_UNKNOWN");
    await assertError(
      await fetch(url, { method: "PATCH", body: blob }),
      404,
      "BLOB_UPLOAD_UNKNOWN",
    );
    const again = new URL(closing(location, digestOf(blob)), server.url);
    await assertError(await fetch(again, { method: "PUT" }), 404, "BLOB_UPLOAD_UNKNOWN");
    await assertError(await fetch(url, { method: "DELETE" }), 404, "BLOB_UPLOAD_UNKNOWN");
  } finally {
    await server.close();
  }
});

Deno.test("conformance: a mount from a repository that lacks the blob opens a session and links nothing", async () => {
  const server = await startServer();
  try {
    const blob = text("only in a");
    const digest = await pushBlob(server.url, "a", blob);
    await pushBlob(server.url, "b", text("b exists"));
    for (const from of ["b", "never-pushed"]) {
      const response = await fetch(
        `${server.url}/v2/c/blobs/uploads/?mount=${digest}&from=${from}`,
        { method: "POST" },
      );
      await expectStatus(response, 202);
      assert.match(response.headers.get("Location") ?? "", /^\/v2\/c\/blobs\/uploads\/[\w-]+$/);
      assert.equal(response.headers.get("Range"), "0-0");
      const get = await fetch(`${server.url}/v2/c/blobs/${digest}`, { method: "HEAD" });
      assert.equal(get.status, 404);
      await get.body?.cancel();
    }
  } finally {
    await server.close();
  }
});

Deno.test("conformance: HEAD answers wherever GET does (tags list, referrers, catalog): headers, no body", async () => {
  const server = await startServer();
  try {
    const image = await pushImage(server.url, "app", "v1");
    for (const path of ["/v2/app/tags/list", `/v2/app/referrers/${image.digest}`, "/v2/_catalog"]) {
      const get = await fetch(`${server.url}${path}`);
      const body = await bytesOf(get);
      assert.equal(get.status, 200, path);
      const head = await fetch(`${server.url}${path}`, { method: "HEAD" });
      assert.equal(head.status, 200, path);
      assert.equal(head.headers.get("Content-Type"), get.headers.get("Content-Type"), path);
      assert.equal(head.headers.get("Content-Length"), String(body.byteLength), path);
      assert.equal((await bytesOf(head)).byteLength, 0, path);
    }
    const unknown = await fetch(`${server.url}/v2/nothing/tags/list`, { method: "HEAD" });
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("conformance: If-None-Match on a manifest takes a list, a weak tag or * (304)", async () => {
  const server = await startServer();
  try {
    const image = await pushImage(server.url, "app", "v1");
    const etag = `"${image.digest}"`;
    for (const header of [`"other", ${etag}`, `W/${etag}`, "*"]) {
      for (const ref of ["v1", image.digest]) {
        const response = await fetch(`${server.url}/v2/app/manifests/${ref}`, {
          headers: { "If-None-Match": header },
        });
        await expectStatus(response, 304);
        assert.equal(response.headers.get("Docker-Content-Digest"), image.digest);
      }
    }
    const miss = await fetch(`${server.url}/v2/app/manifests/v1`, {
      headers: { "If-None-Match": `"sha256:${"0".repeat(64)}"` },
    });
    assert.deepEqual(await bytesOf(miss), image.bytes);
  } finally {
    await server.close();
  }
});

Deno.test("conformance: GET and HEAD of an invalid manifest reference answer 404 MANIFEST_UNKNOWN", async () => {
  const server = await startServer();
  try {
    await pushImage(server.url, "conf/invalid", "latest");
    // The suite's own nonexistent reference, a tag too long, and digests that cannot exist.
    const references = [
      ".INVALID_MANIFEST_NAME",
      "t".repeat(129),
      "sha256:totallywrong",
      `sha256:${"0".repeat(63)}`,
    ];
    for (const reference of references) {
      const url = `${server.url}/v2/conf/invalid/manifests/${reference}`;
      await assertError(await fetch(url), 404, "MANIFEST_UNKNOWN").catch((error) => {
        throw new Error(`GET ${reference}: ${error.message}`);
      });
      const head = await fetch(url, { method: "HEAD" });
      await head.body?.cancel();
      assert.equal(head.status, 404, `HEAD ${reference}`);
    }
    // A push under an invalid reference is still refused as invalid.
    const image = await pushImageBlobs(server.url, "conf/invalid");
    await assertError(
      await putManifest(
        server.url,
        "conf/invalid",
        ".INVALID_MANIFEST_NAME",
        image.bytes,
        MEDIA.ociManifest,
      ),
      400,
      "MANIFEST_INVALID",
    );
  } finally {
    await server.close();
  }
});
