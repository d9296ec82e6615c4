/**
 * Manifests over HTTP: every accepted kind, the validation errors, size limit, exact bytes back.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer, type TestServer } from "../helpers/server.ts";
import {
  assertError,
  bytesOf,
  descriptor,
  digestOf,
  expectStatus,
  MEDIA,
  pushBlob,
  pushImage,
  pushImageBlobs,
  putManifest,
  text,
} from "../helpers/registry.ts";

/** GET (and HEAD) a manifest and check its headers and exact bytes. */
async function assertServed(
  server: TestServer,
  name: string,
  reference: string,
  bytes: Uint8Array,
  mediaType: string,
): Promise<void> {
  const digest = digestOf(bytes);
  const url = `${server.url}/v2/${name}/manifests/${reference}`;
  for (const method of ["GET", "HEAD"]) {
    const response = await fetch(url, { method, headers: { Accept: mediaType } });
    assert.equal(response.status, 200, `${method} ${reference}`);
    assert.equal(response.headers.get("Content-Type"), mediaType, method);
    assert.equal(response.headers.get("Content-Length"), String(bytes.byteLength), method);
    assert.equal(response.headers.get("Docker-Content-Digest"), digest, method);
    const body = await bytesOf(response);
    assert.deepEqual(body, method === "GET" ? bytes : new Uint8Array(), method);
  }
}

Deno.test("manifests: an OCI image manifest is stored as pushed and served by tag and digest", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "library/app");
    // Odd whitespace and key order: the registry must keep these exact bytes.
    const bytes = text(
      `{\n  "schemaVersion": 2,\n\t"mediaType": "${MEDIA.ociManifest}",  "config": ${
        JSON.stringify(image.manifest.config)
      },\n "layers": ${JSON.stringify(image.manifest.layers)}, "annotations": {"a": "b"}}\n`,
    );
    const digest = digestOf(bytes);
    const response = await putManifest(server.url, "library/app", "v1", bytes, MEDIA.ociManifest);
    await expectStatus(response, 201);
    assert.equal(response.headers.get("Location"), `/v2/library/app/manifests/${digest}`);
    assert.equal(response.headers.get("Docker-Content-Digest"), digest);
    await assertServed(server, "library/app", "v1", bytes, MEDIA.ociManifest);
    await assertServed(server, "library/app", digest, bytes, MEDIA.ociManifest);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: a manifest without a mediaType field is served with its Content-Type", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const { mediaType: _, ...withoutField } = image.manifest;
    const bytes = text(JSON.stringify(withoutField));
    await expectStatus(await putManifest(server.url, "repo", "t", bytes, MEDIA.ociManifest), 201);
    await assertServed(server, "repo", "t", bytes, MEDIA.ociManifest);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: an OCI index over pushed manifests is accepted and served", async () => {
  const server = await startServer();
  try {
    const children = [];
    for (const seed of [1, 2]) {
      const image = await pushImageBlobs(server.url, "multi", { seed });
      await expectStatus(
        await putManifest(server.url, "multi", image.digest, image.bytes, MEDIA.ociManifest),
        201,
      );
      children.push(descriptor(MEDIA.ociManifest, image.bytes, {
        platform: { architecture: seed === 1 ? "amd64" : "arm64", os: "linux" },
      }));
    }
    const index = text(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: children,
    }));
    await expectStatus(
      await putManifest(server.url, "multi", "latest", index, MEDIA.ociIndex),
      201,
    );
    await assertServed(server, "multi", "latest", index, MEDIA.ociIndex);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: a Docker schema 2 manifest and manifest list are accepted", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "docker", { docker: true });
    await expectStatus(
      await putManifest(server.url, "docker", "v2", image.bytes, MEDIA.dockerManifest),
      201,
    );
    await assertServed(server, "docker", "v2", image.bytes, MEDIA.dockerManifest);
    const list = text(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.dockerList,
      manifests: [
        descriptor(MEDIA.dockerManifest, image.bytes, {
          platform: { architecture: "amd64", os: "linux" },
        }),
      ],
    }));
    await expectStatus(
      await putManifest(server.url, "docker", "list", list, MEDIA.dockerList),
      201,
    );
    await assertServed(server, "docker", "list", list, MEDIA.dockerList);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: an artifact with artifactType and the empty config is accepted", async () => {
  const server = await startServer();
  try {
    const empty = text("{}");
    await pushBlob(server.url, "art", empty);
    const payload = text("signature payload");
    await pushBlob(server.url, "art", payload);
    const artifact = text(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      artifactType: "application/vnd.example.signature.v1",
      config: descriptor(MEDIA.ociEmpty, empty),
      layers: [descriptor("application/vnd.example.signature.v1+octet", payload)],
      annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
    }));
    await expectStatus(
      await putManifest(server.url, "art", "sig", artifact, MEDIA.ociManifest),
      201,
    );
    await assertServed(server, "art", "sig", artifact, MEDIA.ociManifest);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: Docker schema 1 is refused with MANIFEST_INVALID saying so", async () => {
  const server = await startServer();
  try {
    const schema1 = text(JSON.stringify({
      schemaVersion: 1,
      name: "repo",
      tag: "v1",
      architecture: "amd64",
      fsLayers: [],
      history: [],
    }));
    for (
      const type of [
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/json",
      ]
    ) {
      const error = await assertError(
        await putManifest(server.url, "repo", "v1", schema1, type),
        400,
        "MANIFEST_INVALID",
      );
      assert.match(error.message, /schema 1/i, type);
    }
  } finally {
    await server.close();
  }
});

