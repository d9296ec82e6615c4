/**
 * Generated test images for transport and copy tests: an OCI layout with a two-platform index
 * (tag `multi`), its children (tags `amd64`, `arm64`) and a signature referring to the amd64 image,
 * written without external tools. Layers are real (tiny) tar files so other tools accept them.
 *
 * @module
 */
import { digestBytes } from "../../src/oci/digest.ts";
import { writeTar } from "../../src/transports/tar.ts";
import { randomBytes } from "../helpers/registry.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const REF = "org.opencontainers.image.ref.name";

/** A descriptor of written content. */
export interface Written {
  /** Digest. */
  digest: string;
  /** Size. */
  size: number;
  /** Bytes. */
  bytes: Uint8Array;
}

/** What {@link writeTestLayout} wrote. */
export interface TestLayout {
  /** The layout folder. */
  dir: string;
  /** Tag → digest. */
  tags: Record<string, string>;
  /** The signature manifest's digest (subject: the amd64 image). */
  signature: string;
  /** Layer digests by architecture. */
  layers: Record<string, string>;
}

async function put(dir: string, bytes: Uint8Array): Promise<Written> {
  const digest = digestBytes(bytes);
  await Deno.writeFile(`${dir}/blobs/sha256/${digest.hex}`, bytes);
  return { digest: digest.value, size: bytes.byteLength, bytes };
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** A small layer: a tar with one file of `size` pseudo-random bytes. */
export async function makeLayer(size: number, seed: number): Promise<Uint8Array> {
  const tmp = await Deno.makeTempFile({ prefix: "berth-layer-" });
  try {
    await writeTar(tmp, [{ name: `data-${seed}.bin`, data: randomBytes(size, seed) }]);
    return await Deno.readFile(tmp);
  } finally {
    await Deno.remove(tmp);
  }
}

/** Write the test layout into `dir` (created). */
export async function writeTestLayout(
  dir: string,
  options: { seed?: number; layerSize?: number } = {},
): Promise<TestLayout> {
  const seed = options.seed ?? 1;
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  const tags: Record<string, string> = {};
  const layers: Record<string, string> = {};
  const children: { mediaType: string; digest: string; size: number; platform: object }[] = [];
  for (const [i, architecture] of ["amd64", "arm64"].entries()) {
    const layer = await put(dir, await makeLayer(options.layerSize ?? 20_000, seed * 10 + i));
    layers[architecture] = layer.digest;
    const config = await put(
      dir,
      json({
        architecture,
        os: "linux",
        created: "2026-01-01T00:00:00Z",
        config: { Env: ["PATH=/usr/bin"], Labels: { seed: String(seed) } },
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    );
    const manifest = await put(
      dir,
      json({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: config.digest,
          size: config.size,
        },
        layers: [{
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: layer.digest,
          size: layer.size,
        }],
      }),
    );
    tags[architecture] = manifest.digest;
    children.push({
      mediaType: OCI_MANIFEST,
      digest: manifest.digest,
      size: manifest.size,
      platform: { architecture, os: "linux" },
    });
  }
  const index = await put(
    dir,
    json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }),
  );
  tags.multi = index.digest;
  const empty = await put(dir, json({}));
  const signature = await put(
    dir,
    json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: "application/vnd.example.signature",
      config: {
        mediaType: "application/vnd.oci.empty.v1+json",
        digest: empty.digest,
        size: empty.size,
      },
      layers: [{
        mediaType: "application/vnd.oci.empty.v1+json",
        digest: empty.digest,
        size: empty.size,
      }],
      subject: { mediaType: OCI_MANIFEST, digest: children[0]!.digest, size: children[0]!.size },
    }),
  );
  const entries = [
    ...Object.entries(tags).map(([tag, digest]) => ({
      mediaType: tag === "multi" ? OCI_INDEX : OCI_MANIFEST,
      digest,
      size: tag === "multi" ? index.size : children.find((c) => c.digest === digest)!.size,
      annotations: { [REF]: tag },
    })),
    {
      mediaType: OCI_MANIFEST,
      digest: signature.digest,
      size: signature.size,
      artifactType: "application/vnd.example.signature",
    },
  ];
  await Deno.writeTextFile(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({ schemaVersion: 2, manifests: entries }),
  );
  return { dir, tags, signature: signature.digest, layers };
}

/** Tag → digest of a layout's `index.json`. */
export async function refsOf(dir: string): Promise<Record<string, string>> {
  const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`)) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const refs: Record<string, string> = {};
  for (const m of index.manifests) {
    const ref = m.annotations?.[REF];
    if (ref) refs[ref] = m.digest;
  }
  return refs;
}
