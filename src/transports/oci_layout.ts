/**
 * `oci:DIR[:TAG]`: an OCI image layout (`oci-layout`, `index.json`, `blobs/ALG/HEX`); the tag is
 * the `org.opencontainers.image.ref.name` annotation of an `index.json` entry. Blobs are written
 * atomically; `index.json` is replaced (atomically) only on commit, so an interrupted copy leaves
 * no new tag. Referrers are recorded as unnamed `index.json` entries, where they can be found.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import { manifestMediaType } from "../client/registry_client.ts";
import { tryParseDigest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { isIndexType } from "../oci/media_types.ts";
import { referrerDescriptor, subjectOf } from "./docker.ts";
import { exists, writeAtomic } from "./files.ts";
import type {
  BlobInfo,
  DestinationCapabilities,
  ImageDestination,
  ImageSource,
  Manifest,
} from "./types.ts";

/** The annotation that names a tag in an OCI layout. */
export const REF_NAME = "org.opencontainers.image.ref.name";

/** `DIR[:TAG]` split at the last colon (a colon inside the last path component starts the tag). */
export function splitPathAndTag(value: string): { path: string; tag: string | undefined } {
  const colon = value.lastIndexOf(":");
  if (colon <= 0 || value.slice(colon + 1).includes("/")) return { path: value, tag: undefined };
  return { path: value.slice(0, colon), tag: value.slice(colon + 1) || undefined };
}

interface IndexJson {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
  [key: string]: unknown;
}

function blobPath(dir: string, digest: string): string {
  const parsed = tryParseDigest(digest);
  if (!parsed) throw new ClientError("invalid", `invalid digest ${digest}`);
  return `${dir}/blobs/${parsed.algorithm}/${parsed.hex}`;
}

