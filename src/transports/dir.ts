/**
 * `dir:DIR`: skopeo's directory format: `manifest.json` (the top manifest), `<hex>.manifest.json`
 * for the manifests an index lists, every blob as `<hex>`, and a `version` file. Written into a
 * staging folder next to DIR and swapped in on commit, so DIR is the old copy or the whole new one.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { ClientError } from "../client/errors.ts";
import { manifestMediaType } from "../client/registry_client.ts";
import { digestBytes, tryParseDigest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { exists, writeAtomic } from "./files.ts";
import type {
  BlobInfo,
  DestinationCapabilities,
  ImageDestination,
  ImageSource,
  Manifest,
} from "./types.ts";

const VERSION = "Directory Transport Version: 1.1\n";

function hexOf(digest: string): string {
  const parsed = tryParseDigest(digest);
  if (!parsed) throw new ClientError("invalid", `invalid digest ${digest}`);
  return parsed.hex;
}

/** A `dir:` folder read as an image source. */
export class DirSource implements ImageSource {
  /** As written. */
  readonly name: string;
  #dir: string;

  /** A source over `dir`. */
  constructor(dir: string, name: string) {
    this.#dir = dir;
    this.name = name;
  }

  /** `manifest.json`, or a listed manifest by digest. */
  async getManifest(digest?: string): Promise<Manifest> {
    const read = async (path: string) => {
      try {
        return await Deno.readFile(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return undefined;
        throw error;
      }
    };
    const top = await read(`${this.#dir}/manifest.json`);
    if (!top) throw new ClientError("not-found", `${this.name}: no manifest.json in ${this.#dir}`);
    const topDigest = digestBytes(top, digest?.startsWith("sha512:") ? "sha512" : "sha256").value;
    let bytes: Uint8Array | undefined = top;
    if (digest !== undefined && digest !== topDigest) {
      bytes = await read(`${this.#dir}/${hexOf(digest)}.manifest.json`);
      if (!bytes) throw new ClientError("not-found", `${this.name}: manifest ${digest} not found`);
    }
    return {
      bytes,
      mediaType: manifestMediaType(null, bytes),
      digest: digest ?? topDigest,
    };
  }

  /** A blob file as a stream. */
  async getBlob(blob: BlobInfo): Promise<ReadableStream<Uint8Array>> {
    try {
      return (await Deno.open(`${this.#dir}/${hexOf(blob.digest)}`, { read: true })).readable;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new ClientError("not-found", `${this.name}: blob ${blob.digest} not found`);
      }
      throw error;
    }
  }

  /** The format has no referrers. */
  referrers(): Promise<Descriptor[]> {
    return Promise.resolve([]);
  }

  /** Nothing to release. */
  async close(): Promise<void> {}
}

/** Open `dir:DIR` as a destination (staged next to DIR). */
export async function openDirDestination(dir: string, name: string): Promise<DirDestination> {
  const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
  if (entries.length > 0 && !entries.some((e) => e.name === "version")) {
    throw new ClientError(
      "invalid",
      `${name}: ${dir} exists and is not a dir: image; not replacing it`,
    );
  }
  const parent = dirname(dir) || ".";
  await Deno.mkdir(parent, { recursive: true });
  const staging = await Deno.makeTempDir({ dir: parent, prefix: `.${basename(dir)}.berth-` });
  return new DirDestination(dir, staging, name);
}

/** A `dir:` folder written as an image destination. */
export class DirDestination implements ImageDestination {
  /** As written. */
  readonly name: string;
  /** Indexes yes (children as `<hex>.manifest.json`), referrers no. */
  readonly capabilities: DestinationCapabilities = {
    indexes: true,
    referrers: false,
    verifiesDigests: false,
  };
  /** No tags in this format. */
  readonly tag = undefined;
  #dir: string;
  #staging: string;

  /** A destination staging in `staging`, swapped in as `dir`. */
  constructor(dir: string, staging: string, name: string) {
    this.#dir = dir;
    this.#staging = staging;
    this.name = name;
  }

  /** Whether the blob is staged. */
  async hasBlob(blob: BlobInfo): Promise<boolean> {
    return await exists(`${this.#staging}/${hexOf(blob.digest)}`);
  }

  /** Stage a blob atomically. */
  async putBlob(blob: BlobInfo, open: () => Promise<ReadableStream<Uint8Array>>) {
    await writeAtomic(`${this.#staging}/${hexOf(blob.digest)}`, await open(), this.#staging);
    return "uploaded" as const;
  }

  /** The root as `manifest.json`, others as `<hex>.manifest.json`. */
  async putManifest(manifest: Manifest, _tags: string[], options: { root?: boolean } = {}) {
    const file = options.root ? "manifest.json" : `${hexOf(manifest.digest)}.manifest.json`;
    await writeAtomic(`${this.#staging}/${file}`, manifest.bytes, this.#staging);
  }

  /** Swap the staged folder in for DIR. */
  async commit(): Promise<void> {
    await writeAtomic(`${this.#staging}/version`, new TextEncoder().encode(VERSION), this.#staging);
    const old = `${this.#staging}.old`;
    const had = await exists(this.#dir);
    if (had) await Deno.rename(this.#dir, old);
    await Deno.rename(this.#staging, this.#dir);
    if (had) await Deno.remove(old, { recursive: true });
  }

  /** Remove the staging folder. */
  async abort(): Promise<void> {
    await Deno.remove(this.#staging, { recursive: true }).catch(() => {});
  }
}
