/**
 * Deletes over HTTP: manifests by digest and by tag, blobs, the delete switch, read-only mode.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type StartOptions, startServer, type TestServer } from "../helpers/server.ts";
import {
  assertError,
  expectStatus,
  MEDIA,
  pushBlob,
  pushImageBlobs,
  putManifest,
  text,
} from "../helpers/registry.ts";

async function withServer(
  body: (server: TestServer) => Promise<void>,
  options: StartOptions = {},
): Promise<void> {
  const server = await startServer(options);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

async function pushTagged(server: TestServer, name: string, tags: string[], seed = 1) {
  const image = await pushImageBlobs(server.url, name, { seed });
  for (const tag of tags) {
    await expectStatus(
      await putManifest(server.url, name, tag, image.bytes, MEDIA.ociManifest),
      201,
    );
  }
  return image;
}

const del = (url: string) => fetch(url, { method: "DELETE" });

Deno.test("deletes: a manifest by digest answers 202, then 404, and its tags go with it", async () => {
  await withServer(async (server) => {
    const image = await pushTagged(server, "app", ["latest", "v1"]);
    const other = await pushTagged(server, "app", ["other"], 2);
    const response = await del(`${server.url}/v2/app/manifests/${image.digest}`);
    await expectStatus(response, 202);
    await assertError(
      await fetch(`${server.url}/v2/app/manifests/${image.digest}`),
      404,
      "MANIFEST_UNKNOWN",
    );
    await assertError(
      await fetch(`${server.url}/v2/app/manifests/latest`),
      404,
      "MANIFEST_UNKNOWN",
    );
    await assertError(await fetch(`${server.url}/v2/app/manifests/v1`), 404, "MANIFEST_UNKNOWN");
    const tags = await (await fetch(`${server.url}/v2/app/tags/list`)).json();
    assert.deepEqual(tags, { name: "app", tags: ["other"] });
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/${other.digest}`), 200);
    await assertError(
      await del(`${server.url}/v2/app/manifests/${image.digest}`),
      404,
      "MANIFEST_UNKNOWN",
    );
  });
});

Deno.test("deletes: a manifest by tag answers 202 and removes only that tag", async () => {
  await withServer(async (server) => {
    const image = await pushTagged(server, "app", ["latest", "v1"]);
    await expectStatus(await del(`${server.url}/v2/app/manifests/latest`), 202);
    await assertError(
      await fetch(`${server.url}/v2/app/manifests/latest`),
      404,
      "MANIFEST_UNKNOWN",
    );
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/v1`), 200);
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/${image.digest}`), 200);
    await assertError(await del(`${server.url}/v2/app/manifests/latest`), 404, "MANIFEST_UNKNOWN");
  });
});

Deno.test("deletes: a blob answers 202 and is unlinked from that repository only", async () => {
  await withServer(async (server) => {
    const layer = text("shared layer bytes");
    const digest = await pushBlob(server.url, "one", layer);
    await pushBlob(server.url, "two", layer);
    await expectStatus(await del(`${server.url}/v2/one/blobs/${digest}`), 202);
    await expectStatus(
      await fetch(`${server.url}/v2/one/blobs/${digest}`, { method: "HEAD" }),
      404,
    );
    await assertError(await fetch(`${server.url}/v2/one/blobs/${digest}`), 404, "BLOB_UNKNOWN");
    const kept = await fetch(`${server.url}/v2/two/blobs/${digest}`);
    assert.deepEqual(new Uint8Array(await kept.arrayBuffer()), layer);
    await assertError(await del(`${server.url}/v2/one/blobs/${digest}`), 404, "BLOB_UNKNOWN");
  });
});

Deno.test("deletes: an unknown manifest or invalid reference is refused with 4xx", async () => {
  await withServer(async (server) => {
    await pushTagged(server, "app", ["latest"]);
    await assertError(await del(`${server.url}/v2/app/manifests/nope`), 404, "MANIFEST_UNKNOWN");
    await assertError(
      await del(`${server.url}/v2/app/manifests/sha256:${"0".repeat(64)}`),
      404,
      "MANIFEST_UNKNOWN",
    );
    await assertError(await del(`${server.url}/v2/app/manifests/sha256:zz`), 400, "DIGEST_INVALID");
    await assertError(await del(`${server.url}/v2/app/blobs/sha256:zz`), 400, "DIGEST_INVALID");
  });
});

Deno.test("deletes: with deletes disabled every DELETE is 405 UNSUPPORTED and nothing changes", async () => {
  await withServer(async (server) => {
    const image = await pushTagged(server, "app", ["latest"]);
    const layer = image.manifest.layers as { digest: string }[];
    await assertError(await del(`${server.url}/v2/app/manifests/latest`), 405, "UNSUPPORTED");
    await assertError(
      await del(`${server.url}/v2/app/manifests/${image.digest}`),
      405,
      "UNSUPPORTED",
    );
    await assertError(
      await del(`${server.url}/v2/app/blobs/${layer[0]!.digest}`),
      405,
      "UNSUPPORTED",
    );
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/latest`), 200);
    await expectStatus(await fetch(`${server.url}/v2/app/blobs/${layer[0]!.digest}`), 200);
  }, { config: { deleteEnabled: false } });
});

Deno.test("deletes: read-only mode refuses every write and still serves reads", async () => {
  const writer = await startServer();
  let image: Awaited<ReturnType<typeof pushTagged>>;
  try {
    image = await pushTagged(writer, "app", ["latest"]);
  } catch (error) {
    await writer.close();
    throw error;
  }
  try {
    await withServer(async (server) => {
      const base = `${server.url}/v2/app`;
      const attempts: [string, string, BodyInit | null][] = [
        ["POST", `${base}/blobs/uploads/`, null],
        ["POST", `${base}/blobs/uploads/?digest=${image.digest}`, image.bytes],
        ["PATCH", `${base}/blobs/uploads/00000000-0000-0000-0000-000000000000`, "x"],
        [
          "PUT",
          `${base}/blobs/uploads/00000000-0000-0000-0000-000000000000?digest=${image.digest}`,
          null,
        ],
        ["DELETE", `${base}/blobs/uploads/00000000-0000-0000-0000-000000000000`, null],
        ["PUT", `${base}/manifests/other`, image.bytes],
        ["DELETE", `${base}/manifests/latest`, null],
        ["DELETE", `${base}/manifests/${image.digest}`, null],
        ["DELETE", `${base}/blobs/${image.digest}`, null],
        ["POST", `${server.url}/admin/gc`, null],
      ];
      for (const [method, url, body] of attempts) {
        const response = await fetch(url, {
          method,
          body,
          headers: { "Content-Type": MEDIA.ociManifest },
        });
        await assertError(response, 405, "UNSUPPORTED");
      }
      await expectStatus(await fetch(`${base}/manifests/latest`), 200);
      await expectStatus(await fetch(`${base}/tags/list`), 200);
      await expectStatus(await fetch(`${server.url}/v2/_catalog`), 200);
      await expectStatus(await fetch(`${base}/referrers/${image.digest}`), 200);
      assert.deepEqual((await (await fetch(`${base}/tags/list`)).json()).tags, ["latest"]);
    }, {
      dataDir: writer.dataDir,
      config: { readOnly: true, gc: { intervalMs: 0, gracePeriodMs: 0, adminEndpoint: true } },
    });
  } finally {
    await writer.close();
  }
});