async function readIndex(dir: string, name: string): Promise<IndexJson> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/index.json`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ClientError("not-found", `${name}: no OCI layout at ${dir} (index.json missing)`);
    }
    throw error;
  }
  try {
    const index = JSON.parse(text) as IndexJson;
    if (!Array.isArray(index.manifests)) throw new Error("no manifests");
    return index;
  } catch {
    throw new ClientError("invalid", `${name}: ${dir}/index.json is not a valid image index`);
  }
}

/** Open a layout as a source (`name` is the reference for messages). */
export function openOciSource(dir: string, tag: string | undefined, name: string): OciLayoutSource {
  return new OciLayoutSource(dir, tag, name);
}

/** An OCI layout read as an image source. */
export class OciLayoutSource implements ImageSource {
  /** As written. */
  readonly name: string;
  #dir: string;
  #tag: string | undefined;
  #cleanup: (() => Promise<void>) | undefined;

  /** A source over `dir`, naming `tag` (or the only image). */
  constructor(dir: string, tag: string | undefined, name: string, cleanup?: () => Promise<void>) {
    this.#dir = dir;
    this.#tag = tag;
    this.name = name;
    this.#cleanup = cleanup;
  }

  /** The manifest the tag names (the only one when no tag), or one by digest. */
  async getManifest(digest?: string): Promise<Manifest> {
    let descriptor: Descriptor | undefined;
    if (digest === undefined) {
      const index = await readIndex(this.#dir, this.name);
      if (this.#tag !== undefined) {
        descriptor = index.manifests.find((m) => m.annotations?.[REF_NAME] === this.#tag);
        if (!descriptor) throw new ClientError("not-found", `${this.name}: no tag ${this.#tag}`);
      } else if (index.manifests.length === 1) {
        descriptor = index.manifests[0];
      } else {
        throw new ClientError(
          "invalid",
          `${this.name}: the layout holds ${index.manifests.length} images: name one with :TAG`,
        );
      }
    }
    const wanted = descriptor?.digest ?? digest!;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(blobPath(this.#dir, wanted));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new ClientError("not-found", `${this.name}: manifest ${wanted} not found`);
      }
      throw error;
    }
    const mediaType = manifestMediaType(descriptor?.mediaType ?? null, bytes);
    return { bytes, mediaType, digest: wanted };
  }

  /** A blob file as a stream. */
  async getBlob(blob: BlobInfo): Promise<ReadableStream<Uint8Array>> {
    try {
      return (await Deno.open(blobPath(this.#dir, blob.digest), { read: true })).readable;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new ClientError("not-found", `${this.name}: blob ${blob.digest} not found`);
      }
      throw error;
    }
  }

  /** Manifests listed in `index.json` whose subject is `digest`. */
  async referrers(digest: string): Promise<Descriptor[]> {
    const index = await readIndex(this.#dir, this.name);
    const found: Descriptor[] = [];
    for (const entry of index.manifests) {
      if (isIndexType(entry.mediaType) && entry.annotations?.[REF_NAME]) continue;
      try {
        const bytes = await Deno.readFile(blobPath(this.#dir, entry.digest));
        if (subjectOf(bytes) === digest) {
          found.push(referrerDescriptor({
            bytes,
            digest: entry.digest,
            mediaType: manifestMediaType(entry.mediaType, bytes),
          }));
        }
      } catch { /* missing or not a manifest */ }
    }
    return found;
  }

  /** Every ref name in `index.json`. */
  async listTags(): Promise<string[]> {
    const index = await readIndex(this.#dir, this.name);
    return index.manifests.flatMap((m) => m.annotations?.[REF_NAME] ?? []);
  }

  /** Remove a temporary extraction, if any. */
  async close(): Promise<void> {
    await this.#cleanup?.();
  }
}

/** Open a layout as a destination (created when missing). */
export async function openOciDestination(
  dir: string,
  tag: string | undefined,
  name: string,
): Promise<OciLayoutDestination> {
  await Deno.mkdir(dir, { recursive: true });
  return new OciLayoutDestination(dir, tag, name);
}

/** An OCI layout written as an image destination. */
export class OciLayoutDestination implements ImageDestination {
  /** As written. */
  readonly name: string;
  /** Indexes and referrers both. */
  readonly capabilities: DestinationCapabilities = {
    indexes: true,
    referrers: true,
    verifiesDigests: false,
  };
  /** The reference's tag. */
  readonly tag: string | undefined;
  /** The layout's folder. */
  readonly dir: string;
  #entries: { descriptor: Descriptor; tags: string[] }[] = [];

  /** A destination writing into `dir`. */
  constructor(dir: string, tag: string | undefined, name: string) {
    this.dir = dir;
    this.tag = tag;
    this.name = name;
  }

  /** Whether the blob file exists. */
  async hasBlob(blob: BlobInfo): Promise<boolean> {
    return await exists(blobPath(this.dir, blob.digest));
  }

  /** Write the blob atomically (the stream errors on a mismatch, leaving nothing). */
  async putBlob(blob: BlobInfo, open: () => Promise<ReadableStream<Uint8Array>>) {
    const path = blobPath(this.dir, blob.digest);
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await writeAtomic(path, await open(), this.dir);
    return "uploaded" as const;
  }

  /** Write the manifest as a blob; tagged ones, roots and referrers get `index.json` entries. */
  async putManifest(manifest: Manifest, tags: string[], options: { root?: boolean } = {}) {
    const path = blobPath(this.dir, manifest.digest);
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (!await exists(path)) await writeAtomic(path, manifest.bytes, this.dir);
    const subject = subjectOf(manifest.bytes);
    if (tags.length > 0 || options.root || subject) {
      const descriptor: Descriptor = subject ? referrerDescriptor(manifest) : {
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.bytes.byteLength,
      };
      this.#entries.push({ descriptor, tags });
    }
  }

  /** The digest a tag names in `index.json`. */
  async currentDigest(tag: string): Promise<string | undefined> {
    if (!await exists(`${this.dir}/index.json`)) return undefined;
    const index = await readIndex(this.dir, this.name);
    return index.manifests.find((m) => m.annotations?.[REF_NAME] === tag)?.digest;
  }

  /** Replace `index.json` with the new entries (tags move to their new manifests). */
  async commit(): Promise<void> {
    const index: IndexJson = await exists(`${this.dir}/index.json`)
      ? await readIndex(this.dir, this.name)
      : { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] };
    for (const { descriptor, tags } of this.#entries) {
      if (tags.length === 0) {
        const same = index.manifests.some((m) =>
          m.digest === descriptor.digest && !m.annotations?.[REF_NAME]
        );
        if (!same) index.manifests.push(descriptor);
        continue;
      }
      for (const tag of tags) {
        index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
        index.manifests.push({
          ...descriptor,
          annotations: { ...descriptor.annotations, [REF_NAME]: tag },
        });
      }
    }
    if (!await exists(`${this.dir}/oci-layout`)) {
      await writeAtomic(
        `${this.dir}/oci-layout`,
        new TextEncoder().encode(JSON.stringify({ imageLayoutVersion: "1.0.0" })),
        this.dir,
      );
    }
    await writeAtomic(
      `${this.dir}/index.json`,
      new TextEncoder().encode(JSON.stringify(index)),
      this.dir,
    );
    this.#entries = [];
  }

  /** Forget uncommitted entries (blobs without an index entry are not part of any image). */
  abort(): Promise<void> {
    this.#entries = [];
    return Promise.resolve();
  }
}
