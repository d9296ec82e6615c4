/**
 * Blob GET and HEAD over HTTP: exact bytes, headers, ranges, unknown and unlinked blobs.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.ts";
import {
  assertError,
  bytesOf,
  digestOf,
  expectStatus,
  pushBlob,
  randomBytes,
  text,
} from "../helpers/registry.ts";

Deno.test("blobs: GET returns the exact bytes with Content-Length, digest and ETag", async () => {
  const server = await startServer();
  try {
    const bytes = randomBytes(3 * 1024 * 1024 + 17, 7);
    const digest = await pushBlob(server.url, "library/data", bytes);
    const response = await fetch(`${server.url}/v2/library/data/blobs/${digest}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("Content-Length"), String(bytes.byteLength));
    assert.equal(response.headers.get("Docker-Content-Digest"), digest);
    assert.equal(response.headers.get("ETag"), `"${digest}"`);
    const body = await bytesOf(response);
    assert.equal(body.byteLength, bytes.byteLength);
    assert.equal(digestOf(body), digest);
  } finally {
    await server.close();
  }
});

Deno.test("blobs: HEAD returns the headers of GET and no body", async () => {
  const server = await startServer();
  try {
    const bytes = text("head me");
    const digest = await pushBlob(server.url, "repo", bytes);
    const response = await fetch(`${server.url}/v2/repo/blobs/${digest}`, { method: "HEAD" });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("Content-Length"), String(bytes.byteLength));
    assert.equal(response.headers.get("Docker-Content-Digest"), digest);
    assert.equal(response.headers.get("ETag"), `"${digest}"`);
    assert.equal((await bytesOf(response)).byteLength, 0);
  } finally {
    await server.close();
  }
});

Deno.test("blobs: an empty blob is served with Content-Length 0", async () => {
  const server = await startServer();
  try {
    const digest = await pushBlob(server.url, "repo", new Uint8Array());
    const response = await fetch(`${server.url}/v2/repo/blobs/${digest}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("Content-Length"), "0");
    assert.equal((await bytesOf(response)).byteLength, 0);
  } finally {
    await server.close();
  }
});

Deno.test("blobs: a single Range answers 206 with Content-Range and the slice", async () => {
  const server = await startServer();
  try {
    const bytes = randomBytes(10_000, 3);
    const digest = await pushBlob(server.url, "repo", bytes);
    const cases: [string, number, number][] = [
      ["bytes=0-0", 0, 0],
      ["bytes=100-199", 100, 199],
      ["bytes=9000-", 9000, 9999],
      ["bytes=-10", 9990, 9999],
      ["bytes=9990-20000", 9990, 9999],
    ];
    for (const [range, start, end] of cases) {
      const response = await fetch(`${server.url}/v2/repo/blobs/${digest}`, {
        headers: { Range: range },
      });
      assert.equal(response.status, 206, range);
      assert.equal(response.headers.get("Content-Range"), `bytes ${start}-${end}/10000`, range);
      assert.equal(response.headers.get("Content-Length"), String(end - start + 1), range);
      assert.deepEqual(await bytesOf(response), bytes.slice(start, end + 1), range);
    }
    const head = await fetch(`${server.url}/v2/repo/blobs/${digest}`, {
      method: "HEAD",
      headers: { Range: "bytes=10-19" },
    });
    await expectStatus(head, 206);
    assert.equal(head.headers.get("Content-Range"), "bytes 10-19/10000");
  } finally {
    await server.close();
  }
});

Deno.test("blobs: an unsatisfiable Range answers 416 with Content-Range */size", async () => {
  const server = await startServer();
  try {
    const digest = await pushBlob(server.url, "repo", text("0123456789"));
    for (const range of ["bytes=10-", "bytes=100-200", "bytes=-0"]) {
      const response = await fetch(`${server.url}/v2/repo/blobs/${digest}`, {
        headers: { Range: range },
      });
      assert.equal(response.headers.get("Content-Range"), "bytes */10", range);
      await assertError(response, 416, "SIZE_INVALID");
    }
  } finally {
    await server.close();
  }
});