Deno.test("manifests: a mediaType field that contradicts Content-Type is MANIFEST_INVALID", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const error = await assertError(
      await putManifest(server.url, "repo", "v1", image.bytes, MEDIA.dockerManifest),
      400,
      "MANIFEST_INVALID",
    );
    assert.match(error.message, /does not match/);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: malformed documents are MANIFEST_INVALID", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const bad: unknown[] = [
      "not json",
      "[]",
      { schemaVersion: 3, config: image.manifest.config, layers: [] },
      { schemaVersion: 2, mediaType: MEDIA.ociManifest, layers: [] },
      { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: image.manifest.config },
      {
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: "sha256:xyz", size: 1 },
        layers: [],
      },
      {
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { ...(image.manifest.config as object), size: -1 },
        layers: [],
      },
      { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: "none" },
      { schemaVersion: 2, mediaType: "application/vnd.example.unknown", layers: [] },
    ];
    for (const doc of bad) {
      const bytes = typeof doc === "string" ? text(doc) : text(JSON.stringify(doc));
      await assertError(
        await putManifest(server.url, "repo", "bad", bytes, MEDIA.ociManifest),
        400,
        "MANIFEST_INVALID",
      ).catch((error) => {
        throw new Error(`${JSON.stringify(doc)}: ${error.message}`);
      });
    }
    await assertError(await fetch(`${server.url}/v2/repo/manifests/bad`), 404, "MANIFEST_UNKNOWN");
  } finally {
    await server.close();
  }
});

Deno.test("manifests: a missing config or layer answers 400 MANIFEST_BLOB_UNKNOWN", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const missing = descriptor(MEDIA.ociLayer, text("never pushed"));
    for (
      const doc of [
        { ...image.manifest, layers: [...(image.manifest.layers as unknown[]), missing] },
        { ...image.manifest, config: { ...missing, mediaType: MEDIA.ociConfig } },
      ]
    ) {
      const error = await assertError(
        await putManifest(server.url, "repo", "v1", doc, MEDIA.ociManifest),
        400,
        "MANIFEST_BLOB_UNKNOWN",
      );
      assert.match(JSON.stringify(error.detail), new RegExp(missing.digest));
    }
    // Blobs of another repository do not count.
    await assertError(
      await putManifest(server.url, "other", "v1", image.bytes, MEDIA.ociManifest),
      400,
      "MANIFEST_BLOB_UNKNOWN",
    );
    await assertError(await fetch(`${server.url}/v2/repo/manifests/v1`), 404, "MANIFEST_UNKNOWN");
  } finally {
    await server.close();
  }
});

Deno.test("manifests: an index listing a missing manifest answers 400 MANIFEST_UNKNOWN", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [descriptor(MEDIA.ociManifest, image.bytes)],
    };
    await assertError(
      await putManifest(server.url, "repo", "idx", index, MEDIA.ociIndex),
      400,
      "MANIFEST_UNKNOWN",
    );
  } finally {
    await server.close();
  }
});

Deno.test("manifests: with sparseIndexes an index may list manifests not pushed", async () => {
  const server = await startServer({ config: { sparseIndexes: true } });
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const index = text(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [descriptor(MEDIA.ociManifest, image.bytes)],
    }));
    await expectStatus(await putManifest(server.url, "repo", "idx", index, MEDIA.ociIndex), 201);
    await assertServed(server, "repo", "idx", index, MEDIA.ociIndex);
    // Blobs are still checked.
    const missing = { ...image.manifest, layers: [descriptor(MEDIA.ociLayer, text("absent"))] };
    await assertError(
      await putManifest(server.url, "repo", "v1", missing, MEDIA.ociManifest),
      400,
      "MANIFEST_BLOB_UNKNOWN",
    );
  } finally {
    await server.close();
  }
});

Deno.test("manifests: a digest reference that differs from the body answers 400 DIGEST_INVALID", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const wrong = digestOf(text("something else"));
    await assertError(
      await putManifest(server.url, "repo", wrong, image.bytes, MEDIA.ociManifest),
      400,
      "DIGEST_INVALID",
    );
    await assertError(
      await fetch(`${server.url}/v2/repo/manifests/${wrong}`),
      404,
      "MANIFEST_UNKNOWN",
    );
    await assertError(
      await fetch(`${server.url}/v2/repo/manifests/${image.digest}`),
      404,
      "MANIFEST_UNKNOWN",
    );
    // The right digest works.
    await expectStatus(
      await putManifest(server.url, "repo", image.digest, image.bytes, MEDIA.ociManifest),
      201,
    );
  } finally {
    await server.close();
  }
});

