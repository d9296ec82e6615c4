/**
 * Content for the UI tests, pushed through the registry API: a multi-platform image with a
 * realistic config, referrers of three kinds (signature, SBOM, attestation), a repository with
 * several tags, and one whose annotations, labels, env and media types carry HTML/JS payloads.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  descriptor,
  digestOf,
  expectStatus,
  MEDIA,
  pushBlob,
  putManifest,
  randomBytes,
  text,
} from "../helpers/registry.ts";

/** Markup that would run script if the UI inserted it unescaped. */
export const PAYLOADS = [
  `<img src=x onerror="window.__xss=(window.__xss||0)+1">`,
  `<script>window.__xss=(window.__xss||0)+1</script>`,
  `"><svg onload="window.__xss=(window.__xss||0)+1">`,
  `'><iframe srcdoc="<script>parent.__xss=1</script>">`,
];

/** What {@link seedRegistry} pushed. */
export interface Seeded {
  /** Digest of the `library/alpine:latest` index. */
  index: string;
  /** Digests of its platform manifests: amd64, arm64/v8. */
  platforms: string[];
  /** Digests of the referrers of the amd64 manifest, by kind. */
  referrers: { signature: string; sbom: string; attestation: string };
  /** Every repository name pushed, sorted. */
  repositories: string[];
}

/** An image config like the ones build tools write. */
function imageConfig(architecture: string, variant?: string, extra: {
  labels?: Record<string, string>;
  env?: string[];
  cmd?: string[];
  history?: string[];
} = {}): Uint8Array<ArrayBuffer> {
  return text(JSON.stringify({
    created: "2026-11-30T12:00:00Z",
    architecture,
    ...(variant && { variant }),
    os: "linux",
    config: {
      Env: extra.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Entrypoint: ["/docker-entrypoint.sh"],
      Cmd: extra.cmd ?? ["/bin/sh", "-c", "echo hello"],
      WorkingDir: "/srv",
      ExposedPorts: { "8080/tcp": {} },
      Labels: extra.labels ?? {
        "org.opencontainers.image.source": "https://example.com/alpine",
        "org.opencontainers.image.version": "3.20.3",
      },
    },
    rootfs: { type: "layers", diff_ids: [digestOf(text(architecture))] },
    history: (extra.history ?? ["ADD alpine-minirootfs.tar.gz / # buildkit", 'CMD ["/bin/sh"]'])
      .map((createdBy, i) => ({
        created: "2026-11-30T12:00:00Z",
        created_by: createdBy,
        ...(i > 0 && { empty_layer: true }),
      })),
  }));
}

/** Push an image (config and two layers) by digest; returns its manifest bytes and digest. */
async function pushPlatformImage(
  base: string,
  name: string,
  config: Uint8Array<ArrayBuffer>,
  seed: number,
  extra: { annotations?: Record<string, string>; layerType?: string } = {},
): Promise<{ bytes: Uint8Array<ArrayBuffer>; digest: string }> {
  const layers = [randomBytes(3000 + seed * 100, seed), randomBytes(1500, seed + 100)];
  await pushBlob(base, name, config);
  for (const layer of layers) await pushBlob(base, name, layer);
  const bytes = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: descriptor(MEDIA.ociConfig, config),
    layers: layers.map((layer, i) =>
      descriptor(i === 0 && extra.layerType ? extra.layerType : MEDIA.ociLayer, layer)
    ),
    ...(extra.annotations && { annotations: extra.annotations }),
  }));
  const digest = digestOf(bytes);
  await expectStatus(await putManifest(base, name, digest, bytes, MEDIA.ociManifest), 201);
  return { bytes, digest };
}

/** Push an artifact (empty config, one blob) whose subject is `subject`; returns its digest. */
async function pushReferrer(
  base: string,
  name: string,
  subject: { bytes: Uint8Array<ArrayBuffer> },
  artifactType: string,
  content: string,
  annotations: Record<string, string> = {},
): Promise<string> {
  const empty = text("{}");
  const blob = text(content);
  await pushBlob(base, name, empty);
  await pushBlob(base, name, blob);
  const bytes = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    artifactType,
    config: descriptor(MEDIA.ociEmpty, empty),
    layers: [descriptor(artifactType, blob)],
    subject: descriptor(MEDIA.ociManifest, subject.bytes),
    annotations: { "org.opencontainers.image.created": "2026-12-01T08:00:00Z", ...annotations },
  }));
  const digest = digestOf(bytes);
  await expectStatus(await putManifest(base, name, digest, bytes, MEDIA.ociManifest), 201);
  return digest;
}

