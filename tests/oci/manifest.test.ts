/**
 * Unit tests of manifest parsing and validation.
 *
 * @module
 */
import assert from "node:assert/strict";
import { OciError } from "../../src/oci/errors.ts";
import { parseManifest } from "../../src/oci/manifest.ts";
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  essence,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../../src/oci/media_types.ts";

const D1 = "sha256:" + "1".repeat(64);
const D2 = "sha256:" + "2".repeat(64);
const D3 = "sha256:" + "3".repeat(64);

function bytes(doc: unknown): Uint8Array {
  return new TextEncoder().encode(typeof doc === "string" ? doc : JSON.stringify(doc));
}

function image(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: D1, size: 10 },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: D2, size: 20 }],
    ...extra,
  };
}

function assertInvalid(doc: unknown, contentType = "", pattern?: RegExp): void {
  assert.throws(
    () => parseManifest(bytes(doc), contentType),
    (e) =>
      e instanceof OciError && e.kind === "manifest" &&
      (pattern === undefined || pattern.test(e.message)),
    JSON.stringify(doc).slice(0, 200),
  );
}

Deno.test("manifest: an OCI image manifest lists its config and layers as blobs", () => {
  const parsed = parseManifest(bytes(image()), OCI_MANIFEST);
  assert.equal(parsed.mediaType, OCI_MANIFEST);
  assert.deepEqual(parsed.blobs.map((d) => d.value), [D1, D2]);
  assert.deepEqual(parsed.manifests, []);
  assert.equal(parsed.artifactType, "application/vnd.oci.image.config.v1+json");
});

Deno.test("manifest: without a mediaType field, Content-Type or the shape decides", () => {
  const { mediaType: _, ...bare } = image();
  assert.equal(parseManifest(bytes(bare), "").mediaType, OCI_MANIFEST);
  assert.equal(parseManifest(bytes(bare), OCI_MANIFEST).mediaType, OCI_MANIFEST);
  // Docker types need the field (as distribution requires); a contradiction is refused.
  assertInvalid(bare, DOCKER_MANIFEST, /without a mediaType field/);
  assertInvalid(bare, OCI_INDEX, /without a mediaType field/);
  assert.equal(
    parseManifest(bytes({ schemaVersion: 2, manifests: [] }), "").mediaType,
    OCI_INDEX,
  );
});

Deno.test("manifest: an index lists its children as manifests", () => {
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: OCI_MANIFEST, digest: D1, size: 1 },
      { mediaType: OCI_MANIFEST, digest: D2, size: 2, platform: { os: "linux" } },
    ],
  };
  const parsed = parseManifest(bytes(index), OCI_INDEX);
  assert.deepEqual(parsed.manifests.map((d) => d.value), [D1, D2]);
  assert.deepEqual(parsed.blobs, []);
  const list = { ...index, mediaType: DOCKER_MANIFEST_LIST };
  assert.equal(parseManifest(bytes(list), DOCKER_MANIFEST_LIST).mediaType, DOCKER_MANIFEST_LIST);
});

Deno.test("manifest: artifactType and subject are read", () => {
  const parsed = parseManifest(
    bytes(image({
      artifactType: "application/vnd.example+json",
      subject: { mediaType: OCI_MANIFEST, digest: D3, size: 5 },
    })),
    OCI_MANIFEST,
  );
  assert.equal(parsed.artifactType, "application/vnd.example+json");
  assert.equal(parsed.subject?.digest.value, D3);
});

Deno.test("manifest: foreign layers are not required to be in the registry", () => {
  const parsed = parseManifest(
    bytes(image({
      mediaType: DOCKER_MANIFEST,
      layers: [
        {
          mediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
          digest: D2,
          size: 2,
          urls: ["https://example.invalid/layer"],
        },
        { mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", digest: D3, size: 3 },
      ],
    })),
    DOCKER_MANIFEST,
  );
  assert.deepEqual(parsed.blobs.map((d) => d.value), [D1, D3]);
});

Deno.test("manifest: schema 1 is refused with a message that says so", () => {
  assertInvalid({ schemaVersion: 1, fsLayers: [] }, "", /schema 1/i);
  assertInvalid(
    image(),
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    /schema 1/i,
  );
});

Deno.test("manifest: mediaType and Content-Type must agree", () => {
  assertInvalid(image(), DOCKER_MANIFEST, /does not match/);
  assertInvalid(image(), OCI_INDEX, /does not match/);
  assert.equal(parseManifest(bytes(image()), "application/json").mediaType, OCI_MANIFEST);
  assert.equal(
    parseManifest(bytes(image()), `${OCI_MANIFEST}; charset=utf-8`).mediaType,
    OCI_MANIFEST,
  );
});

Deno.test("manifest: malformed documents are MANIFEST_INVALID", () => {
  assertInvalid("{");
  assertInvalid("null");
  assertInvalid("[1]");
  assertInvalid(new Uint8Array([0xff, 0xfe]));
  assertInvalid(image({ schemaVersion: 3 }));
  assertInvalid(image({ mediaType: 5 }));
  assertInvalid(image({ mediaType: "application/vnd.unknown+json" }), "", /unsupported/);
  assertInvalid(image({ config: undefined }));
  assertInvalid(image({ layers: "x" }));
  assertInvalid(image({ layers: [{ mediaType: "x", digest: "sha256:00", size: 1 }] }));
  assertInvalid(image({ layers: [{ mediaType: "x", digest: D2, size: -1 }] }));
  assertInvalid(image({ layers: [{ mediaType: "x", digest: D2, size: 1.5 }] }));
  assertInvalid(image({ layers: [{ digest: D2, size: 1 }] }));
  assertInvalid(image({ annotations: { a: 1 } }));
  assertInvalid(image({ artifactType: 7 }));
  assertInvalid(image({ mediaType: DOCKER_MANIFEST, layers: [] }), DOCKER_MANIFEST);
  assertInvalid({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: {} });
  assertInvalid({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_LIST,
    artifactType: "x/y",
    manifests: [],
  });
});

Deno.test("manifest: essence strips parameters and case", () => {
  assert.equal(essence("Application/JSON; charset=utf-8"), "application/json");
  assert.equal(essence(null), "");
  assert.equal(essence(undefined), "");
});
