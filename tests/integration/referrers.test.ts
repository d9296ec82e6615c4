/**
 * The OCI 1.1 referrers API over HTTP: index of referrers, artifactType, annotations, filtering,
 * subjects pushed later or never, and the index kept in step with deletes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer, type TestServer } from "../helpers/server.ts";
import {
  assertError,
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

const EMPTY = text("{}");
const SIGNATURE = "application/vnd.example.signature.v1";
const SBOM = "application/spdx+json";

async function withServer(body: (server: TestServer) => Promise<void>): Promise<void> {
  const server = await startServer();
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

/** Push an artifact manifest referring to `subject`; returns its digest and size. */
async function pushReferrer(
  server: TestServer,
  name: string,
  subject: { digest: string; size: number },
  options: { artifactType?: string; configType?: string; note: string },
): Promise<{ digest: string; size: number; response: Response }> {
  await pushBlob(server.url, name, EMPTY);
  const payload = text(`payload ${options.note}`);
  await pushBlob(server.url, name, payload);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    ...(options.artifactType && { artifactType: options.artifactType }),
    config: descriptor(options.configType ?? MEDIA.ociEmpty, EMPTY),
    layers: [descriptor("application/octet-stream", payload)],
    subject: { mediaType: MEDIA.ociManifest, ...subject },
    annotations: { "org.example.note": options.note },
  };
  const bytes = text(JSON.stringify(manifest));
  const digest = digestOf(bytes);
  const response = await putManifest(server.url, name, digest, bytes, MEDIA.ociManifest);
  return { digest, size: bytes.byteLength, response };
}

async function referrers(server: TestServer, name: string, digest: string, query = "") {
  const response = await fetch(`${server.url}/v2/${name}/referrers/${digest}${query}`);
  const body = await response.json();
  return { response, body };
}

Deno.test("referrers: lists every manifest whose subject is the digest, with artifactType and annotations", async () => {
  await withServer(async (server) => {
    const image = await pushImage(server.url, "app", "latest");
    const subject = { digest: image.digest, size: image.bytes.byteLength };
    const sig = await pushReferrer(server, "app", subject, {
      artifactType: SIGNATURE,
      note: "sig",
    });
    assert.equal(sig.response.status, 201);
    assert.equal(sig.response.headers.get("OCI-Subject"), image.digest);
    await sig.response.body?.cancel();
    const sbom = await pushReferrer(server, "app", subject, { configType: SBOM, note: "sbom" });
    await expectStatus(sbom.response, 201);

    const { response, body } = await referrers(server, "app", image.digest);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("Content-Type"), MEDIA.ociIndex);
    assert.equal(response.headers.get("OCI-Filters-Applied"), null);
    const expected = [
      {
        mediaType: MEDIA.ociManifest,
        digest: sig.digest,
        size: sig.size,
        artifactType: SIGNATURE,
        annotations: { "org.example.note": "sig" },
      },
      {
        mediaType: MEDIA.ociManifest,
        digest: sbom.digest,
        size: sbom.size,
        artifactType: SBOM,
        annotations: { "org.example.note": "sbom" },
      },
    ].sort((a, b) => a.digest < b.digest ? -1 : 1);
    assert.deepEqual(body, { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: expected });
  });
});

Deno.test("referrers: artifactType filters and sets OCI-Filters-Applied", async () => {
  await withServer(async (server) => {
    const image = await pushImage(server.url, "app", "latest");
    const subject = { digest: image.digest, size: image.bytes.byteLength };
    const sig = await pushReferrer(server, "app", subject, { artifactType: SIGNATURE, note: "1" });
    await expectStatus(sig.response, 201);
    await expectStatus(
      (await pushReferrer(server, "app", subject, { artifactType: SBOM, note: "2" })).response,
      201,
    );
    const query = `?artifactType=${encodeURIComponent(SIGNATURE)}`;
    const { response, body } = await referrers(server, "app", image.digest, query);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("OCI-Filters-Applied"), "artifactType");
    assert.deepEqual(body.manifests.map((m: { digest: string }) => m.digest), [sig.digest]);
    const none = await referrers(server, "app", image.digest, "?artifactType=text/nothing");
    assert.equal(none.response.headers.get("OCI-Filters-Applied"), "artifactType");
    assert.deepEqual(none.body.manifests, []);
  });
});