/** Push an OCI index over platform manifests under a tag. */
async function pushIndex(
  base: string,
  name: string,
  tag: string,
  entries: { bytes: Uint8Array<ArrayBuffer>; platform: Record<string, string> }[],
): Promise<string> {
  const bytes = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: entries.map((e) => descriptor(MEDIA.ociManifest, e.bytes, { platform: e.platform })),
  }));
  await expectStatus(await putManifest(base, name, tag, bytes, MEDIA.ociIndex), 201);
  return digestOf(bytes);
}

/** Point another tag at an existing manifest. */
async function tag(base: string, name: string, from: string, to: string): Promise<void> {
  const response = await fetch(`${base}/v2/${name}/manifests/${from}`, {
    headers: { Accept: [MEDIA.ociIndex, MEDIA.ociManifest].join(", ") },
  });
  assert.equal(response.status, 200);
  const type = response.headers.get("Content-Type") ?? MEDIA.ociManifest;
  const bytes = new Uint8Array(await response.arrayBuffer());
  await expectStatus(await putManifest(base, name, to, bytes, type), 201);
}

/** Push the UI's test content into the registry at `base`. */
export async function seedRegistry(base: string): Promise<Seeded> {
  const alpine = "library/alpine";
  const amd64 = await pushPlatformImage(base, alpine, imageConfig("amd64"), 1);
  const arm64 = await pushPlatformImage(base, alpine, imageConfig("arm64", "v8"), 2);
  const index = await pushIndex(base, alpine, "latest", [
    { bytes: amd64.bytes, platform: { os: "linux", architecture: "amd64" } },
    { bytes: arm64.bytes, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
  ]);
  await tag(base, alpine, "latest", "3.20");
  const referrers = {
    signature: await pushReferrer(
      base,
      alpine,
      amd64,
      "application/vnd.dev.cosign.artifact.sig.v1+json",
      "signature",
    ),
    sbom: await pushReferrer(base, alpine, amd64, "application/spdx+json", '{"spdxVersion":"2.3"}'),
    attestation: await pushReferrer(
      base,
      alpine,
      amd64,
      "application/vnd.in-toto+json",
      '{"_type":"https://in-toto.io/Statement/v1"}',
    ),
  };
  // Plain images with several tags.
  for (const [i, version] of ["v1.0.0", "v1.1.0", "v2.0.0"].entries()) {
    const image = await pushPlatformImage(base, "team/api", imageConfig("amd64"), 10 + i);
    await tag(base, "team/api", image.digest, version);
  }
  await tag(base, "team/api", "v2.0.0", "latest");
  for (const name of ["team/web", "tools/debug", "mirror/nginx"]) {
    const image = await pushPlatformImage(base, name, imageConfig("amd64"), name.length);
    await tag(base, name, image.digest, "stable");
  }
  // Stored user input with markup in every free-text field the UI shows.
  const hostile = await pushPlatformImage(
    base,
    "xss/app",
    imageConfig("amd64", PAYLOADS[0], {
      labels: Object.fromEntries(PAYLOADS.map((p, i) => [`label${i}${p}`, p])),
      env: PAYLOADS.map((p) => `X=${p}`),
      cmd: PAYLOADS,
      history: PAYLOADS,
    }),
    7,
    {
      annotations: Object.fromEntries(PAYLOADS.map((p, i) => [`note${i}${p}`, p])),
      layerType: `application/vnd.oci.image.layer.v1.tar+gzip${PAYLOADS[2]}`,
    },
  );
  await tag(base, "xss/app", hostile.digest, "v1");
  await pushReferrer(base, "xss/app", hostile, `application/x${PAYLOADS[0]}`, "evil", {
    "org.opencontainers.image.created": PAYLOADS[1]!,
  });
  const repositories = ["library/alpine", "team/api", "team/web", "tools/debug", "mirror/nginx"]
    .concat("xss/app").sort();
  return { index, platforms: [amd64.digest, arm64.digest], referrers, repositories };
}
