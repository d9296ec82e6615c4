/**
 * `docker-archive:FILE[:REPO:TAG]`: the `docker save` format (`manifest.json` listing each
 * image's config, layers and `RepoTags`), readable by `docker load`, podman and skopeo. Read: a
 * Docker schema 2 manifest is made for the chosen image (layers keep their bytes; gzip and zstd
 * are detected). Written: blobs are staged next to FILE, archived and renamed over it on commit.
 *
 * @module
 */
import { dirname } from "node:path";
import { ClientError } from "../client/errors.ts";
import { digestBytes, Digester, tryParseDigest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { DOCKER_MANIFEST } from "../oci/media_types.ts";
import { exists, writeAtomic } from "./files.ts";
import {
  commitTar,
  listTar,
  readTarEntry,
  readTarText,
  type TarEntry,
  type TarSource,
} from "./tar.ts";
import type {
  BlobInfo,
  DestinationCapabilities,
  ImageDestination,
  ImageSource,
  Manifest,
  TransportCallOptions,
} from "./types.ts";

/** Media types of what a docker archive holds. */
const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";

/** One image of `manifest.json`. */
interface ArchiveImage {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** `FILE[:REPO:TAG]` split at the first colon. */
export function splitArchiveReference(
  value: string,
): { path: string; repoTag: string | undefined } {
  const colon = value.indexOf(":");
  if (colon < 0) return { path: value, repoTag: undefined };
  return { path: value.slice(0, colon), repoTag: value.slice(colon + 1) || undefined };
}

function familiar(repoTag: string): string {
  return repoTag.replace(/^docker\.io\//, "").replace(/^library\//, "");
}

/** Open a docker archive as a source. */
export async function openDockerArchiveSource(
  file: string,
  repoTag: string | undefined,
  name: string,
): Promise<DockerArchiveSource> {
  let entries: Map<string, TarEntry>;
  try {
    entries = await listTar(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ClientError("not-found", `${name}: ${file} not found`);
    }
    throw error;
  }
  const manifestEntry = entries.get("manifest.json");
  if (!manifestEntry) {
    throw new ClientError("invalid", `${name}: no manifest.json (not a docker archive)`);
  }
  let images: ArchiveImage[];
  try {
    images = JSON.parse(await readTarText(file, manifestEntry));
    if (!Array.isArray(images)) throw new Error();
  } catch {
    throw new ClientError("invalid", `${name}: manifest.json is not valid`);
  }
  let image: ArchiveImage | undefined;
  if (repoTag !== undefined) {
    image = images.find((i) => (i.RepoTags ?? []).some((t) => familiar(t) === familiar(repoTag)));
    if (!image) throw new ClientError("not-found", `${name}: no image tagged ${repoTag}`);
  } else if (images.length === 1) image = images[0];
  else {throw new ClientError(
      "invalid",
      `${name}: the archive holds ${images.length} images: name one with :REPO:TAG`,
    );}
  const source = new DockerArchiveSource(file, name, images);
  await source.load(image!, entries);
  return source;
}

async function sniff(file: string, entry: TarEntry): Promise<string> {
  const reader = (await readTarEntry(file, entry)).getReader();
  const { value } = await reader.read();
  await reader.cancel();
  if (value && value[0] === 0x1f && value[1] === 0x8b) return DOCKER_LAYER_GZIP;
  if (value && value[0] === 0x28 && value[1] === 0xb5 && value[2] === 0x2f && value[3] === 0xfd) {
    return LAYER_ZSTD;
  }
  return DOCKER_LAYER;
}

async function hashEntry(file: string, entry: TarEntry): Promise<string> {
  const digester = new Digester();
  for await (const chunk of await readTarEntry(file, entry)) digester.update(chunk);
  return digester.peek().value;
}

/** A docker archive read as an image source (one image of it). */
export class DockerArchiveSource implements ImageSource {
  /** As written. */
  readonly name: string;
  #file: string;
  #images: ArchiveImage[];
  #blobs = new Map<string, TarEntry>();
  #manifest: Manifest | undefined;

  /** A source over an archive file. */
  constructor(file: string, name: string, images: ArchiveImage[]) {
    this.#file = file;
    this.name = name;
    this.#images = images;
  }

  /** Build the manifest of `image` (hashing layers whose path does not tell their digest). */
  async load(image: ArchiveImage, entries: Map<string, TarEntry>): Promise<void> {
    const find = (path: string) => {
      const entry = entries.get(path.replace(/^\.\//, ""));
      if (!entry) {
        throw new ClientError("invalid", `${this.name}: ${path} missing from the archive`);
      }
      return entry;
    };
    const configEntry = find(image.Config);
    const configBytes = new TextEncoder().encode(await readTarText(this.#file, configEntry));
    const config = {
      mediaType: DOCKER_CONFIG,
      digest: digestBytes(configBytes).value,
      size: configEntry.size,
    };
    this.#blobs.set(config.digest, configEntry);
    const layers: Descriptor[] = [];
    for (const path of image.Layers) {
      const entry = find(path);
      const named = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(entry.name);
      const candidate = named ? tryParseDigest(`${named[1]}:${named[2]}`)?.value : undefined;
      const digest = candidate ?? await hashEntry(this.#file, entry);
      this.#blobs.set(digest, entry);
      layers.push({ mediaType: await sniff(this.#file, entry), digest, size: entry.size });
    }
    const manifest = { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers };
    const bytes = new TextEncoder().encode(JSON.stringify(manifest));
    this.#manifest = { bytes, mediaType: DOCKER_MANIFEST, digest: digestBytes(bytes).value };
  }

  /** The made-up manifest (only it exists). */
  getManifest(digest?: string): Promise<Manifest> {
    const manifest = this.#manifest!;
    if (digest !== undefined && digest !== manifest.digest) {
      return Promise.reject(
        new ClientError("not-found", `${this.name}: manifest ${digest} not found`),
      );
    }
    return Promise.resolve(manifest);
  }

  /** A config or layer file as a stream. */
  async getBlob(blob: BlobInfo): Promise<ReadableStream<Uint8Array>> {
    const entry = this.#blobs.get(blob.digest);
    if (!entry) throw new ClientError("not-found", `${this.name}: blob ${blob.digest} not found`);
    return await readTarEntry(this.#file, entry);
  }

  /** Archives hold no referrers. */
  referrers(): Promise<Descriptor[]> {
    return Promise.resolve([]);
  }

  /** The tags of every image in the archive. */
  listTags(): Promise<string[]> {
    const tags = this.#images.flatMap((i) => i.RepoTags ?? []);
    return Promise.resolve(tags.map((t) => t.slice(t.lastIndexOf(":") + 1)));
  }

  /** Nothing to release. */
  async close(): Promise<void> {}
}

/** Open a docker archive as a destination (written on commit). */
export async function openDockerArchiveDestination(
  file: string,
  repoTag: string | undefined,
  name: string,
): Promise<DockerArchiveDestination> {
  return new DockerArchiveDestination(await DockerArchiveWriter.open(file), repoTag, name, {
    writeOnCommit: true,
  });
}

/**
 * Several images staged for one docker archive (what `docker save` writes for several tags):
 * blobs are staged once in a folder next to FILE; {@link write} archives them with
 * `manifest.json` and renames the archive over FILE.
 */
export class DockerArchiveWriter {
  /** The archive file. */
  readonly file: string;
  #staging: string;
  #images: { config: string; layers: string[]; repoTags: string[] }[] = [];

  /** A writer staging in `staging` (a folder next to `file`). */
  constructor(file: string, staging: string) {
    this.file = file;
    this.#staging = staging;
  }

  /** A writer with a fresh staging folder next to `file`. */
  static async open(file: string): Promise<DockerArchiveWriter> {
    const staging = await Deno.makeTempDir({
      dir: dirname(file) || ".",
      prefix: ".berth-docker-archive-",
    });
    return new DockerArchiveWriter(file, staging);
  }

  /** The path of a blob inside the archive. */
  blobPath(digest: string): string {
    const parsed = tryParseDigest(digest);
    if (!parsed) throw new ClientError("invalid", `invalid digest ${digest}`);
    return `blobs/${parsed.algorithm}/${parsed.hex}`;
  }

  /** Whether the blob is staged. */
  async hasBlob(digest: string): Promise<boolean> {
    return await exists(`${this.#staging}/${this.blobPath(digest)}`);
  }

  /** Stage a blob (atomically; a stream that errors leaves nothing). */
  async putBlob(digest: string, stream: ReadableStream<Uint8Array>): Promise<void> {
    const path = `${this.#staging}/${this.blobPath(digest)}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await writeAtomic(path, stream, this.#staging);
  }

  /**
   * Add an image of staged blobs, under `repoTag` if given; the same image added again gets the
   * tag added (one `manifest.json` entry per image, as `docker save` writes), and a tag moves to
   * the image added last.
   */
  addImage(image: { config: string; layers: string[] }, repoTag: string | undefined): void {
    if (repoTag !== undefined) {
      for (const other of this.#images) {
        other.repoTags = other.repoTags.filter((t) => t !== repoTag);
      }
    }
    const same = this.#images.find((i) =>
      i.config === image.config && i.layers.join("\n") === image.layers.join("\n")
    );
    const tags = repoTag === undefined ? [] : [repoTag];
    if (same) same.repoTags.push(...tags.filter((t) => !same.repoTags.includes(t)));
    else this.#images.push({ ...image, repoTags: tags });
  }

  /** How many images were added. */
  get images(): number {
    return this.#images.length;
  }

  /** Write `manifest.json` and the blobs as a tar, renamed over FILE. */
  async write(signal?: AbortSignal): Promise<void> {
    if (this.#images.length === 0) {
      throw new ClientError("invalid", `docker-archive:${this.file}: no image was written`);
    }
    const manifestJson = this.#images.map((i) => ({
      Config: i.config,
      RepoTags: i.repoTags,
      Layers: i.layers,
    }));
    const paths = new Set(this.#images.flatMap((i) => [i.config, ...i.layers]));
    const sources: TarSource[] = [...paths].map((path) => ({
      name: path,
      data: { path: `${this.#staging}/${path}` },
    }));
    sources.push({
      name: "manifest.json",
      data: new TextEncoder().encode(JSON.stringify(manifestJson)),
    });
    await commitTar(this.file, this.#staging, sources, signal);
  }

  /** Remove the staging folder. */
  async discard(): Promise<void> {
    await Deno.remove(this.#staging, { recursive: true }).catch(() => {});
  }
}

/** One image written into a docker archive. */
export class DockerArchiveDestination implements ImageDestination {
  /** As written. */
  readonly name: string;
  /** One image, no referrers. */
  readonly capabilities: DestinationCapabilities = {
    indexes: false,
    referrers: false,
    verifiesDigests: false,
  };
  /** The tag part of REPO:TAG. */
  readonly tag: string | undefined;
  #writer: DockerArchiveWriter;
  #repoTag: string | undefined;
  #writeOnCommit: boolean;
  #image: { config: string; layers: string[] } | undefined;

  /**
   * An image for `writer`, tagged `repoTag`; `writeOnCommit`: commit writes the archive (and
   * abort discards it), else commit only adds the image and the writer's owner writes it.
   */
  constructor(
    writer: DockerArchiveWriter,
    repoTag: string | undefined,
    name: string,
    options: { writeOnCommit: boolean },
  ) {
    this.#writer = writer;
    this.#repoTag = repoTag;
    this.#writeOnCommit = options.writeOnCommit;
    this.name = name;
    this.tag = repoTag === undefined ? undefined : repoTag.slice(repoTag.lastIndexOf(":") + 1);
  }

  /** Whether the blob is staged. */
  hasBlob(blob: BlobInfo): Promise<boolean> {
    return this.#writer.hasBlob(blob.digest);
  }

  /** Stage the blob (atomically; a mismatch leaves nothing). */
  async putBlob(blob: BlobInfo, open: () => Promise<ReadableStream<Uint8Array>>) {
    await this.#writer.putBlob(blob.digest, await open());
    return "uploaded" as const;
  }

  /** Record the image (only an image manifest can be archived). */
  putManifest(
    manifest: Manifest,
    _tags: string[],
    options: { root?: boolean } = {},
  ): Promise<void> {
    if (!options.root) return Promise.resolve();
    const doc = JSON.parse(new TextDecoder().decode(manifest.bytes)) as {
      config?: Descriptor;
      layers?: Descriptor[];
    };
    if (!doc.config || !Array.isArray(doc.layers)) {
      throw new ClientError(
        "unsupported",
        `${this.name}: only an image can be written to a docker archive`,
      );
    }
    this.#image = {
      config: this.#writer.blobPath(doc.config.digest),
      layers: doc.layers.map((l) => this.#writer.blobPath(l.digest)),
    };
    return Promise.resolve();
  }

  /** Add the image to the archive; write the archive when this destination owns it. */
  async commit(options: TransportCallOptions = {}): Promise<void> {
    if (!this.#image) throw new ClientError("invalid", `${this.name}: no image was written`);
    this.#writer.addImage(this.#image, this.#repoTag);
    if (this.#writeOnCommit) await this.#writer.write(options.signal);
  }

  /** Drop the image; the whole staging folder when this destination owns it. */
  async abort(): Promise<void> {
    this.#image = undefined;
    if (this.#writeOnCommit) await this.#writer.discard();
  }
}
