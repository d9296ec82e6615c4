/**
 * Blob uploads over HTTP: sessions, chunks, monolithic pushes, status, cancel, digest and size
 * checks, and cross-repository mounts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer, type TestServer } from "../helpers/server.ts";
import {
  assertError,
  blobFiles,
  bytesOf,
  digestOf,
  expectStatus,
  listFiles,
  pushBlob,
  randomBytes,
  rawRequest,
  text,
} from "../helpers/registry.ts";

const UUID = /^[A-Za-z0-9-]+$/;

/** Open a session; returns its absolute URL. */
async function openSession(server: TestServer, name: string): Promise<string> {
  const response = await fetch(`${server.url}/v2/${name}/blobs/uploads/`, { method: "POST" });
  await expectStatus(response, 202);
  const location = response.headers.get("Location");
  assert.ok(location);
  return new URL(location, server.url).href;
}

/** PATCH a chunk; returns the response (body drained). */
async function patch(
  url: string,
  bytes: Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = {},
): Promise<Response> {
  const response = await fetch(url, {
    method: "PATCH",
    headers: { "Content-Type": "application/octet-stream", ...headers },
    body: bytes,
  });
  await response.body?.cancel();
  return response;
}

/** `url?digest=` (keeping any query the Location had). */
function withDigest(url: string, digest: string): string {
  const u = new URL(url);
  u.searchParams.set("digest", digest);
  return u.href;
}

Deno.test("uploads: POST opens a session: 202 with Location, Docker-Upload-UUID, Range", async () => {
  const server = await startServer();
  try {
    const response = await fetch(`${server.url}/v2/library/x/blobs/uploads/`, { method: "POST" });
    await expectStatus(response, 202);
    const id = response.headers.get("Docker-Upload-UUID");
    assert.ok(id && UUID.test(id));
    assert.equal(response.headers.get("Location"), `/v2/library/x/blobs/uploads/${id}`);
    assert.equal(response.headers.get("Range"), "0-0");
    assert.equal(response.headers.get("Content-Length"), "0");
  } finally {
    await server.close();
  }
});