Deno.test("referrers: no referrers, or an unknown repository, gives 200 with an empty index", async () => {
  await withServer(async (server) => {
    const image = await pushImage(server.url, "app", "latest");
    for (const name of ["app", "nobody"]) {
      const { response, body } = await referrers(server, name, image.digest);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("Content-Type"), MEDIA.ociIndex);
      assert.deepEqual(body, { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [] });
    }
  });
});

Deno.test("referrers: a subject pushed later, or never, still lists its referrers", async () => {
  await withServer(async (server) => {
    const image = await pushImageBlobs(server.url, "app");
    const subject = { digest: image.digest, size: image.bytes.byteLength };
    const sig = await pushReferrer(server, "app", subject, { artifactType: SIGNATURE, note: "s" });
    assert.equal(sig.response.headers.get("OCI-Subject"), image.digest);
    await expectStatus(sig.response, 201);
    assert.deepEqual(
      (await referrers(server, "app", image.digest)).body.manifests.map((m: { digest: string }) =>
        m.digest
      ),
      [sig.digest],
    );
    await expectStatus(
      await putManifest(server.url, "app", image.digest, image.bytes, MEDIA.ociManifest),
      201,
    );
    assert.equal((await referrers(server, "app", image.digest)).body.manifests.length, 1);
  });
});

Deno.test("referrers: deleting a referrer removes it from the index; other repositories are separate", async () => {
  await withServer(async (server) => {
    const image = await pushImageBlobs(server.url, "app");
    const subject = { digest: image.digest, size: image.bytes.byteLength };
    const one = await pushReferrer(server, "app", subject, { artifactType: SIGNATURE, note: "1" });
    await expectStatus(one.response, 201);
    const two = await pushReferrer(server, "app", subject, { artifactType: SIGNATURE, note: "2" });
    await expectStatus(two.response, 201);
    await pushImageBlobs(server.url, "other");
    const three = await pushReferrer(server, "other", subject, { artifactType: SBOM, note: "3" });
    await expectStatus(three.response, 201);
    await expectStatus(
      await fetch(`${server.url}/v2/app/manifests/${one.digest}`, { method: "DELETE" }),
      202,
    );
    const listed = (await referrers(server, "app", image.digest)).body.manifests;
    assert.deepEqual(listed.map((m: { digest: string }) => m.digest), [two.digest]);
    const other = (await referrers(server, "other", image.digest)).body.manifests;
    assert.deepEqual(other.map((m: { digest: string }) => m.digest), [three.digest]);
  });
});

Deno.test("referrers: an index with a subject is listed with its own artifactType", async () => {
  await withServer(async (server) => {
    const image = await pushImage(server.url, "app", "latest");
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      artifactType: "application/vnd.example.bundle",
      manifests: [{ mediaType: MEDIA.ociManifest, digest: image.digest, size: image.bytes.length }],
      subject: { mediaType: MEDIA.ociManifest, digest: image.digest, size: image.bytes.length },
    };
    const bytes = text(JSON.stringify(index));
    const response = await putManifest(server.url, "app", "bundle", bytes, MEDIA.ociIndex);
    assert.equal(response.headers.get("OCI-Subject"), image.digest);
    await expectStatus(response, 201);
    const { body } = await referrers(server, "app", image.digest);
    assert.deepEqual(body.manifests, [{
      mediaType: MEDIA.ociIndex,
      digest: digestOf(bytes),
      size: bytes.byteLength,
      artifactType: "application/vnd.example.bundle",
    }]);
  });
});

Deno.test("referrers: an invalid digest is 400 DIGEST_INVALID", async () => {
  await withServer(async (server) => {
    await assertError(
      await fetch(`${server.url}/v2/app/referrers/sha256:nothex`),
      400,
      "DIGEST_INVALID",
    );
  });
});