Deno.test("blobs: a malformed or multi-part Range is ignored (200, whole blob)", async () => {
  const server = await startServer();
  try {
    const bytes = text("0123456789");
    const digest = await pushBlob(server.url, "repo", bytes);
    for (const range of ["items=0-1", "bytes=0-1,3-4", "bytes=5-2"]) {
      const response = await fetch(`${server.url}/v2/repo/blobs/${digest}`, {
        headers: { Range: range },
      });
      assert.equal(response.status, 200, range);
      assert.deepEqual(await bytesOf(response), bytes, range);
    }
  } finally {
    await server.close();
  }
});

Deno.test("blobs: If-None-Match with the ETag answers 304", async () => {
  const server = await startServer();
  try {
    const digest = await pushBlob(server.url, "repo", text("cached"));
    const response = await fetch(`${server.url}/v2/repo/blobs/${digest}`, {
      headers: { "If-None-Match": `"${digest}"` },
    });
    await expectStatus(response, 304);
  } finally {
    await server.close();
  }
});

Deno.test("blobs: an unknown blob answers 404 BLOB_UNKNOWN (GET and HEAD)", async () => {
  const server = await startServer();
  try {
    await pushBlob(server.url, "repo", text("something"));
    const digest = digestOf(text("never pushed"));
    await assertError(await fetch(`${server.url}/v2/repo/blobs/${digest}`), 404, "BLOB_UNKNOWN");
    const head = await fetch(`${server.url}/v2/repo/blobs/${digest}`, { method: "HEAD" });
    await expectStatus(head, 404);
    assert.equal(await head.text(), "");
    const other = await fetch(`${server.url}/v2/unknown-repo/blobs/${digest}`);
    await assertError(other, 404, "BLOB_UNKNOWN");
  } finally {
    await server.close();
  }
});

Deno.test("blobs: a blob stored but not linked into this repository answers 404", async () => {
  const server = await startServer();
  try {
    const bytes = text("belongs to a");
    const digest = await pushBlob(server.url, "a", bytes);
    await expectStatus(await fetch(`${server.url}/v2/a/blobs/${digest}`), 200);
    await assertError(await fetch(`${server.url}/v2/b/blobs/${digest}`), 404, "BLOB_UNKNOWN");
    const head = await fetch(`${server.url}/v2/b/blobs/${digest}`, { method: "HEAD" });
    await expectStatus(head, 404);
    const ranged = await fetch(`${server.url}/v2/b/blobs/${digest}`, {
      headers: { Range: "bytes=0-1" },
    });
    await assertError(ranged, 404, "BLOB_UNKNOWN");
  } finally {
    await server.close();
  }
});

Deno.test("blobs: a malformed or unsupported digest answers 400 DIGEST_INVALID", async () => {
  const server = await startServer();
  try {
    const bad = [
      "sha256:abc",
      "sha256:" + "A".repeat(64),
      "md5:" + "0".repeat(32),
      "sha256:" + "0".repeat(65),
      "notadigest",
    ];
    for (const digest of bad) {
      await assertError(
        await fetch(`${server.url}/v2/repo/blobs/${digest}`),
        400,
        "DIGEST_INVALID",
      );
    }
  } finally {
    await server.close();
  }
});

Deno.test("blobs: DELETE unlinks a blob from the repository (202), then 404", async () => {
  const server = await startServer();
  try {
    const digest = await pushBlob(server.url, "repo", text("to delete"));
    const url = `${server.url}/v2/repo/blobs/${digest}`;
    await expectStatus(await fetch(url, { method: "DELETE" }), 202);
    await assertError(await fetch(url), 404, "BLOB_UNKNOWN");
    await assertError(await fetch(url, { method: "DELETE" }), 404, "BLOB_UNKNOWN");
  } finally {
    await server.close();
  }
});

Deno.test("blobs: DELETE is refused with 405 UNSUPPORTED when deletes are disabled", async () => {
  const server = await startServer({ config: { deleteEnabled: false } });
  try {
    const digest = await pushBlob(server.url, "repo", text("kept"));
    const url = `${server.url}/v2/repo/blobs/${digest}`;
    await assertError(await fetch(url, { method: "DELETE" }), 405, "UNSUPPORTED");
    await expectStatus(await fetch(url), 200);
  } finally {
    await server.close();
  }
});