Deno.test("uploads: monolithic POST ?digest= stores the blob (201, Location, digest)", async () => {
  const server = await startServer();
  try {
    const bytes = randomBytes(100_000, 2);
    const digest = digestOf(bytes);
    const response = await fetch(`${server.url}/v2/repo/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    await expectStatus(response, 201);
    assert.equal(response.headers.get("Location"), `/v2/repo/blobs/${digest}`);
    assert.equal(response.headers.get("Docker-Content-Digest"), digest);
    const get = await fetch(`${server.url}/v2/repo/blobs/${digest}`);
    assert.deepEqual(await bytesOf(get), bytes);
    // No session is left behind.
    const left = await listFiles(`${server.dataDir}/docker/registry/v2/repositories/repo/_uploads`);
    assert.deepEqual(left, []);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: chunked PATCHes then PUT ?digest= with no body (201)", async () => {
  const server = await startServer();
  try {
    const bytes = randomBytes(300_001, 4);
    const digest = digestOf(bytes);
    const url = await openSession(server, "repo");
    const first = await patch(url, bytes.slice(0, 100_000), { "Content-Range": "0-99999" });
    await expectStatus(first, 202);
    assert.equal(first.headers.get("Range"), "0-99999");
    const id = url.slice(url.lastIndexOf("/") + 1);
    assert.equal(first.headers.get("Docker-Upload-UUID"), id);
    assert.equal(first.headers.get("Location"), `/v2/repo/blobs/uploads/${id}`);
    // A chunk without Content-Range is appended too (as skopeo sends it).
    const second = await patch(url, bytes.slice(100_000));
    await expectStatus(second, 202);
    assert.equal(second.headers.get("Range"), "0-300000");
    const put = await fetch(withDigest(url, digest), { method: "PUT" });
    await expectStatus(put, 201);
    assert.equal(put.headers.get("Location"), `/v2/repo/blobs/${digest}`);
    assert.equal(put.headers.get("Docker-Content-Digest"), digest);
    const get = await fetch(`${server.url}/v2/repo/blobs/${digest}`);
    assert.deepEqual(await bytesOf(get), bytes);
    // The session is gone.
    await assertError(await fetch(url), 404, "BLOB_UPLOAD_UNKNOWN");
  } finally {
    await server.close();
  }
});

Deno.test("uploads: PUT ?digest= with the last chunk as its body (201)", async () => {
  const server = await startServer();
  try {
    const bytes = randomBytes(50_000, 5);
    const digest = digestOf(bytes);
    const url = await openSession(server, "repo");
    await expectStatus(await patch(url, bytes.slice(0, 20_000)), 202);
    const put = await fetch(withDigest(url, digest), {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream", "Content-Range": "20000-49999" },
      body: bytes.slice(20_000),
    });
    await expectStatus(put, 201);
    assert.deepEqual(await bytesOf(await fetch(`${server.url}/v2/repo/blobs/${digest}`)), bytes);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a whole blob in the PUT of a fresh session (201)", async () => {
  const server = await startServer();
  try {
    const bytes = text("put only");
    const digest = digestOf(bytes);
    const url = await openSession(server, "repo");
    await expectStatus(await fetch(withDigest(url, digest), { method: "PUT", body: bytes }), 201);
    assert.deepEqual(await bytesOf(await fetch(`${server.url}/v2/repo/blobs/${digest}`)), bytes);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a PATCH whose Content-Range does not start at the offset answers 416", async () => {
  const server = await startServer();
  try {
    const url = await openSession(server, "repo");
    await expectStatus(await patch(url, text("abcde"), { "Content-Range": "0-4" }), 202);
    for (const range of ["0-4", "3-7", "6-10", "100-104"]) {
      const response = await patch(url, text("fghij"), { "Content-Range": range });
      assert.equal(response.status, 416, range);
      assert.equal(response.headers.get("Range"), "0-4", range);
    }
    const error = await fetch(url, {
      method: "PATCH",
      headers: { "Content-Range": "9-13" },
      body: text("fghij"),
    });
    await assertError(error, 416, "BLOB_UPLOAD_INVALID");
    // The session is intact and continues at 5.
    const status = await fetch(url);
    await expectStatus(status, 204);
    assert.equal(status.headers.get("Range"), "0-4");
    await expectStatus(await patch(url, text("fghij"), { "Content-Range": "5-9" }), 202);
    const digest = digestOf(text("abcdefghij"));
    await expectStatus(await fetch(withDigest(url, digest), { method: "PUT" }), 201);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a malformed Content-Range answers 416 BLOB_UPLOAD_INVALID", async () => {
  const server = await startServer();
  try {
    const url = await openSession(server, "repo");
    const response = await fetch(url, {
      method: "PATCH",
      headers: { "Content-Range": "five-ten" },
      body: text("abc"),
    });
    await assertError(response, 416, "BLOB_UPLOAD_INVALID");
  } finally {
    await server.close();
  }
});

Deno.test("uploads: GET on a session answers 204 with its Range", async () => {
  const server = await startServer();
  try {
    const url = await openSession(server, "repo");
    const empty = await fetch(url);
    await expectStatus(empty, 204);
    assert.equal(empty.headers.get("Range"), "0-0");
    await expectStatus(await patch(url, randomBytes(1234)), 202);
    const status = await fetch(url);
    await expectStatus(status, 204);
    assert.equal(status.headers.get("Range"), "0-1233");
    assert.ok(status.headers.get("Docker-Upload-UUID"));
    assert.equal(new URL(status.headers.get("Location") ?? "", server.url).href, url);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: DELETE cancels a session (204), then it is unknown (404)", async () => {
  const server = await startServer();
  try {
    const url = await openSession(server, "repo");
    await expectStatus(await patch(url, text("partial")), 202);
    await expectStatus(await fetch(url, { method: "DELETE" }), 204);
    await assertError(await fetch(url), 404, "BLOB_UPLOAD_UNKNOWN");
    await assertError(await fetch(url, { method: "DELETE" }), 404, "BLOB_UPLOAD_UNKNOWN");
    assert.deepEqual(await blobFiles(server.dataDir), []);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: an unknown session answers 404 BLOB_UPLOAD_UNKNOWN on every method", async () => {
  const server = await startServer();
  try {
    const digest = digestOf(text("x"));
    const ids = [crypto.randomUUID(), "not-a-session", "bad%20id", "a.b", "x".repeat(65)];
    for (const id of ids) {
      const url = `${server.url}/v2/repo/blobs/uploads/${id}`;
      await assertError(await fetch(url), 404, "BLOB_UPLOAD_UNKNOWN");
      const patched = await fetch(url, { method: "PATCH", body: text("x") });
      await assertError(patched, 404, "BLOB_UPLOAD_UNKNOWN");
      const put = await fetch(`${url}?digest=${digest}`, { method: "PUT", body: text("x") });
      await assertError(put, 404, "BLOB_UPLOAD_UNKNOWN");
      await assertError(await fetch(url, { method: "DELETE" }), 404, "BLOB_UPLOAD_UNKNOWN");
    }
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a session of one repository is unknown in another", async () => {
  const server = await startServer();
  try {
    const url = await openSession(server, "a");
    const other = url.replace("/v2/a/", "/v2/b/");
    await assertError(await fetch(other), 404, "BLOB_UPLOAD_UNKNOWN");
    await expectStatus(await fetch(url), 204);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a wrong digest answers 400 DIGEST_INVALID and stores nothing", async () => {
  const server = await startServer();
  try {
    const bytes = text("actual content");
    const wrong = digestOf(text("other content"));
    const url = await openSession(server, "repo");
    await expectStatus(await patch(url, bytes), 202);
    await assertError(
      await fetch(withDigest(url, wrong), { method: "PUT" }),
      400,
      "DIGEST_INVALID",
    );
    const mono = await fetch(`${server.url}/v2/repo/blobs/uploads/?digest=${wrong}`, {
      method: "POST",
      body: bytes,
    });
    await assertError(mono, 400, "DIGEST_INVALID");
    assert.deepEqual(await blobFiles(server.dataDir), []);
    for (const digest of [wrong, digestOf(bytes)]) {
      await assertError(await fetch(`${server.url}/v2/repo/blobs/${digest}`), 404, "BLOB_UNKNOWN");
    }
    assert.deepEqual(
      await listFiles(`${server.dataDir}/docker/registry/v2/repositories/repo/_layers`),
      [],
    );
  } finally {
    await server.close();
  }
});

Deno.test("uploads: PUT without ?digest= or with a malformed one answers 400", async () => {
  const server = await startServer();
  try {
    const url = await openSession(server, "repo");
    await assertError(await fetch(url, { method: "PUT" }), 400, "DIGEST_INVALID");
    await assertError(
      await fetch(withDigest(url, "sha256:1234"), { method: "PUT" }),
      400,
      "DIGEST_INVALID",
    );
    const mono = await fetch(`${server.url}/v2/repo/blobs/uploads/?digest=nope`, {
      method: "POST",
      body: text("x"),
    });
    await assertError(mono, 400, "DIGEST_INVALID");
  } finally {
    await server.close();
  }
});

Deno.test("uploads: Content-Length that differs from Content-Range answers 400 SIZE_INVALID", async () => {
  const server = await startServer();
  try {
    const url = await openSession(server, "repo");
    const response = await fetch(url, {
      method: "PATCH",
      headers: { "Content-Range": "0-9" },
      body: text("abc"),
    });
    await assertError(response, 400, "SIZE_INVALID");
    const status = await fetch(url);
    await expectStatus(status, 204);
    assert.equal(status.headers.get("Range"), "0-0");
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a body shorter than its Content-Length answers 400 SIZE_INVALID", async () => {
  const server = await startServer();
  try {
    const url = new URL(await openSession(server, "repo"));
    await expectStatus(await patch(url.href, text("12345")), 202);
    const { raw } = await rawRequest(server.url, "PATCH", url.pathname, {
      headers: { "Content-Length": "100" },
      body: "a".repeat(50),
      closeWrite: true,
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.match(raw, /"code":"SIZE_INVALID"/);
    // The partial chunk was not kept: the session is still at 5 bytes.
    const status = await fetch(url);
    await expectStatus(status, 204);
    assert.equal(status.headers.get("Range"), "0-4");
  } finally {
    await server.close();
  }
});

Deno.test("uploads: sha512 digests work for monolithic and chunked uploads", async () => {
  const server = await startServer();
  try {
    const bytes = randomBytes(70_000, 9);
    const digest = await pushBlob(server.url, "repo", bytes, "sha512");
    assert.match(digest, /^sha512:[0-9a-f]{128}$/);
    const get = await fetch(`${server.url}/v2/repo/blobs/${digest}`);
    assert.equal(get.headers.get("Docker-Content-Digest"), digest);
    assert.deepEqual(await bytesOf(get), bytes);

    const other = randomBytes(40_000, 10);
    const otherDigest = digestOf(other, "sha512");
    const url = await openSession(server, "repo");
    await expectStatus(await patch(url, other.slice(0, 10_000)), 202);
    await expectStatus(await patch(url, other.slice(10_000)), 202);
    await expectStatus(await fetch(withDigest(url, otherDigest), { method: "PUT" }), 201);
    assert.deepEqual(
      await bytesOf(await fetch(`${server.url}/v2/repo/blobs/${otherDigest}`)),
      other,
    );
    assert.ok((await blobFiles(server.dataDir)).some((f) => f.startsWith("sha512/")));
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a chunked Transfer-Encoding body (no Content-Length) is accepted", async () => {
  const server = await startServer();
  try {
    const bytes = randomBytes(200_000, 11);
    const digest = digestOf(bytes);
    const url = await openSession(server, "repo");
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.byteLength; i += 30_000) {
          controller.enqueue(bytes.slice(i, i + 30_000));
        }
        controller.close();
      },
    });
    const response = await fetch(url, { method: "PATCH", body });
    await expectStatus(response, 202);
    assert.equal(response.headers.get("Range"), "0-199999");
    await expectStatus(await fetch(withDigest(url, digest), { method: "PUT" }), 201);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: pushing a blob that already exists succeeds and keeps one copy", async () => {
  const server = await startServer();
  try {
    const bytes = text("dedupe me");
    const digest = await pushBlob(server.url, "a", bytes);
    assert.equal(await pushBlob(server.url, "b", bytes), digest);
    assert.equal(await pushBlob(server.url, "a", bytes), digest);
    assert.equal((await blobFiles(server.dataDir)).length, 1);
    await expectStatus(await fetch(`${server.url}/v2/b/blobs/${digest}`), 200);
  } finally {
    await server.close();
  }
});

// ---- cross-repository mounts ----------------------------------------------------------------

Deno.test("uploads: mount with from= links the blob (201, Location, digest)", async () => {
  const server = await startServer();
  try {
    const bytes = text("shared layer");
    const digest = await pushBlob(server.url, "source/repo", bytes);
    const response = await fetch(
      `${server.url}/v2/target/repo/blobs/uploads/?mount=${digest}&from=source/repo`,
      { method: "POST" },
    );
    await expectStatus(response, 201);
    assert.equal(response.headers.get("Location"), `/v2/target/repo/blobs/${digest}`);
    assert.equal(response.headers.get("Docker-Content-Digest"), digest);
    assert.deepEqual(
      await bytesOf(await fetch(`${server.url}/v2/target/repo/blobs/${digest}`)),
      bytes,
    );
    assert.equal((await blobFiles(server.dataDir)).length, 1);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a mount whose blob is missing falls back to a 202 session", async () => {
  const server = await startServer();
  try {
    const digest = await pushBlob(server.url, "source", text("only in source"));
    const absent = digestOf(text("nowhere"));
    for (const query of [`mount=${absent}&from=source`, `mount=${digest}&from=elsewhere`]) {
      const response = await fetch(`${server.url}/v2/target/blobs/uploads/?${query}`, {
        method: "POST",
      });
      await expectStatus(response, 202);
      assert.ok(response.headers.get("Docker-Upload-UUID"), query);
      assert.match(response.headers.get("Location") ?? "", /^\/v2\/target\/blobs\/uploads\//);
      assert.equal(response.headers.get("Range"), "0-0");
    }
    await assertError(await fetch(`${server.url}/v2/target/blobs/${digest}`), 404, "BLOB_UNKNOWN");
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a mount without from= links a blob the store already has", async () => {
  const server = await startServer();
  try {
    const digest = await pushBlob(server.url, "somewhere", text("known blob"));
    const response = await fetch(`${server.url}/v2/target/blobs/uploads/?mount=${digest}`, {
      method: "POST",
    });
    await expectStatus(response, 201);
    assert.equal(response.headers.get("Docker-Content-Digest"), digest);
    await expectStatus(await fetch(`${server.url}/v2/target/blobs/${digest}`), 200);
    const absent = digestOf(text("unknown blob"));
    const fallback = await fetch(`${server.url}/v2/target/blobs/uploads/?mount=${absent}`, {
      method: "POST",
    });
    await expectStatus(fallback, 202);
  } finally {
    await server.close();
  }
});

Deno.test("uploads: a mount with a malformed digest or from= answers 400", async () => {
  const server = await startServer();
  try {
    const digest = await pushBlob(server.url, "source", text("x"));
    await assertError(
      await fetch(`${server.url}/v2/t/blobs/uploads/?mount=sha256:zz&from=source`, {
        method: "POST",
      }),
      400,
      "DIGEST_INVALID",
    );
    await assertError(
      await fetch(`${server.url}/v2/t/blobs/uploads/?mount=${digest}&from=../source`, {
        method: "POST",
      }),
      400,
      "NAME_INVALID",
    );
  } finally {
    await server.close();
  }
});
