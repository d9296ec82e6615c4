/**
 * Upload sessions across a server restart (same data directory, fresh process state), and digest
 * state after a failed chunk.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.ts";
import {
  assertError,
  blobFiles,
  bytesOf,
  digestOf,
  expectStatus,
  MEDIA,
  pushImageBlobs,
  putManifest,
  randomBytes,
  rawRequest,
} from "../helpers/registry.ts";

Deno.test("restart: an upload session survives a restart and closes with a verified digest", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-restart-" });
  try {
    const bytes = randomBytes(2_500_000, 21);
    const digest = digestOf(bytes);
    const first = await startServer({ dataDir });
    let location: string;
    try {
      const open = await fetch(`${first.url}/v2/repo/blobs/uploads/`, { method: "POST" });
      await expectStatus(open, 202);
      location = open.headers.get("Location")!;
      const patch = await fetch(`${first.url}${location}`, {
        method: "PATCH",
        body: bytes.slice(0, 1_000_000),
      });
      await expectStatus(patch, 202);
    } finally {
      await first.close();
    }
    const second = await startServer({ dataDir });
    try {
      const status = await fetch(`${second.url}${location}`);
      await expectStatus(status, 204);
      assert.equal(status.headers.get("Range"), "0-999999");
      const patch = await fetch(`${second.url}${location}`, {
        method: "PATCH",
        headers: { "Content-Range": "1000000-2499999" },
        body: bytes.slice(1_000_000),
      });
      await expectStatus(patch, 202);
      // A wrong digest is still caught after the restart (the hash is rebuilt from disk).
      const wrong = digestOf(bytes.slice(1));
      await assertError(
        await fetch(`${second.url}${location}?digest=${wrong}`, { method: "PUT" }),
        400,
        "DIGEST_INVALID",
      );
      assert.deepEqual(await blobFiles(dataDir), []);
    } finally {
      await second.close();
    }
    // Again, this time closing with the right digest.
    const third = await startServer({ dataDir });
    try {
      const open = await fetch(`${third.url}/v2/repo/blobs/uploads/`, { method: "POST" });
      await expectStatus(open, 202);
      location = open.headers.get("Location")!;
      await expectStatus(
        await fetch(`${third.url}${location}`, { method: "PATCH", body: bytes.slice(0, 5) }),
        202,
      );
    } finally {
      await third.close();
    }
    const fourth = await startServer({ dataDir });
    try {
      const put = await fetch(`${fourth.url}${location}?digest=${digest}`, {
        method: "PUT",
        headers: { "Content-Range": `5-${bytes.byteLength - 1}` },
        body: bytes.slice(5),
      });
      await expectStatus(put, 201);
      const get = await fetch(`${fourth.url}/v2/repo/blobs/${digest}`);
      assert.equal(digestOf(await bytesOf(get)), digest);
    } finally {
      await fourth.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("restart: a failed chunk leaves the session's digest state correct", async () => {
  const server = await startServer();
  try {
    const bytes = randomBytes(300_000, 22);
    const open = await fetch(`${server.url}/v2/repo/blobs/uploads/`, { method: "POST" });
    await expectStatus(open, 202);
    const location = open.headers.get("Location")!;
    await expectStatus(
      await fetch(`${server.url}${location}`, { method: "PATCH", body: bytes.slice(0, 100_000) }),
      202,
    );
    const failed = await rawRequest(server.url, "PATCH", location, {
      headers: { "Content-Length": "100000" },
      body: "x".repeat(60_000),
      closeWrite: true,
    });
    assert.equal(failed.status, 400);
    await expectStatus(
      await fetch(`${server.url}${location}`, {
        method: "PATCH",
        headers: { "Content-Range": "100000-299999" },
        body: bytes.slice(100_000),
      }),
      202,
    );
    await expectStatus(
      await fetch(`${server.url}${location}?digest=${digestOf(bytes)}`, { method: "PUT" }),
      201,
    );
  } finally {
    await server.close();
  }
});

Deno.test("restart: pushed images are served by a new server on the same data directory", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-restart-" });
  try {
    const first = await startServer({ dataDir });
    let image;
    try {
      image = await pushImageBlobs(first.url, "repo");
      await expectStatus(
        await putManifest(first.url, "repo", "v1", image.bytes, MEDIA.ociManifest),
        201,
      );
    } finally {
      await first.close();
    }
    const second = await startServer({ dataDir });
    try {
      const response = await fetch(`${second.url}/v2/repo/manifests/v1`);
      assert.equal(response.headers.get("Content-Type"), MEDIA.ociManifest);
      assert.deepEqual(await bytesOf(response), image.bytes);
      const layer = await fetch(`${second.url}/v2/repo/blobs/${digestOf(image.layer)}`);
      assert.deepEqual(await bytesOf(layer), image.layer);
    } finally {
      await second.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("restart: manifests keep their Content-Type across a restart, with or without a mediaType field", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-restart-" });
  try {
    const first = await startServer({ dataDir });
    const pushed: [string, string][] = [];
    try {
      const oci = await pushImageBlobs(first.url, "repo", { seed: 1 });
      const { mediaType: _, ...bare } = oci.manifest;
      const docker = await pushImageBlobs(first.url, "repo", { seed: 2, docker: true });
      const cases: [string, unknown, string][] = [
        ["bare", bare, MEDIA.ociManifest],
        ["oci", oci.manifest, MEDIA.ociManifest],
        ["docker", docker.manifest, MEDIA.dockerManifest],
      ];
      for (const [tag, doc, type] of cases) {
        const put = await putManifest(first.url, "repo", tag, doc, type);
        await expectStatus(put, 201);
        pushed.push([tag, type]);
      }
      // A Docker type without the field would only be known from the push: refused.
      const refused = await putManifest(first.url, "repo", "x", bare, MEDIA.dockerManifest);
      await expectStatus(refused, 400);
      for (const [tag, type] of pushed) {
        const get = await fetch(`${first.url}/v2/repo/manifests/${tag}`);
        await expectStatus(get, 200);
        assert.equal(get.headers.get("Content-Type"), type, tag);
      }
    } finally {
      await first.close();
    }
    const second = await startServer({ dataDir });
    try {
      for (const [tag, type] of pushed) {
        const get = await fetch(`${second.url}/v2/repo/manifests/${tag}`);
        await expectStatus(get, 200);
        assert.equal(get.headers.get("Content-Type"), type, `${tag} after the restart`);
      }
    } finally {
      await second.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
