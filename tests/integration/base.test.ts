/**
 * `GET /v2/`, the API version header on every response, unknown routes and methods.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.ts";
import {
  API_VERSION,
  assertError,
  expectStatus,
  pushBlob,
  rawRequest,
  text,
} from "../helpers/registry.ts";

Deno.test("base: GET /v2/ answers 200 with a JSON body and the API version header", async () => {
  const server = await startServer();
  try {
    const response = await fetch(`${server.url}/v2/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get(API_VERSION[0]), API_VERSION[1]);
    assert.match(response.headers.get("Content-Type") ?? "", /^application\/json/);
    assert.deepEqual(await response.json(), {});
    const head = await fetch(`${server.url}/v2/`, { method: "HEAD" });
    await expectStatus(head, 200);
  } finally {
    await server.close();
  }
});

Deno.test("base: every response carries Docker-Distribution-API-Version, errors too", async () => {
  const server = await startServer();
  try {
    const digest = await pushBlob(server.url, "repo", text("hello"));
    const requests: [string, RequestInit][] = [
      ["/v2/", {}],
      [`/v2/repo/blobs/${digest}`, {}],
      [`/v2/repo/blobs/${digest}`, { method: "HEAD" }],
      ["/v2/repo/blobs/uploads/", { method: "POST" }],
      ["/v2/repo/manifests/missing", {}],
      ["/v2/repo/manifests/missing", { method: "HEAD" }],
      ["/v2/repo/blobs/sha256:nothex", {}],
      ["/nowhere", {}],
      ["/v2/repo/tags/notaroute/x", {}],
      ["/v2/", { method: "POST" }],
    ];
    for (const [path, init] of requests) {
      const response = await fetch(`${server.url}${path}`, init);
      await response.body?.cancel();
      assert.equal(
        response.headers.get(API_VERSION[0]),
        API_VERSION[1],
        `${init.method ?? "GET"} ${path}`,
      );
    }
  } finally {
    await server.close();
  }
});

Deno.test("base: an unknown path answers 404 with an error body", async () => {
  const server = await startServer();
  try {
    await assertError(await fetch(`${server.url}/nowhere`), 404, "NAME_UNKNOWN");
    await assertError(await fetch(`${server.url}/v2/repo/nothing/here`), 404, "NAME_UNKNOWN");
  } finally {
    await server.close();
  }
});

Deno.test("base: a method a route does not take answers 405 with Allow", async () => {
  const server = await startServer();
  try {
    const response = await fetch(`${server.url}/v2/`, { method: "POST" });
    assert.equal(response.headers.get("Allow"), "GET, HEAD");
    await assertError(response, 405, "UNSUPPORTED");
  } finally {
    await server.close();
  }
});

Deno.test("base: an error answered before a large body is read still reaches the client", async () => {
  const server = await startServer();
  try {
    for (const path of ["/v2/Bad/manifests/latest", "/v2/ok/manifests/.bad", "/nowhere"]) {
      const response = await rawRequest(server.url, "PUT", path, {
        headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
        body: "x".repeat(200_000),
      });
      assert.ok(response.status === 400 || response.status === 404, `${path}: ${response.status}`);
      assert.match(
        response.raw,
        /"errors":\[\{"code":"(NAME_INVALID|MANIFEST_INVALID|NAME_UNKNOWN)"/,
      );
    }
  } finally {
    await server.close();
  }
});