Deno.test("manifests: a manifest over the configured limit answers 413", async () => {
  const server = await startServer({ config: { maxManifestBytes: 2048 } });
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const big = { ...image.manifest, annotations: { pad: "x".repeat(3000) } };
    const error = await assertError(
      await putManifest(server.url, "repo", "big", big, MEDIA.ociManifest),
      413,
      "MANIFEST_INVALID",
    );
    assert.match(error.message, /2048/);
    const small = { ...image.manifest, annotations: { pad: "x".repeat(1000) } };
    await expectStatus(
      await putManifest(server.url, "repo", "small", small, MEDIA.ociManifest),
      201,
    );
  } finally {
    await server.close();
  }
});

Deno.test("manifests: the default limit is 4 MiB", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const over = { ...image.manifest, annotations: { pad: "x".repeat(4 * 1024 * 1024) } };
    await assertError(
      await putManifest(server.url, "repo", "big", over, MEDIA.ociManifest),
      413,
      "MANIFEST_INVALID",
    );
  } finally {
    await server.close();
  }
});

Deno.test("manifests: sha512 manifests are stored and served by their sha512 digest", async () => {
  const server = await startServer();
  try {
    const config = text(JSON.stringify({ architecture: "amd64", os: "linux" }));
    const layer = text("sha512 layer");
    const configDigest = await pushBlob(server.url, "repo", config, "sha512");
    const layerDigest = await pushBlob(server.url, "repo", layer, "sha512");
    const bytes = text(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: MEDIA.ociLayer, digest: layerDigest, size: layer.byteLength }],
    }));
    const digest = digestOf(bytes, "sha512");
    const response = await putManifest(server.url, "repo", digest, bytes, MEDIA.ociManifest);
    await expectStatus(response, 201);
    assert.equal(response.headers.get("Docker-Content-Digest"), digest);
    const get = await fetch(`${server.url}/v2/repo/manifests/${digest}`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get("Docker-Content-Digest"), digest);
    assert.deepEqual(await bytesOf(get), bytes);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: unknown tags and digests answer 404 MANIFEST_UNKNOWN", async () => {
  const server = await startServer();
  try {
    const image = await pushImage(server.url, "repo", "v1");
    await assertError(await fetch(`${server.url}/v2/repo/manifests/v2`), 404, "MANIFEST_UNKNOWN");
    await assertError(await fetch(`${server.url}/v2/other/manifests/v1`), 404, "MANIFEST_UNKNOWN");
    // A manifest of another repository is not served here, even by digest.
    await assertError(
      await fetch(`${server.url}/v2/other/manifests/${image.digest}`),
      404,
      "MANIFEST_UNKNOWN",
    );
    const head = await fetch(`${server.url}/v2/repo/manifests/v2`, { method: "HEAD" });
    await expectStatus(head, 404);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: pushing to an existing tag moves it", async () => {
  const server = await startServer();
  try {
    const first = await pushImageBlobs(server.url, "repo", { seed: 1 });
    const second = await pushImageBlobs(server.url, "repo", { seed: 2 });
    await expectStatus(
      await putManifest(server.url, "repo", "t", first.bytes, MEDIA.ociManifest),
      201,
    );
    await expectStatus(
      await putManifest(server.url, "repo", "t", second.bytes, MEDIA.ociManifest),
      201,
    );
    await assertServed(server, "repo", "t", second.bytes, MEDIA.ociManifest);
    await assertServed(server, "repo", first.digest, first.bytes, MEDIA.ociManifest);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: If-None-Match with the digest answers 304", async () => {
  const server = await startServer();
  try {
    const image = await pushImage(server.url, "repo", "t");
    const response = await fetch(`${server.url}/v2/repo/manifests/t`, {
      headers: { "If-None-Match": `"${image.digest}"` },
    });
    await expectStatus(response, 304);
  } finally {
    await server.close();
  }
});

Deno.test("manifests: DELETE by digest (202) removes it and its tags; by tag removes the tag", async () => {
  const server = await startServer();
  try {
    const image = await pushImage(server.url, "repo", "a");
    await expectStatus(
      await putManifest(server.url, "repo", "b", image.bytes, MEDIA.ociManifest),
      201,
    );
    await expectStatus(await fetch(`${server.url}/v2/repo/manifests/a`, { method: "DELETE" }), 202);
    await assertError(await fetch(`${server.url}/v2/repo/manifests/a`), 404, "MANIFEST_UNKNOWN");
    await expectStatus(await fetch(`${server.url}/v2/repo/manifests/b`), 200);
    const url = `${server.url}/v2/repo/manifests/${image.digest}`;
    await expectStatus(await fetch(url, { method: "DELETE" }), 202);
    await assertError(await fetch(url), 404, "MANIFEST_UNKNOWN");
    await assertError(await fetch(`${server.url}/v2/repo/manifests/b`), 404, "MANIFEST_UNKNOWN");
    await assertError(await fetch(url, { method: "DELETE" }), 404, "MANIFEST_UNKNOWN");
  } finally {
    await server.close();
  }
});
